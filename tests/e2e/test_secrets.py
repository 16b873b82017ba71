"""A real run with keys in the environment: their text is in no file it writes or exports.

The simulator's ``auth_error`` fault answers 401 with the Authorization header and every
secret-named header echoed in the error body, and logs them, as a careless provider or
proxy would. Both transports (direct and litellm) and a judge send secrets: the provider's
key (``api_key_env``) and header secrets given as ``${VAR}`` in ``params.extra_headers``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main

from ..conftest import TEST_DATA

# Fake, real-shaped: an OpenAI project key, and an opaque header secret that has no
# known shape at all (only the harness knowing it can remove it).
API_KEY = "sk-proj-" + "Zq9Xw8Vu7" * 4 + "T3BlbkFJ"
HEADER_SECRET = "hdr-" + "Qk7Lm3" * 5
JUDGE_SECRET = "jdg-" + "Rt5Np2" * 5
SECRETS = (API_KEY, HEADER_SECRET, JUDGE_SECRET)
# Distinctive fragments too, so a partly scrubbed key is also caught.
FRAGMENTS = ("Zq9Xw8Vu7Zq9", "Qk7Lm3Qk7Lm3", "Rt5Np2Rt5Np2")

HEADERS = (
    '{x-api-key: "${HARNESS_E2E_HEADER}", X-Auth-Token: "${HARNESS_E2E_HEADER}",'
    " X-Request-Tag: plain-value}"
)


def leaks(data: bytes) -> list[str]:
    return [s for s in (*SECRETS, *FRAGMENTS) if s.encode() in data]


def file_leaks(path: Path) -> list[str]:
    """Leaks in a file; an .xlsx is a zip, so each member is read uncompressed."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            return [hit for name in archive.namelist() for hit in leaks(archive.read(name))]
    return leaks(path.read_bytes())


def test_no_secret_in_any_file_of_the_run_or_its_exports(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_E2E_KEY", API_KEY)
    monkeypatch.setenv("HARNESS_E2E_HEADER", HEADER_SECRET)
    monkeypatch.setenv("HARNESS_E2E_JUDGE", JUDGE_SECRET)
    config = write_config(
        f"""
        run: {{name: secrets, warmup_requests: 0}}
        providers:
          - name: echo-direct
            simulate: {{faults: {{auth_error: 1.0}}}}
            api_key_env: HARNESS_E2E_KEY
            params: {{extra_headers: {HEADERS}}}
          - name: echo-litellm
            simulate: {{faults: {{auth_error: 1.0}}}}
            api_key_env: HARNESS_E2E_KEY
            transport: litellm
            params: {{extra_headers: {HEADERS}}}
          - name: fine
            simulate: {{ttft_ms: 1, itl_ms: 0, output_tokens: 3}}
            api_key_env: HARNESS_E2E_KEY
            params: {{extra_headers: {HEADERS}}}
        suites:
          - {{name: lat, kind: latency, prompts: ["hi"], requests: 2, max_tokens: 4}}
          - name: qa
            kind: rag_qa
            dataset: {TEST_DATA / "squad-v2" / "sample-200.jsonl"}
            limit: 2
            judge:
              simulate: {{ttft_ms: 1, itl_ms: 0, seed: 5}}
              params: {{extra_headers: {{Authorization: "Bearer ${{HARNESS_E2E_JUDGE}}"}}}}
        """
    )
    root = tmp_path / "results"
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    # The echoing providers fail every request on purpose, so the run exits 1 and says
    # so; what matters here is that no secret is in any of it.
    assert result.exit_code == 1, result.output
    assert "provider echo-direct failed" in result.output
    assert not leaks(result.output.encode())

    rows = pd.read_parquet(root)
    # 3 providers × (2 latency requests + 2 cases × 1 repeat) = 12 rows.
    assert len(rows) == 12
    echoed = rows[rows["provider"].str.startswith("echo")]
    assert len(echoed) == 8 and set(echoed["error_type"]) == {"http_401"}
    for message in echoed["error_message"]:
        # The headers did reach the server (it echoed them), and lost their values.
        assert "x-api-key: ***" in message.lower(), message
        assert "x-auth-token: ***" in message.lower(), message
    assert (rows[rows["provider"] == "fine"]["status"] == "ok").all()
    judged = rows[(rows["provider"] == "fine") & (rows["suite"] == "qa")]
    assert judged["judge_error"].isna().all() and judged["judge_correctness"].notna().all()

    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "_manifest.json").read_text())
    providers = {p["name"]: p for p in manifest["config"]["providers"]}
    assert providers["echo-direct"]["params"]["extra_headers"]["x-api-key"] == (
        "${HARNESS_E2E_HEADER}"
    )
    judge = manifest["config"]["suites"][1]["judge"]
    assert judge["params"]["extra_headers"]["Authorization"] == "Bearer ${HARNESS_E2E_JUDGE}"
    # The simulator logged what it rejected; the run's copy of the log is scrubbed.
    sim_log = (run_dir / "_sim.log").read_text()
    assert "rejected credentials Bearer ***" in sim_log

    outputs = {}
    for fmt in ("table", "csv", "markdown", "json"):
        out = runner.invoke(main, ["summarize", str(root), "--format", fmt])
        assert out.exit_code == 0, out.output
        outputs[f"summarize {fmt}"] = out.output
    out = runner.invoke(main, ["leaderboard", str(root), "--format", "json"])
    outputs["leaderboard"] = out.output
    exports = tmp_path / "exports"
    for ext in ("csv", "xlsx", "md", "html", "json"):
        out = runner.invoke(main, ["export", str(root), "--to", str(exports / f"r.{ext}")])
        assert out.exit_code == 0, out.output
        outputs[f"export {ext}"] = out.output
    assert {
        name: leaks(text.encode()) for name, text in outputs.items() if leaks(text.encode())
    } == {}

    files = [p for p in (*root.rglob("*"), *exports.rglob("*")) if p.is_file()]
    assert {p.name for p in files} >= {"_manifest.json", "_sim.log", "r.xlsx", "r.html"}
    found = {str(p): file_leaks(p) for p in files}
    assert {p: hits for p, hits in found.items() if hits} == {}
