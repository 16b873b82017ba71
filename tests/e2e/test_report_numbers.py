"""Numbers a user reads are right end to end: printed costs of a real run, ``validate``'s
count against what the run stores, the ``models`` command and the dry run's warnings."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config.spec import load_config
from harness.run.session import deprecation_warnings
from harness.sim import SimProcess

from ..conftest import REPO, sim_requests
from ..unit.test_number_formats import column

# The steady profile answers "one two three four" with 4 input and 12 output tokens.
# cheap: 4 × $0.25/M + 12 × $1.30/M = $0.000001 + $0.0000156 = $0.0000166 a request,
#        $0.0166 per 1k requests;
# dear:  4 × $0.50/M + 12 × $2.85/M = $0.000002 + $0.0000342 = $0.0000362 a request,
#        $0.0362 per 1k requests. Both sub-cent: the case that printed "0.0".
CHEAP = "pricing: {input_per_mtok: 0.25, output_per_mtok: 1.30}"
DEAR = "pricing: {input_per_mtok: 0.50, output_per_mtok: 2.85}"


def cost_table(text: str) -> str:
    """The first printed table with a cost column, without the suite's title line."""
    chunk = next(c for c in text.split("\n\n") if "$ per 1k requests" in c)
    lines = chunk.splitlines()
    return "\n".join(lines[next(i for i, x in enumerate(lines) if "$ per 1k" in x) :])


