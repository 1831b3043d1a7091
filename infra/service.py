"""A service this checkout runs detached (the Kafka broker, the schema registry): its home
directory under the data dir and its pid file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from infra.process import PidFile
from streams.settings import Settings

__all__ = ["DetachedService"]


@dataclass(frozen=True)
class DetachedService:
    """Base of a detached service: ``<data_dir>/<HOME>`` holds its files, ``PID_FILE`` there
    its pid (with the process's start time, so a reused pid is never taken for it)."""

    settings: Settings
    HOME: ClassVar[str]
    PID_FILE: ClassVar[str]

    @property
    def home(self) -> Path:
        """``<data_dir>/<HOME>``."""
        return self.settings.data_dir.resolve() / self.HOME

    @property
    def pidfile(self) -> PidFile:
        """The pid file in :attr:`home`."""
        return PidFile(self.home / self.PID_FILE)

    def pid(self) -> int | None:
        """The live service's pid, or None (stale pid files are removed)."""
        return self.pidfile.read_alive()
