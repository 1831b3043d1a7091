"""The OpenAI-compatible front door: ``/v1`` over Kafka request/reply (issue 21).

* :mod:`api.openai.shapes` – the wire format (request validation, response bodies);
* :mod:`api.openai.errors` – ``{"error": {"message", "type", "param", "code"}}``;
* :mod:`api.openai.gateway` – settings, the request/reply client, routing and breakers;
* :mod:`api.openai.stream` – server-sent events that fail closed;
* :mod:`api.openai.routes` – the handlers, and ``/api/inference/routes``.
"""

from api.openai.gateway import Gateway, GatewayCollector, OpenAISettings
from api.openai.routes import GATEWAY_STATE, openai_routes, operations

__all__ = ["GATEWAY_STATE", "Gateway", "GatewayCollector", "OpenAISettings", "openai_routes",
           "operations"]