def test_a_run_of_priced_providers_prints_their_costs(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: cheap, model: openai/steady, api_base: "{sim.api_base}", {CHEAP}}}
          - {{name: dear, model: openai/steady, api_base: "{sim.api_base}", {DEAR}}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 4, max_tokens: 32}}
        """
    )
    root = tmp_path / "out"
    runner = CliRunner()
    ran = runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    # The run's own table, then summarize in every format.
    assert column(cost_table(ran.stdout), "$ per 1k requests", markdown=False) == [
        "$0.0166",
        "$0.0362",
    ]
    for fmt in ("table", "markdown"):
        text = runner.invoke(main, ["summarize", str(root), "--format", fmt]).stdout
        cells = column(cost_table(text), "$ per 1k requests", markdown=fmt == "markdown")
        assert cells == ["$0.0166", "$0.0362"], text
    records = json.loads(runner.invoke(main, ["summarize", str(root), "--format", "json"]).stdout)
    assert [r["usd_per_1k_requests"] for r in records] == pytest.approx([0.0166, 0.0362])
    csv_text = runner.invoke(main, ["summarize", str(root), "--format", "csv"]).stdout
    assert csv_text.splitlines()[0].split(",").count("usd_per_1k_requests") == 1
    board = runner.invoke(main, ["leaderboard", str(root)])
    assert board.exit_code == 0, board.output
    assert "$0.0166" in board.stdout and "$0.0362" in board.stdout
    for ext in ("md", "html"):
        out = tmp_path / f"report.{ext}"
        assert runner.invoke(main, ["export", str(root), "--to", str(out)]).exit_code == 0
        text = out.read_text(encoding="utf-8")
        assert "$0.0166" in text and "$0.0362" in text, ext


def test_validate_counts_what_the_run_sends(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Two simulated providers (one remote-style, one built in) and an optional local
    # model whose package does not exist: the run skips it, so validate must too.
    config = write_config(
        f"""
        run: {{warmup_requests: 2}}
        providers:
          - {{name: remote, model: openai/steady, api_base: "{sim.api_base}"}}
          - {{name: built-in, simulate: {{ttft_ms: 5, itl_ms: 1, output_tokens: 4}}}}
          - {{name: absent, local: {{package: no-such-model-gguf}}, optional: true}}
        suites:
          - {{name: a, kind: latency, prompts: ["hi"], requests: 3, max_tokens: 8}}
          - {{name: b, kind: latency, prompts: ["hi", "yo"], requests: 4, max_tokens: 8}}
        """
    )
    runner = CliRunner()
    checked = runner.invoke(main, ["validate", str(config)])
    assert checked.exit_code == 0, checked.output
    # 2 providers sent to × (3 + 4) requests = 14; 3 × 7 = 21 if the skipped one counted.
    assert (
        f"{config}: ok — 2 providers, 2 suites, 14 requests planned; not counted:"
        " 2 unrecorded warm-up requests per provider; skipped optional providers: absent"
    ) in checked.stdout
    assert "absent skipped" in checked.stderr
    before = sim_requests(sim)
    root = tmp_path / "out"
    ran = runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    rows = pd.read_parquet(root)
    assert len(rows) == 14
    assert set(rows["provider"]) == {"remote", "built-in"}
    # The remote one got its 7 measured requests and the 2 warm-ups validate left out.
    assert sim_requests(sim) - before == 7 + 2


def test_models_needs_a_target_and_a_missing_config_is_an_error(tmp_path: Path) -> None:
    runner = CliRunner()
    bare = runner.invoke(main, ["models"])
    assert bare.exit_code == 2
    assert "Missing argument 'TARGETS...'" in bare.output
    typo = runner.invoke(main, ["models", str(tmp_path / "nope.yaml")])
    assert typo.exit_code == 2
    assert f"{tmp_path / 'nope.yaml'}: no such config file" in typo.stderr


def test_models_table_prints_prices_and_limits_by_meaning() -> None:
    result = CliRunner().invoke(main, ["models", "openai/gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    # litellm's table: $0.15/M input, $0.60/M output, 128,000 input tokens, 16,384 output.
    assert column(result.stdout, "input_per_mtok", markdown=False) == ["$0.15"]
    assert column(result.stdout, "output_per_mtok", markdown=False) == ["$0.60"]
    assert column(result.stdout, "max_input_tokens", markdown=False) == ["128,000"]
    assert column(result.stdout, "max_output_tokens", markdown=False) == ["16,384"]


def test_the_readme_models_example_exits_as_the_readme_says() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [line] = [
        ln for ln in readme.splitlines() if re.match(r"\S*harness models .*--within 90\s+#", ln)
    ]
    command, _, comment = line.partition("#")
    args = shlex.split(command)[1:]  # drop ".venv/bin/harness"
    result = CliRunner().invoke(main, args)
    assert "exit 0" in comment
    assert result.exit_code == 0, result.output


def test_dry_run_warns_like_a_run_and_lists_unset_keys(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HARNESS_TEST_UNSET_KEY", raising=False)
    monkeypatch.delenv("HARNESS_TEST_UNSET_HEADER", raising=False)
    config = write_config(
        """
        providers:
          - {name: old, model: deepseek/deepseek-chat, api_key_env: HARNESS_TEST_UNSET_KEY}
          - name: gateway
            model: openai/some-model
            api_base: http://127.0.0.1:9/v1
            params: {extra_headers: {Authorization: "Bearer ${HARNESS_TEST_UNSET_HEADER}"}}
        suites:
          - {name: s, kind: latency, prompts: ["hi"], requests: 2, max_tokens: 8}
        """
    )
    result = CliRunner().invoke(main, ["run", str(config), "--dry-run", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output  # a dry run works without keys
    assert "Nothing was sent." in result.stdout
    # The run's own warnings, word for word: deepseek-chat's date (2026-07-24 in litellm's
    # table) is past, so it is deprecated.
    warnings = deprecation_warnings(load_config(config))
    assert warnings and "deepseek/deepseek-chat is deprecated (2026-07-24)" in warnings[0]
    for warning in warnings:
        assert f"warning: {warning}" in result.stderr
    assert f"{config}: providers[0].api_key_env: HARNESS_TEST_UNSET_KEY" in result.stderr
    assert f"{config}: providers[1].params: ${{HARNESS_TEST_UNSET_HEADER}}" in result.stderr
    # The same config without --dry-run stops on those variables, before sending.
    ran = CliRunner().invoke(main, ["run", str(config), "--out", str(tmp_path / "r")])
    assert ran.exit_code == 2
    assert "HARNESS_TEST_UNSET_KEY" in ran.stderr
