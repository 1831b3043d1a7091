"""Run the API under uvicorn: ``python -m api.server`` (settings from the environment).

``LVLUP_*`` variables configure the platform (:class:`streams.settings.Settings`) and
``LVLUP_API__*`` the API (:class:`api.settings.ApiSettings`: host, port, limits …).
One worker process; scale out with more processes behind a balancer (rate limits are per
process).
"""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette

from api.app import create_app
from api.settings import api_settings_from_env
from streams.logs import configure_logging
from streams.settings import Settings

__all__ = ["app_factory", "main"]


def app_factory() -> Starlette:
    """The app from environment settings (for ``uvicorn --factory api.server:app_factory``)."""
    return create_app(Settings(), api_settings_from_env())


def main() -> None:
    """Serve until interrupted."""
    settings = Settings()
    api = api_settings_from_env()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings, api), host=api.host, port=api.port, access_log=False,
                log_level=settings.log_level.lower(), lifespan="on")


if __name__ == "__main__":
    main()
