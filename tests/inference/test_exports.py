"""``inference.__all__`` lists exactly the public names the package exposes (httpx's
tests/test_exported_members.py), and importing the package loads neither llama.cpp nor litellm."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import inference


def test_all_lists_exactly_the_public_names():
    public = {
        name
        for name, value in vars(inference).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(inference.__all__) == public
    assert len(inference.__all__) == len(set(inference.__all__))


def test_every_submodule_export_resolves():
    names = [m.name for m in pkgutil.iter_modules(inference.__path__)]
    assert len(names) >= 13
    for module_name in names:
        module = importlib.import_module(f"inference.{module_name}")
        for name in module.__all__:
            assert hasattr(module, name), f"inference.{module_name}.{name}"


def test_import_is_light():
    code = "import sys, inference; print('llama_cpp' in sys.modules, 'litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
