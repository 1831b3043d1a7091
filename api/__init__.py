"""The Starlette command and query API (never imports agents/)."""

__all__: list[str] = []
