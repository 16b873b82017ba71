"""Child processes (simulators, local model servers) must not outlive the harness.

``harness run`` can be killed with SIGKILL, which runs no cleanup. On Linux the
kernel can send the child a signal when its parent dies (``PR_SET_PDEATHSIG``);
elsewhere this is a no-op and ``stop()`` remains the only cleanup.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when we die."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return preexec
