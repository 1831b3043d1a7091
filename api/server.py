"""Run the API under uvicorn: ``python -m api.server`` (settings from the environment).

``LVLUP_*`` variables configure the platform (:class:`streams.settings.Settings`) and
``LVLUP_API__*`` the API (:class:`api.settings.ApiSettings`: host, port, limits …).
One worker process; scale out with more processes behind a balancer (rate limits are per
process).
"""

from __future__ import annotations

import gc

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
    """Serve until interrupted.

    The objects alive after start-up (modules, schemas, the route table) are frozen out of
    the garbage collector and the youngest generation's threshold is raised: a request
    allocates hundreds of short-lived objects, and full scans of start-up state per
    collection cost throughput for nothing.
    """
    settings = Settings()
    api = api_settings_from_env()
    configure_logging(settings.log_level)
    app = create_app(settings, api)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    uvicorn.run(app, host=api.host, port=api.port, access_log=False,
                log_level=settings.log_level.lower(), lifespan="on")


if __name__ == "__main__":
    main()
