"""Run the simulated provider in a child process.

The simulator must not share the event loop or the GIL with the client it is
measured by, or its own work would show up as the provider's latency. So the
runner starts it as ``python -m harness.sim`` and waits for its ``listening``
line, which carries the port the child bound (port 0 avoids races).

A simulator that does not start, or dies, is reported with the last lines of
its log (its stderr).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.children import ChildServer, die_with_parent, end_process
from harness.errors import ProviderSetupError
from harness.sim.profile import SimProfile

_LOG_TAIL_LINES = 25
_LOG_TAIL_BYTES = 65536


class SimProcess(ChildServer):
    """A simulator child process serving one or more named profiles."""

    def __init__(
        self,
        profiles: Mapping[str, SimProfile],
        *,
        startup_timeout_s: float = 30.0,
        log_path: Path | None = None,
        port: int = 0,
    ):
        self.profiles = dict(profiles)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self.requested_port = port
        """0 (the default) lets the child pick a free port."""
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log: Any = None

    @property
    def api_base(self) -> str:
        if self.port is None:
            raise ProviderSetupError("the simulator has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> SimProcess:
        profiles_json = json.dumps({k: v.model_dump() for k, v in self.profiles.items()})
        # The simulator's log goes to a file, never to a pipe nobody reads: a
        # full pipe would freeze it mid-run once it has logged 64 KiB.
        self._log = (
            open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            if self.log_path is not None
            else tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        )
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.sim",
                "--port",
                str(self.requested_port),
                "--profiles-json",
                profiles_json,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=die_with_parent(),  # the simulator must not outlive a killed run
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(self.startup_timeout_s)
        text = line[0] if line else ""
        if not text.startswith("listening on "):
            code = self._proc.poll()
            if code is None and not reader.is_alive():  # its stdout closed: it is exiting
                try:
                    code = self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
            self._end_child()  # the log is read once the child is gone, before it is closed
            tail = self._log_tail()
            self.stop()
            why = (
                f"did not print its port within {self.startup_timeout_s:g} s"
                if code is None
                else f"exited with code {code} while starting"
            )
            raise ProviderSetupError(
                f"simulated provider {why}{': ' + text.strip() if text.strip() else ''}\n"
                f"last lines of its log:\n{tail}"
            )
        self.port = int(text.rsplit(":", 1)[1].split("/")[0])
        return self

    def exit_failure(self) -> str | None:
        """Why the started simulator is gone (exit code, log tail); None while it runs."""
        if self._proc is None:
            return None
        code = self._proc.poll()
        if code is None:
            return None
        return f"simulated provider exited with code {code}\nlast lines of its log:\n" + (
            self._log_tail()
        )

    def _log_tail(self) -> str:
        """The last lines of the child's stderr (the log file, or the temporary one)."""
        data = b""
        try:
            if self.log_path is not None:
                with open(self.log_path, "rb") as file:
                    file.seek(max(0, os.path.getsize(self.log_path) - _LOG_TAIL_BYTES))
                    data = file.read()
            elif self._log is not None:
                self._log.flush()
                self._log.seek(0, os.SEEK_END)
                self._log.seek(max(0, self._log.tell() - _LOG_TAIL_BYTES))
                data = self._log.read()
        except OSError as exc:
            return f"(log unreadable: {exc})"
        lines = data.decode(errors="replace").rstrip().splitlines()[-_LOG_TAIL_LINES:]
        return "\n".join(lines) or "(log is empty)"

    def stop(self) -> None:
        """Terminate the child (kill it after 5 s) and close its log. Idempotent."""
        self._end_child()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _end_child(self) -> None:
        end_process(self._proc, grace_s=5)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
