"""The process wiring (issue #18 item 2): one codec and encoder of the configured wire format,
the catalog, and producers made from them — what ``lvlup worker`` passes to every worker."""

from __future__ import annotations

from schemas.confluent import ConfluentEncoder
from streams.failpoints import NO_FAILPOINTS
from streams.settings import Settings
from streams.wiring import wiring_for


def test_single_object_wiring_encodes_and_decodes_with_the_packaged_codec(tmp_path):
    wiring = wiring_for(Settings(data_dir=tmp_path))
    assert wiring.encoder is wiring.codec and wiring.failpoints is NO_FAILPOINTS
    assert wiring.catalog.for_record("custody_test_requested").name == "lvlup.custody.requests"
    assert wiring.codec.confluent is None


def test_confluent_wiring_writes_confluent_and_its_workers_read_both_framings(tmp_path):
    """Before, the workers decoded with ``load_codec()`` (single-object only) whatever the
    settings said, so a Confluent-framed record on their topics was undecodable to them."""
    settings = Settings(data_dir=tmp_path,
                        schemas={"wire_format": "confluent",
                                 "registry_url": "http://127.0.0.1:9/apis/ccompat/v7"})
    wiring = wiring_for(settings)
    assert isinstance(wiring.encoder, ConfluentEncoder)
    assert wiring.codec.confluent is not None  # decodes the 0x00 framing through the registry
    producer = wiring.producer("test.wiring", linger_ms=0)
    try:
        assert producer._codec is wiring.encoder
    finally:
        producer.close()
