"""A Faust transport whose producer is idempotent with ``acks=all`` under at-least-once.

faust-streaming's aiokafka driver turns on ``enable_idempotence`` only inside transactions
(``Producer._settings_extra``, faust/transport/drivers/aiokafka.py); we do not use Kafka
transactions (Jepsen's 2024 Bufstream analysis: the protocol allows lost writes), but want no
duplicates from producer retries. Registered under Faust's own ``faust.transports``
entry-point namespace as ``lvlup``, so apps use ``broker="lvlup://host:port"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["IdempotentProducer", "Transport"]


class IdempotentProducer(faust_aiokafka.Producer):
    """aiokafka producer with ``acks="all"`` and ``enable_idempotence=True`` always on."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`IdempotentProducer`."""

    Producer = IdempotentProducer
