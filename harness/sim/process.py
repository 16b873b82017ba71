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
import threading
from collections.abc import Mapping
from types import TracebackType

from harness.children import die_with_parent
from harness.errors import ProviderSetupError
from harness.sim.profile import SimProfile


class SimProcess:
    """A simulator child process serving one or more named profiles."""

    def __init__(self, profiles: Mapping[str, SimProfile], *, startup_timeout_s: float = 30.0):
        self.profiles = dict(profiles)
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def api_base(self) -> str:
        if self.port is None:
            raise ProviderSetupError("the simulator has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> SimProcess:
        profiles_json = json.dumps({k: v.model_dump() for k, v in self.profiles.items()})
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.sim", "--port", "0", "--profiles-json", profiles_json],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
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
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise ProviderSetupError(f"simulated provider did not start: {text}{err}".strip())
        self.port = int(text.rsplit(":", 1)[1].split("/")[0])
        return self

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
