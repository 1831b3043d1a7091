"""OpenAPI 3.1 document generated from the route table, and the offline ``/docs`` page.

Everything comes from the :class:`api.operations.Operation` objects: parameters from their
path and query pydantic models, request bodies from their body models
(``model_json_schema``), answers from their response schemas plus the error shape for
every status they declare. OpenAPI 3.1 uses JSON Schema 2020-12, which is what pydantic
emits, so model schemas go in unchanged (their ``$defs`` move to ``components``).
``/docs`` renders the same document as a static HTML page (no scripts, no external
assets: the machine may be offline).
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel

from api.idempotency import HEADER, KEY_PATTERN
from api.operations import Operation
from api.shapes import COMPONENTS, ref

__all__ = ["build_spec", "render_docs"]

_REF = "#/components/schemas/{model}"
_ERRORS = {400: "Bad request", 401: "No valid API key", 403: "Key lacks the scope",
           404: "Not found", 413: "Body too large", 415: "Body is not JSON",
           422: "Validation failed", 429: "Rate limited (see Retry-After)",
           501: "Not implemented yet", 503: "A store or the broker is unavailable"}


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    defs.update(schema.pop("$defs", {}))
    return schema


def _unnull(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent, never null: drop the null branch."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


def _parameters(model: type[BaseModel] | None, where: str,
                defs: dict[str, Any]) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = _model_schema(model, defs)
    required = set(schema.get("required", []))
    params = []
    for name, raw in schema.get("properties", {}).items():
        prop = _unnull(raw)
        param: dict[str, Any] = {"name": name, "in": where,
                                 "required": where == "path" or name in required,
                                 "schema": prop}
        if prop.get("description"):
            param["description"] = prop["description"]
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        params.append(param)
    return params


_IDEMPOTENCY_KEY = {
    "name": HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    "description": "Makes the command retryable: the same key from the same API key to the "
    "same method and path yields the same command_id (the record's event_id), so a retry "
    "after a timeout or a crash collapses in the views. 1-255 printable ASCII characters, "
    "no space at either end; 400 otherwise. The first attempt is stored and a retry "
    "re-sends its record; the key reused with another body is 422 idempotency_key_reused.",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                           "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    params = _parameters(op.path_model, "path", defs) + _parameters(op.query_model, "query",
                                                                      defs)
    if op.command is not None:
        params.append(dict(_IDEMPOTENCY_KEY))
    if params:
        out["parameters"] = params
    if op.body_model is not None:
        if op.body_schema is not None:
            schema = dict(op.body_schema)
            defs.update(schema.pop("$defs", {}))
        else:
            schema = _model_schema(op.body_model, defs)
        out["requestBody"] = {"required": bool(schema.get("required")) or
                              schema.get("type") == "array",
                              "content": {"application/json": {"schema": schema}}}
    responses = {str(s): _json(op.response, "OK" if s < 300 and s != 202 else "Accepted")
                 for s in (op.status, *op.success_statuses)}
    errors = set(op.statuses) | {429}
    if op.scope is not None:
        errors |= {401, 403}
    if op.path_model is not None:
        errors.add(404)
    if op.query_model is not None:
        errors.add(400)
    if op.body_model is not None:
        errors |= {400, 413, 415, 422}
    if op.command is not None:
        errors |= {400, 422}  # a malformed Idempotency-Key; a key reused with another body
    for status in sorted(errors):
        responses[str(status)] = _json(ref("Error"), _ERRORS.get(status, "Error"))
    responses["default"] = _json(ref("Error"), "Unexpected error (error shape)")
    out["responses"] = responses
    out["security"] = ([] if op.scope is None else
                       [{"bearerAuth": []}, {"apiKeyHeader": []}])
    if op.scope is not None:
        out["x-scope"] = op.scope.value
    return out


def _plain(summary: str, media: str) -> dict[str, Any]:
    return {"get": {"operationId": summary.lower().replace(" ", "_"), "summary": summary,
                    "tags": ["system"], "security": [],
                    "responses": {"200": {"description": "OK", "content": {
                        media: {"schema": {"type": "string"} if media != "application/json"
                                else {"type": "object"}}}}}}}


def _form_post(summary: str, login: bool = False) -> dict[str, Any]:
    form: dict[str, Any] = {"type": "object", "properties": {}}
    if login:
        form = {"type": "object", "required": ["key"],
                "properties": {"key": {"type": "string", "description": "an API key"}}}
    name = summary.split(":", maxsplit=1)[0].lower().replace(" ", "_")
    return {"post": {
        "operationId": name, "summary": summary, "tags": ["system"], "security": [],
        "requestBody": {"required": login, "content": {
            "application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {"303": {"description": "See Other: back to /dashboard (with "
                                              "?login=failed when the key was refused)"},
                      **{str(s): _json(ref("Error"), _ERRORS.get(s, "Error"))
                         for s in (403, 413, 422, 429)}}}}


def build_spec(ops: list[Operation], title: str = "Lvl_UP Streams API",
               version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ops`` (plus ``/metrics``, ``/openapi.json``, ``/docs``,
    ``/dashboard`` and its script)."""
    defs: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, defs)
    paths["/metrics"] = _plain("Prometheus metrics", "text/plain")
    paths["/metrics"]["get"].update(
        security=[{"bearerAuth": []}, {"apiKeyHeader": []}], **{"x-scope": "read"})
    paths["/metrics"]["get"]["responses"].update(
        {str(s): _json(ref("Error"), _ERRORS.get(s, "Error")) for s in (401, 403, 429)})
    paths["/openapi.json"] = _plain("This document", "application/json")
    paths["/docs"] = _plain("API documentation page", "text/html")
    paths["/dashboard"] = _plain("Dashboard page", "text/html")
    paths["/dashboard.js"] = _plain("Dashboard script", "text/javascript")
    paths["/dashboard/login"] = _form_post("Dashboard login: sets the HttpOnly session cookie",
                                           login=True)
    paths["/dashboard/logout"] = _form_post("Dashboard logout: clears the session cookie")
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": (
            "Commands (POST/DELETE) answer 202 {command_id, topic, partition, offset} once "
            "the broker acked the record; an Idempotency-Key header (1-255 printable ASCII) "
            "makes the command_id deterministic per API key, method, path and key, so a "
            "client retries a command whose answer it lost without doubling it. Reads "
            "answer with the watermark they reflect. "
            "Errors: {error: {code, message, details}}. Live learning analytics: WebSocket "
            "/ws/imperium/learning-analytics.")},
        "paths": paths,
        "components": {
            "schemas": {**COMPONENTS, **defs},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "lvlup keys create --scope … --name …"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
        "tags": [{"name": n} for n in sorted({op.tag for op in ops} | {"system"})],
    }


