"""One wiring object per process (issue #18 item 2): the collaborators every worker and front
end needs, built once at the composition root (``infra``) from the settings and passed down.

Library code receives the :class:`Wiring` or its parts; it never builds a codec or a catalog
itself (``load_codec()`` in a worker decoded single-object records only, so a worker read a
topic written in the Confluent wire format as undecodable while the sinks read it fine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.catalog import Catalog, load_catalog
from schemas.codec import Codec
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.producer import EventProducer, RecordEncoder, codec_for, encoder_for
from streams.settings import Settings

__all__ = ["Wiring", "wiring_for"]


@dataclass(frozen=True)
class Wiring:
    """The parts of one process's wiring.

    ``codec`` decodes every framing the settings allow (:func:`streams.producer.codec_for`:
    single-object, plus Confluent when a registry is configured) and encodes single-object;
    ``encoder`` writes the configured wire format (:func:`streams.producer.encoder_for`);
    ``catalog`` names the topics; ``failpoints`` never fire unless a root armed them.
    """

    bootstrap: str
    codec: Codec
    encoder: RecordEncoder
    catalog: Catalog
    failpoints: Failpoints = NO_FAILPOINTS

    def producer(self, name: str, **options: Any) -> EventProducer:
        """A new :class:`EventProducer` writing the configured format to the catalog's
        topics; ``name`` fills each record's ``producer`` field, ``options`` go to
        :class:`EventProducer` (``linger_ms``, ``config``…). The caller closes it."""
        return EventProducer(self.bootstrap, self.encoder, self.catalog, name=name, **options)


def wiring_for(settings: Settings, failpoints: Failpoints = NO_FAILPOINTS) -> Wiring:
    """The :class:`Wiring` of ``settings`` (call once per process, at its root). Raises
    :class:`schemas.errors.CatalogError` for a broken catalog and
    :class:`schemas.confluent.RegistryUnavailable` when the Confluent format is configured
    and its registry does not answer."""
    codec = codec_for(settings.schemas)
    return Wiring(bootstrap=settings.kafka.bootstrap(), codec=codec,
                  encoder=encoder_for(settings.schemas, codec), catalog=load_catalog(),
                  failpoints=failpoints)
