"""Run the API under uvicorn: ``python -m api.server`` or ``lvlup api`` (one worker).

``LVLUP_*`` variables configure the platform (:class:`streams.settings.Settings`) and
``LVLUP_API__*`` the API (:class:`api.settings.ApiSettings`: host, port, limits …).
One worker process; scale out with more processes behind a balancer (rate limits are per
process). uvicorn picks uvloop and httptools when they are installed (they are
dependencies on Linux); the access log is off (``/metrics`` counts every request).
uvicorn's proxy-header rewriting is off: by default it believes ``X-Forwarded-For`` from
127.0.0.1, which would let any local client pick its rate-limit identity; the app decides
from ``LVLUP_API__TRUSTED_PROXIES`` instead (:mod:`api.clientip`).
"""

from __future__ import annotations

import gc

import structlog
import uvicorn
from starlette.applications import Starlette

from api.app import create_app
from api.settings import ApiSettings, api_settings_from_env
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.logs import configure_logging, enable_crash_reports
from streams.settings import Settings

__all__ = ["app_factory", "main", "serve"]

log = structlog.get_logger(__name__)


def app_factory() -> Starlette:
    """The app from environment settings (for ``uvicorn --factory api.server:app_factory``)."""
    return create_app(Settings(), api_settings_from_env())


def serve(settings: Settings, api: ApiSettings, *,
          failpoints: Failpoints = NO_FAILPOINTS) -> None:
    """Serve ``create_app(settings, api, failpoints=failpoints)`` on ``api.host:api.port``
    until SIGINT/SIGTERM (``failpoints``: fault injection, given by ``lvlup api`` under
    ``lvlup chaos``; none by default).

    The objects alive after start-up (modules, schemas, the route table) are frozen out of
    the garbage collector and the youngest generation's threshold is raised: a request
    allocates hundreds of short-lived objects, and full scans of start-up state per
    collection cost throughput for nothing. A lifespan that fails (Postgres unreachable …)
    ends the process with a non-zero exit.
    """
    app = create_app(settings, api, failpoints=failpoints)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    log.info("api.serving", url=f"http://{api.host}:{api.port}", docs="/docs")
    uvicorn.run(app, host=api.host, port=api.port, access_log=False, loop="auto",
                http="auto", log_level=settings.log_level.lower(), lifespan="on",
                proxy_headers=False, server_header=False)


def main() -> None:
    """``python -m api.server``: settings from the environment, logging configured (and
    crash reports: :func:`streams.logs.enable_crash_reports`), serve."""
    enable_crash_reports()
    settings = Settings()
    configure_logging(settings.log_level)
    serve(settings, api_settings_from_env())


if __name__ == "__main__":
    main()
