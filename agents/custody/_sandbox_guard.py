"""Run a script with sockets disabled — the fallback "no network" of the sandbox.

Usage (internal): ``python -I -S _sandbox_guard.py script.py``. Replaces ``socket.socket``,
``_socket.socket``, ``socket.create_connection``, ``socket.getaddrinfo`` and
``socket.fromfd`` with versions that raise :class:`PermissionError`, then runs the script as
``__main__``. This is an in-process guard: code that loads libc through ``ctypes`` or starts a
network tool in a subprocess gets around it. :mod:`agents.custody.sandbox` uses it only where a
network namespace cannot be created.
"""

from __future__ import annotations

import _socket
import errno
import runpy
import socket
import sys
from typing import Any, NoReturn

__all__: list[str] = []


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise PermissionError(errno.EACCES, "network access is disabled in the sandbox")


class _NoSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse(*args, **kwargs)


def main() -> None:
    """Install the guard and run ``sys.argv[1]`` as ``__main__``."""
    socket.socket = _NoSocket  # type: ignore[misc]
    _socket.socket = _NoSocket  # type: ignore[misc]
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    socket.fromfd = _refuse
    del sys.argv[0]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