def render_docs(spec: dict[str, Any]) -> str:
    """A static HTML page listing every operation of ``spec`` (no scripts, inline CSS)."""
    e = html.escape
    rows = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            params = ", ".join(f"{e(p['name'])} ({e(p['in'])}"
                               f"{', required' if p.get('required') else ''})"
                               for p in op.get("parameters", []))
            body = "JSON body" if "requestBody" in op else ""
            statuses = " ".join(e(s) for s in op["responses"])
            rows.append(
                f"<tr><td class=m>{e(method.upper())}</td><td><code>{e(path)}</code></td>"
                f"<td>{e(op.get('summary', ''))}</td><td>{e(op.get('x-scope', 'public'))}</td>"
                f"<td>{params}{'; ' if params and body else ''}{body}</td>"
                f"<td>{statuses}</td></tr>")
    info = spec["info"]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(info['title'])}</title><style>"
        "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        ".m{font-weight:bold}</style></head><body>"
        f"<h1>{e(info['title'])} {e(info['version'])}</h1><p>{e(info['description'])}</p>"
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a> (OpenAPI "
        f"{e(spec['openapi'])}).</p><table><tr><th>method</th><th>path</th><th>summary</th>"
        "<th>scope</th><th>inputs</th><th>statuses</th></tr>"
        + "".join(rows) + "</table></body></html>")
