"""Child processes that never outlive ``guard serve``: the embedded Redis, the scorer, the workers."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Runs in the child before exec: the kernel sends SIGTERM when the parent goes, however it goes."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


def spawn(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, stdout: IO[Any] | int | None = None,
          stderr: IO[Any] | int | None = None) -> subprocess.Popen[bytes]:
    """Start a child that the kernel stops (SIGTERM) when this process dies, even by SIGKILL."""
    parent = os.getpid()
    return subprocess.Popen(list(cmd), env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, preexec_fn=lambda: _die_with_parent(parent))
