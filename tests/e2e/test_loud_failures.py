"""Failures are loud: a dead provider is reported at once, its rows say why, the run fails.

The local model server here is a real process on loopback: ``fake_llama_server.py``
runs as the provider's ``python``, takes llama_cpp.server's arguments and dies of
SIGILL as a llama-cpp-python built for the wrong CPU does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.children import exit_status
from harness.cli import main
from harness.errors import ProviderSetupError
from harness.providers.local_server import PORTABLE_REBUILD, describe_exit
from harness.sim import SimProcess, SimProfile

from ..conftest import REPO, TEST_DATA, sim_requests

FAKE_SERVER = Path(__file__).with_name("fake_llama_server.py")
SQUAD_SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"
CASES = 6


@pytest.fixture
def fake_local(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """(model file, interpreter) of a fake llama.cpp server that behaves as ``mode`` says."""

    def make(mode: str) -> tuple[Path, Path]:
        python = tmp_path / "fake-python"
        python.write_text(f"#!{sys.executable}\n" + FAKE_SERVER.read_text())
        python.chmod(python.stat().st_mode | stat.S_IEXEC)
        model = tmp_path / f"{mode.replace(' ', '-')}.gguf"
        model.write_text(mode)
        return model, python

    return make


def run(config: Path, root: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--no-progress", *extra]
    )
    return result.exit_code, result.stdout, result.stderr


def rag_config(
    write_config: Callable[..., Path],
    model: Path,
    python: Path,
    *,
    optional: bool = False,
    max_retries: int = 2,
    workers: int = 1,
    concurrency: int = 1,
) -> Path:
    return write_config(
        f"""
        run: {{name: loud, concurrency: {concurrency}, workers: {workers}}}
        providers:
          - name: gemma
            local: {{gguf: {model}, python: {python}, startup_timeout_s: 30}}
            optional: {str(optional).lower()}
            max_retries: {max_retries}
            retry_base_s: 0.05
            concurrency: {concurrency}
          - name: steady
            simulate: {{ttft_ms: 2, itl_ms: 1, output_tokens: 4, seed: 1}}
        suites:
          - {{name: squad, kind: rag_qa, dataset: {SQUAD_SAMPLE}, limit: {CASES}}}
        """
    )


def chat_requests(log: Path) -> int:
    """Chat requests the fake server received, from its log."""
    return log.read_text().count("fake-llama: chat request")


def test_exit_descriptions_name_the_signal_and_the_rebuild() -> None:
    sigill = describe_exit(-signal.SIGILL, "while starting")
    assert sigill.startswith("was killed by SIGILL (illegal instruction) while starting")
    assert PORTABLE_REBUILD in sigill
    # A shell wrapper reports a signal as 128 + N: SIGILL is 4, so 132.
    assert "SIGILL" in describe_exit(132)
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3, "during the run") == "exited with code 3 during the run"
    assert PORTABLE_REBUILD == (
        'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON'
        " -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"
        ' -DGGML_AMX_BF16=OFF" .venv/bin/pip install --no-cache-dir --force-reinstall'
        " --no-deps llama-cpp-python==0.3.36"
    )


def test_exit_status_of_a_child_is_read_without_reaping_it() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"]
    )
    deadline = time.monotonic() + 10
    while exit_status(child.pid) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exit_status(child.pid) == -signal.SIGTERM  # still a zombie: readable again
    assert child.wait() == -signal.SIGTERM
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert exit_status(sleeper.pid) is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_server_killed_by_sigill_at_start_fails_the_run_before_anything_is_sent(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-at-start")
    code, out, err = run(rag_config(write_config, model, python), tmp_path / "out")
    assert code == 1, out + err
    assert "was killed by SIGILL (illegal instruction) while starting" in err
    assert PORTABLE_REBUILD in err
    assert "fake-llama: ggml_compute_forward: tilezero" in err  # the log's tail
    assert not list((tmp_path / "out").glob("**/*.parquet"))


def test_server_killed_by_sigill_on_its_first_request(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-after 0")
    root = tmp_path / "out"
    code, out, err = run(rag_config(write_config, model, python), root, "--run-id", "r1")
    assert code == 1, out + err
    # Reported at once, with the exit, the rebuild command and the log's tail.
    assert "error: provider gemma: not sent to any more: local model server" in err
    assert "was killed by SIGILL (illegal instruction) during the run" in err
    assert PORTABLE_REBUILD in err
    assert "fake-llama: chat request 1" in err
    assert "error: provider gemma failed: unavailable:" in err
    # One request reached the server (the warm-up that killed it), not 6 × 3 attempts.
    assert chat_requests(root / "r1" / "_local-gemma.log") == 1
    rows = pd.read_parquet(root)
    dead = rows[rows["provider"] == "gemma"]
    assert len(dead) == CASES
    assert set(dead["error_type"]) == {"provider_unavailable"}
    assert (dead["status"] == "error").all() and (dead["attempts"] == 0).all()
    assert dead["error_message"].str.contains("killed by SIGILL").all()
    assert dead["model"].eq("openai/gemma").all()
    assert (rows[rows["provider"] == "steady"]["status"] == "ok").all()
    # The paired test does not compare a provider that never answered.
    assert "gemma vs" not in out and "vs gemma" not in out
    assert "the paired comparison leaves out gemma: none of its 6 requests succeeded" in err
    manifest = json.loads((root / "r1" / "_manifest.json").read_text())
    assert "killed by SIGILL" in manifest["unavailable_providers"]["gemma"]
    assert manifest["warmup_errors"]["gemma"] == "connection_error"


def test_resume_sends_what_a_dead_provider_was_never_sent(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-after 0")
    root = tmp_path / "out"
    config = rag_config(write_config, model, python)
    assert run(config, root, "--run-id", "r1")[0] == 1
    model.write_text("sigill-after 100")  # "rebuilt": the same config now works
    code, out, err = run(config, root, "--resume", "r1")
    assert code == 0, out + err
    rows = pd.read_parquet(root)
    # One row per planned request (6 cases × 2 providers), the never-sent ones replaced.
    assert len(rows) == 2 * CASES and rows["request_index"].is_unique
    assert (rows["status"] == "ok").all()
    # 1 chat request killed the first server; the second got a warm-up and the 6 cases.
    assert chat_requests(root / "r1" / "_local-gemma.log") == 1 + 1 + CASES


def test_server_that_dies_during_the_run_stops_being_sent_to(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    # Request 1 is the warm-up, 2 and 3 are answered, 4 kills the server.
    model, python = fake_local("sigill-after 3")
    root = tmp_path / "out"
    code, out, err = run(rag_config(write_config, model, python), root, "--run-id", "r1")
    assert code == 1, out + err
    assert "was killed by SIGILL (illegal instruction) during the run" in err
    assert chat_requests(root / "r1" / "_local-gemma.log") == 4
    dead = pd.read_parquet(root).query("provider == 'gemma'").sort_values("request_index")
    assert dead["status"].tolist()[:2] == ["ok", "ok"]
    killed = dead.iloc[2]
    # The request in flight keeps its own error, and says what happened to the server.
    assert killed["status"] == "error" and killed["error_type"] == "connection_error"
    assert "killed by SIGILL" in killed["error_message"]
    assert dead["error_type"].iloc[3:].tolist() == ["provider_unavailable"] * (CASES - 3)
    assert "gemma vs" in out or "vs gemma" in out  # two answered cases: still paired


def test_failed_warm_up_of_a_live_local_server_shows_its_log(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("http-500")
    code, out, err = run(rag_config(write_config, model, python), tmp_path / "out")
    assert code == 1, out + err
    assert "error: provider gemma: warm-up failed: http_500 after 3 attempt(s)" in err
    assert "fake-llama: llama_decode failed: KV cache is full" in err  # the log's tail
    assert "error: provider gemma failed: its warm-up request failed (http_500)" in err
    rows = pd.read_parquet(tmp_path / "out")
    # The server is up: its answers are measured, errors and all.
    assert set(rows[rows["provider"] == "gemma"]["error_type"]) == {"http_500"}


def test_optional_provider_that_dies_is_reported_and_the_run_succeeds(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-after 0")
    root = tmp_path / "out"
    config = rag_config(write_config, model, python, optional=True)
    code, out, err = run(config, root)
    assert code == 0, out + err
    assert "note: optional provider gemma: not sent to any more:" in err
    assert "killed by SIGILL" in err
    assert "error:" not in err
    rows = pd.read_parquet(root)
    assert set(rows[rows["provider"] == "gemma"]["error_type"]) == {"provider_unavailable"}


def test_optional_provider_whose_server_does_not_start_is_reported_and_skipped(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-at-start")
    root = tmp_path / "out"
    code, out, err = run(rag_config(write_config, model, python, optional=True), root)
    assert code == 0, out + err
    assert "note: optional provider gemma: not sent to:" in err
    assert "killed by SIGILL (illegal instruction) while starting" in err
    rows = pd.read_parquet(root)
    dead = rows[rows["provider"] == "gemma"]
    assert len(dead) == CASES and set(dead["error_type"]) == {"provider_unavailable"}
    assert (rows[rows["provider"] == "steady"]["status"] == "ok").all()


def test_workers_see_the_server_die_too(
    fake_local: Callable[[str], tuple[Path, Path]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    model, python = fake_local("sigill-after 0")
    root = tmp_path / "out"
    config = rag_config(write_config, model, python, workers=2, concurrency=2)
    code, out, err = run(config, root, "--run-id", "r1")
    assert code == 1, out + err
    assert "killed by SIGILL" in err
    # Two warm-ups at most (one per worker), never the retries of every request.
    assert chat_requests(root / "r1" / "_local-gemma.log") <= 2
    dead = pd.read_parquet(root).query("provider == 'gemma'")
    assert set(dead["error_type"]) == {"provider_unavailable"}
    assert dead["error_message"].str.contains("killed by SIGILL").all()


def test_unreachable_provider_is_not_retried_after_its_warm_up(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    config = write_config(
        f"""
        run: {{name: refused}}
        providers:
          - name: nowhere
            model: openai/x
            api_base: http://127.0.0.1:{port}/v1
            retry_base_s: 0.01
          - name: steady
            simulate: {{ttft_ms: 2, itl_ms: 1, output_tokens: 4}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b"], requests: 5, max_tokens: 8}}
        """
    )
    root = tmp_path / "out"
    code, _, err = run(config, root)
    assert code == 1
    assert "error: provider nowhere: not sent to any more: its warm-up request could not" in err
    assert "connection_error after 3 attempt(s)" in err  # the warm-up was retried (2 retries)
    rows = pd.read_parquet(root)
    assert set(rows[rows["provider"] == "nowhere"]["error_type"]) == {"provider_unavailable"}


def test_failed_warm_up_is_reported_and_fails_the_run(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The warm-up gets the scripted 401; the measured requests then succeed.
    config = write_config(
        """
        run: {name: warm}
        providers:
          - name: keyless
            simulate: {ttft_ms: 2, itl_ms: 1, output_tokens: 4, script: [auth_error]}
        suites:
          - {name: s, kind: latency, prompts: ["a b"], requests: 3, max_tokens: 8}
        """
    )
    root = tmp_path / "out"
    code, _, err = run(config, root)
    assert code == 1
    assert "error: provider keyless: warm-up failed: http_401 after 1 attempt(s)" in err
    assert "error: provider keyless failed: its warm-up request failed (http_401)" in err
    assert (pd.read_parquet(root)["status"] == "ok").all()  # measured anyway: it answers


def test_provider_with_no_successful_request_fails_the_run(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        """
        run: {name: hopeless, warmup_requests: 0}
        providers:
          - name: hopeless
            simulate: {ttft_ms: 1, faults: {content_filter: 1.0}}
            max_retries: 0
          - name: fine
            simulate: {ttft_ms: 1, itl_ms: 0, output_tokens: 2}
        suites:
          - {name: s, kind: latency, prompts: ["a b"], requests: 4, max_tokens: 8}
        """
    )
    code, _, err = run(config, tmp_path / "out")
    assert code == 1
    assert "error: provider hopeless failed: none of its 4 requests succeeded" in err
    assert "fine" not in err


def test_retries_are_counted_beside_the_error_rate(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        """
        run: {name: retried, warmup_requests: 0, concurrency: 1}
        providers:
          - name: shaky
            simulate: {ttft_ms: 1, itl_ms: 0, output_tokens: 2,
                       script: [server_error, ok, server_error, server_error]}
            max_retries: 1
            retry_base_s: 0.01
            concurrency: 1
        suites:
          - {name: s, kind: latency, prompts: ["a b"], requests: 3, max_tokens: 8}
        """
    )
    root = tmp_path / "out"
    code, out, err = run(config, root)
    assert code == 0, out + err
    # request 1: 503 then ok (2 attempts, 1 failed); request 2: 503, 503 (2 attempts,
    # both failed, an error); request 3: ok at once. Retried: 2; failed attempts: 1 + 2 = 3.
    result = CliRunner().invoke(main, ["summarize", str(root), "--format", "json"])
    line = json.loads(result.stdout)[0]
    assert (line["errors"], line["retried"], line["failed_attempts"]) == (1, 2, 3)
    table = CliRunner().invoke(main, ["summarize", str(root)]).stdout
    header = table.splitlines()[3]  # below "run …" and the suite's title
    assert header.index("errors") < header.index("retried") < header.index("failed attempts")


def test_simulator_that_cannot_bind_shows_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for log_path in (None, tmp_path / "sim.log"):
            sim = SimProcess({"m": SimProfile()}, port=port, log_path=log_path)
            with pytest.raises(ProviderSetupError) as info:
                sim.start()
            message = str(info.value)
            assert "simulated provider exited with code 1 while starting" in message
            assert "last lines of its log:" in message
            assert "address already in use" in message.lower()
            sim.stop()  # idempotent


def test_simulator_that_fails_to_start_fails_the_run_with_its_log(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child imports a harness.sim that raises: the parent's own harness is untouched.
    broken = tmp_path / "broken"
    (broken / "harness" / "sim").mkdir(parents=True)
    (broken / "harness" / "__init__.py").write_text("")
    (broken / "harness" / "sim" / "__init__.py").write_text("")
    (broken / "harness" / "sim" / "__main__.py").write_text(
        "raise SystemExit('sim: cannot load profiles (broken on purpose)')\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{broken}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.chdir(tmp_path)  # ``python -m`` puts the working directory first
    config = write_config(
        """
        providers:
          - {name: p, simulate: {ttft_ms: 1}}
        suites:
          - {name: s, kind: latency, prompts: ["a"], requests: 1, max_tokens: 4}
        """
    )
    code, out, err = run(config, tmp_path / "out")
    assert code == 1, out + err
    assert "simulated provider exited with code 1 while starting" in err
    assert "sim: cannot load profiles (broken on purpose)" in err
    assert "AttributeError" not in err


def test_response_cache_is_shared_by_worker_processes(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Four questions x two repeats (the repeat is part of the key: 8 entries), answered by
    # two worker processes writing into one cache directory at once. Only rag_qa suites
    # without load: are cached. The session simulator keeps one api_base (part of the key).
    config = write_config(
        f"""
        run: {{name: cached, workers: 2, concurrency: 4, response_cache: {tmp_path / "cache"}}}
        providers:
          - name: p
            model: openai/fast
            api_base: {sim.api_base}
        suites:
          - name: s
            kind: rag_qa
            dataset: {REPO / "suites" / "rag_qa" / "acme_kb.jsonl"}
            limit: 4
            repeats: 2
            max_tokens: 8
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    assert run(config, root, "--run-id", "first")[0] == 0
    # 8 measured requests + one warm-up per worker: nothing is served back within a run.
    assert sim_requests(sim) - before == 8 + 2
    assert run(config, root, "--run-id", "second")[0] == 0
    rows = pd.read_parquet(root)
    first, second = (rows[rows["run_id"] == r] for r in ("first", "second"))
    assert len(first) == len(second) == 8
    assert not first["from_cache"].fillna(False).astype(bool).any()
    assert second["from_cache"].fillna(False).astype(bool).all()
    assert (second["status"] == "ok").all()
    # The second run sent only its warm-ups (one per worker, never cached): 2.
    assert sim_requests(sim) == before + 10 + 2
    assert set(second["worker"]) == {0, 1}
    # Eight (case, repeat) keys -> eight entries, however many workers wrote them; no
    # stray temporary files.
    stored = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(stored) == 8 and all(name.endswith(".json") for name in stored)
    assert not any(name.startswith(".") for name in stored)


def test_unknown_export_format_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["export", str(tmp_path / "nothing"), "--to", str(tmp_path / "r.pdf")]
    )
    assert result.exit_code == 2
    known = ".csv, .htm, .html, .json, .markdown, .md, .xlsx"
    assert f"unknown export format '.pdf'; known: {known}" in result.stderr
    assert not (tmp_path / "r.pdf").exists()
