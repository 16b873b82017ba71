"""Child processes (simulators, local model servers) must not outlive the harness.

``harness run`` can be killed with SIGKILL, which runs no cleanup. On Linux the
kernel can send the child a signal when its parent dies (``PR_SET_PDEATHSIG``);
elsewhere this is a no-op and ``stop()`` remains the only cleanup.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

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


def exit_status(pid: int) -> int | None:
    """A child's exit status as :class:`subprocess.Popen` reports it, read without reaping it.

    For processes other than the parent (worker processes watching the parent's
    server). None while ``pid`` runs. On Linux a zombie's status comes from
    ``/proc/PID/stat`` (a signal is negative, as Popen has it); where the status
    cannot be read (the process is gone, or no ``/proc``), a finished process gives 0.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc/self").exists():
            return 0  # Linux, and no such process any more
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        except PermissionError:
            return None
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    if not fields or fields[0] not in ("Z", "X"):
        return None
    # fields[0] is field 3 (state); the wait status is field 52 (Linux 3.5+).
    status = int(fields[49]) if len(fields) > 49 else 0
    return -(status & 0x7F) if status & 0x7F else (status >> 8) & 0xFF


def end_process(proc: subprocess.Popen[Any] | None, grace_s: float) -> None:
    """SIGTERM ``proc`` if it still runs, SIGKILL it after ``grace_s``, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ChildServer:
    """A server in a child process, used as a context manager: ``start()`` on entry,
    ``stop()`` on exit, whatever happened."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
