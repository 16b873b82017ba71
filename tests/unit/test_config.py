"""Bad configs fail before any request, naming file, key path and line, with exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config.spec import load_config
from harness.errors import ConfigError
from harness.sim import SimProcess

from ..conftest import sim_requests

GOOD_PROVIDER = """
providers:
  - name: a
    model: openai/fast
    api_base: http://127.0.0.1:9/v1
"""
GOOD_SUITE = """
suites:
  - {name: s, kind: latency, prompts: ["hi"], requests: 2}
"""


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_the_quickstart_config_is_valid() -> None:
    spec = load_config(Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml")
    assert all(p.simulated or p.optional for p in spec.providers)
    assert {s.name for s in spec.suites} >= {"hello"}


def test_unknown_key_names_file_key_and_line(write_config: Callable[..., Path]) -> None:
    path = write_config(
        dedent("""
        run:
          name: x
        providers:
          - name: a
            model: openai/fast
            api_bse: http://127.0.0.1:9/v1
        """)
        + GOOD_SUITE
    )
    assert error_of(path) == f"{path}:7: providers[0].api_bse: unknown key"


def test_wrong_type_names_the_line(write_config: Callable[..., Path]) -> None:
    path = write_config(
        dedent("""
        run:
          concurrency: lots
        """)
        + GOOD_PROVIDER
        + GOOD_SUITE
    )
    message = error_of(path)
    assert message.startswith(f"{path}:3: run.concurrency: ")
    assert "integer" in message


def test_error_inside_a_suite_file_names_that_file(write_config: Callable[..., Path]) -> None:
    suite = write_config(
        """
        name: s
        kind: latency
        prompts: ["a"]
        max_tokens: -1
        """,
        name="suites/s.yaml",
    )
    path = write_config(GOOD_PROVIDER + "suites: [suites/s.yaml]\n")
    message = error_of(path)
    assert message.startswith(f"{suite}:5: max_tokens: ")


def test_missing_suite_file(write_config: Callable[..., Path]) -> None:
    path = write_config(GOOD_PROVIDER + "suites:\n  - suites/nope.yaml\n")
    assert error_of(path) == f"{path}:7: suites[0]: suite file not found: suites/nope.yaml"


def test_missing_config_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: file not found"


def test_unknown_suite_kind_lists_the_known_ones(write_config: Callable[..., Path]) -> None:
    path = write_config(GOOD_PROVIDER + "suites:\n  - {name: s, kind: latncy}\n")
    assert (
        "suite kind is 'latncy'; known: chat, cost, latency, prompt_cache, rag_qa, structured, tool_call"
        in error_of(path)
    )


def test_duplicate_provider_name(write_config: Callable[..., Path]) -> None:
    path = write_config(
        dedent("""
        providers:
          - {name: a, model: openai/x}
          - {name: b, model: openai/y}
          - {name: a, model: openai/z}
        """)
        + GOOD_SUITE
    )
    assert (
        error_of(path) == f"{path}:5: providers[2].name: duplicate provider name 'a'"
        " (first at providers[0])"
    )


def test_literal_api_key_is_refused(write_config: Callable[..., Path]) -> None:
    path = write_config(
        dedent("""
        providers:
          - name: a
            model: openai/gpt-4o-mini
            api_key: not-even-key-shaped
        """)
        + GOOD_SUITE
    )
    message = error_of(path)
    assert message.startswith(f"{path}:5: providers[0].api_key: literal API keys are not allowed")
    assert "not-even-key-shaped" not in message


def test_key_shaped_value_anywhere_is_refused(write_config: Callable[..., Path]) -> None:
    key = "sk-proj-" + "A1b2C3d4" * 4
    path = write_config(
        dedent(f"""
        providers:
          - name: a
            model: openai/gpt-4o-mini
            params: {{user: {key}}}
        """)
        + GOOD_SUITE
    )
    message = error_of(path)
    assert message.startswith(f"{path}:5: providers[0].params.user: this looks like a literal")
    assert key not in message


def test_env_interpolation(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_HOST", "10.0.0.7")
    path = write_config(
        dedent("""
        run: {name: "${RUN_NAME:-nightly}"}
        providers:
          - {name: a, model: openai/x, api_base: "http://${BENCH_HOST}:8000/v1"}
        """)
        + GOOD_SUITE
    )
    spec = load_config(path)
    assert spec.providers[0].api_base == "http://10.0.0.7:8000/v1"
    assert spec.run.name == "nightly"


def test_unset_or_secret_variables_are_errors(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write_config(
        'providers:\n  - {name: a, model: "openai/${NOT_SET_ANYWHERE}"}\n' + GOOD_SUITE
    )
    assert error_of(path) == (
        f"{path}:2: providers[0].model: environment variable NOT_SET_ANYWHERE is not set"
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-whatever-secret-value")
    path = write_config(
        'providers:\n  - {name: a, model: openai/x, api_base: "${OPENAI_API_KEY}"}\n' + GOOD_SUITE
    )
    message = error_of(path)
    assert "looks like a secret" in message and "sk-whatever" not in message


def test_invalid_yaml_names_the_line(write_config: Callable[..., Path]) -> None:
    path = write_config("providers:\n  - name: a\n    model: [unclosed\n")
    assert error_of(path).startswith(f"{path}:")
    assert "invalid YAML" in error_of(path)


def test_yaml_tags_cannot_run_code(write_config: Callable[..., Path]) -> None:
    path = write_config('run: !!python/object/apply:os.system ["echo pwned"]\n')
    assert "invalid YAML" in error_of(path)


def test_bad_config_exits_2_and_sends_nothing(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config(
        f"""
        providers:
          - name: a
            model: openai/fast
            api_base: {sim.api_base}
        suites:
          - {{name: s, kind: latency, prompts: ["hi"], requests: 2, max_tokns: 3}}
        """
    )
    before = sim_requests(sim)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert f"{path}:7: suites[0].max_tokns: unknown key" in result.stderr
    assert sim_requests(sim) == before
    assert not (tmp_path / "r").exists()
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 2


def test_missing_api_key_env_fails_before_sending(
    sim: SimProcess,
    write_config: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARNESS_TEST_UNSET_KEY", raising=False)
    path = write_config(
        dedent(f"""
        providers:
          - {{name: a, model: openai/fast, api_base: "{sim.api_base}", api_key_env: HARNESS_TEST_UNSET_KEY}}
        """)
        + GOOD_SUITE
    )
    before = sim_requests(sim)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "providers[0].api_key_env: HARNESS_TEST_UNSET_KEY" in result.stderr
    assert sim_requests(sim) == before


def test_the_shipped_example_configs_are_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    for name in ("quickstart.yaml", "nightly.example.yaml"):
        spec = load_config(repo / "configs" / name)
        assert spec.providers
        assert spec.suites
