"""``lvlup replay decisions`` on a real Kafka log: a log recorded under v1 replayed under a
stricter policy flips the gate verdict and the promotions; nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from schemas.codec import load_codec
from streams.kafka_admin import delete_topics, end_offsets
from streams.producer import EventProducer
from tests.custody.decision_log import PROPOSAL, STRICT, T0, recorded_log

from .sink_support import PrefixRouter

pytestmark = pytest.mark.integration

TYPES = ["custody_run_result", "custody_item_result", "agent_level_changed",
         "proposal_submitted", "proposal_gated"]


@pytest.fixture
def world(bootstrap):
    router = PrefixRouter(f"test.dr{uuid.uuid4().hex[:8]}.")
    topics = router.topics(bootstrap, TYPES)
    producer = EventProducer(bootstrap, load_codec(), router, name="test")
    for record_type, record in recorded_log():
        producer.emit(record_type, record)
    producer.close()
    yield router, topics
    delete_topics(bootstrap, topics)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", "replay", "decisions", *args],
                          env={**os.environ}, capture_output=True, text=True, timeout=300,
                          check=False)


def test_a_stricter_policy_flips_the_recorded_decisions(world, bootstrap, tmp_path):
    router, topics = world
    before = {t: end_offsets(bootstrap, t) for t in topics}
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT, encoding="utf-8")
    proc = _cli("--policy", str(strict), "--topic-prefix", router.prefix, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["policy"].startswith("strict-replay@")
    assert doc["gate"]["decisions"] == 1
    (flip,) = doc["gate"]["flipped"]
    assert (flip["proposal_id"], flip["recorded"], flip["counterfactual"]) == (PROPOSAL, True,
                                                                              False)
    assert doc["levels"]["decisions"] == 6 and doc["levels"]["flipped"]
    assert all(f["counterfactual"] is None for f in doc["levels"]["flipped"])
    (agent,) = doc["agents"]
    assert (agent["recorded_xp"], agent["counterfactual_xp"]) == (180, 90)
    # the table form names the flipped proposal; the log is left as it was
    table = _cli("--policy", str(strict), "--topic-prefix", router.prefix)
    assert table.returncode == 0 and PROPOSAL in table.stdout
    assert {t: end_offsets(bootstrap, t) for t in topics} == before


def test_the_window_and_a_bad_policy(world, tmp_path):
    router, _ = world
    v1_same = _cli("--policy", "agents/custody/policy/v1.yaml", "--topic-prefix",
                   router.prefix, "--json", "--from", str(T0 + 3 * 60_000))
    assert v1_same.returncode == 0, v1_same.stderr[-2000:]
    doc = json.loads(v1_same.stdout.strip().splitlines()[-1])
    assert doc["levels"]["decisions"] == 3 and doc["levels"]["flipped"] == []
    assert doc["gate"]["flipped"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\n", encoding="utf-8")
    proc = _cli("--policy", str(bad), "--topic-prefix", router.prefix)
    assert proc.returncode == 2 and proc.stderr.startswith("lvlup: error:")
