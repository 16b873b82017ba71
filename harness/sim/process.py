"""Run the simulated provider in a child process.

The simulator must not share the event loop or the GIL with the client it is
measured by, or its own work would show up as the provider's latency. So the
runner starts it as ``python -m harness.sim`` and waits for its ``listening``
line, which carries the port the child bound (port 0 avoids races).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.children import die_with_parent
from harness.errors import ProviderSetupError
from harness.sim.profile import SimProfile


class SimProcess:
    """A simulator child process serving one or more named profiles."""

    def __init__(
        self,
        profiles: Mapping[str, SimProfile],
        *,
        startup_timeout_s: float = 30.0,
        log_path: Path | None = None,
    ):
        self.profiles = dict(profiles)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
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
            [sys.executable, "-m", "harness.sim", "--port", "0", "--profiles-json", profiles_json],
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
            self.stop()
            self._log.seek(0)
            err = self._log.read().decode(errors="replace")[-4000:]
            raise ProviderSetupError(f"simulated provider did not start: {text}{err}".strip())
        self.port = int(text.rsplit(":", 1)[1].split("/")[0])
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
