"""The CLI as a user meets it: fast commands stay light, secrets stay in the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from harness import __version__
from harness.cli import main
from harness.sim import SimProcess


def light_command(*args: str) -> None:
    """Run a CLI command in a fresh interpreter and fail if it imported litellm."""
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        f"try:\n    main({list(args)!r})\n"
        "except SystemExit as e:\n    status = e.code\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "litellm was imported" not in result.stderr


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_help_validate_and_summarize_do_not_import_litellm(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    light_command("--help")
    light_command("validate", str(repo / "configs" / "quickstart.yaml"))
    # A tiny run to summarise, written by the store directly.
    from harness.store.parts import PartWriter

    writer = PartWriter(tmp_path / "r1", "r1")
    writer.add({"suite": "s", "provider": "p", "status": "ok", "ttft_s": 0.1, "simulated": False})
    writer.flush()
    light_command("summarize", str(tmp_path))


def test_summarize_formats_and_errors(tmp_path: Path) -> None:
    from harness.store.parts import PartWriter

    for run_id, ttft in (("a-run", 0.1), ("b-run", 0.3)):
        writer = PartWriter(tmp_path / run_id, run_id)
        for i in range(4):
            writer.add(
                {
                    "suite": "s",
                    "provider": "p",
                    "status": "ok",
                    "ttft_s": ttft + i / 100,
                    "simulated": False,
                    "output_tokens": 10,
                }
            )
        writer.flush()
    runner = CliRunner()
    latest = json.loads(
        runner.invoke(main, ["summarize", str(tmp_path), "--format", "json"]).stdout
    )
    assert latest[0]["ttft_p50_ms"] == pytest.approx(315.0)
    first = runner.invoke(main, ["summarize", str(tmp_path), "--run", "a-run", "--format", "csv"])
    assert first.stdout.splitlines()[0].startswith("suite,load_level,provider,model,requests")
    md = runner.invoke(main, ["summarize", str(tmp_path), "--format", "markdown"]).stdout
    # One table per suite, titled with its name and kind, human headers with units.
    assert "#### s (latency)" in md and "TTFT p50 (ms) |" in md and "### run b-run" in md
    missing = runner.invoke(main, ["summarize", str(tmp_path), "--run", "nope"])
    assert missing.exit_code == 2 and "known runs: a-run, b-run" in missing.stderr
    empty = runner.invoke(main, ["summarize", str(tmp_path / "nothing")])
    assert empty.exit_code == 2 and "no such results directory" in empty.stderr


def test_sim_command_serves_in_the_foreground() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "sim",
            "--port",
            "0",
            "--model",
            "m",
            "--ttft-ms",
            "5",
            "--output-tokens",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("listening on http://127.0.0.1:"), proc.stderr.read()  # type: ignore[union-attr]
        base = line.split()[-1]
        body = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
        answer = httpx.post(f"{base}/chat/completions", json=body).json()
        assert answer["usage"]["completion_tokens"] == 3
        assert len(answer["choices"][0]["message"]["content"].split()) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_api_keys_never_reach_results_or_output(
    sim: SimProcess,
    write_config: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-harnesstest-" + "Zq9" * 10
    monkeypatch.setenv("HARNESS_TEST_KEY", secret)
    config = write_config(
        f"""
        run: {{name: secrets}}
        providers:
          - {{name: good, model: openai/fast, api_base: "{sim.api_base}", api_key_env: HARNESS_TEST_KEY}}
          - {{name: bad, model: openai/broken, api_base: "{sim.api_base}", api_key_env: HARNESS_TEST_KEY}}
          - {{name: gone, model: openai/x, api_base: "http://127.0.0.1:9/v1", api_key_env: HARNESS_TEST_KEY}}
          - {{name: echo, simulate: {{faults: {{auth_error: 1.0}}}}, api_key_env: HARNESS_TEST_KEY}}
          - {{name: echo-litellm, simulate: {{faults: {{auth_error: 1.0}}}}, api_key_env: HARNESS_TEST_KEY, transport: litellm}}
        suites:
          - {{name: s, kind: latency, prompts: ["hi"], requests: 2, max_tokens: 4}}
        """
    )
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    # Four providers fail (exit 1); their messages on stderr are scrubbed like the rows.
    assert result.exit_code == 1, result.output
    for fmt in ("table", "csv", "markdown", "json"):
        out = CliRunner().invoke(main, ["summarize", str(root), "--format", fmt]).output
        assert secret not in out
    for ext in ("csv", "xlsx", "md", "html", "json"):
        exported = CliRunner().invoke(main, ["export", str(root), "--to", str(root / f"_r.{ext}")])
        assert exported.exit_code == 0, exported.output
    import pandas as pd

    rows = pd.read_parquet(root)
    echoed = rows[rows["provider"].str.startswith("echo")]
    assert set(echoed["error_type"]) == {"http_401"}, echoed[
        ["error_type", "error_message"]
    ].to_string()
    assert echoed["error_message"].str.contains("***", regex=False).all()
    assert secret not in result.output
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "_manifest.json" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
        assert b"Zq9Zq9Zq9" not in path.read_bytes(), path
