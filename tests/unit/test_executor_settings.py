"""run.executor / run.ray and --executor / --ray-address: what is accepted, what is refused
(file, key, line; exit 2), and that the executor is not part of the plan's hash."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config.spec import load_config, with_executor
from harness.errors import ConfigError

BODY = """
providers:
  - {name: p, simulate: {}}
suites:
  - {name: s, kind: latency, prompts: ["a"], requests: 2}
"""


def config(write_config: Callable[..., Path], run: str) -> Path:
    path: Path = write_config(f"run: {run}\n{BODY}")
    return path


def test_executor_defaults_follow_workers(write_config: Callable[..., Path]) -> None:
    assert load_config(config(write_config, "{}")).run.executor_name == "inline"
    assert load_config(config(write_config, "{workers: 3}")).run.executor_name == "processes"
    spec = load_config(config(write_config, "{executor: ray, ray: {actors: 2}}"))
    assert spec.run.executor_name == "ray"
    assert spec.run.ray is not None and spec.run.ray.actors == 2
    assert spec.run.ray.streams_per_actor == 32 and spec.run.ray.address is None


@pytest.mark.parametrize(
    ("run", "line", "key", "message"),
    [
        ("{workers: 2,\n  executor: ray}", 2, "run.executor", "conflicts with workers: 2"),
        ("{workers: 2,\n  executor: inline}", 2, "run.executor", "conflicts with workers: 2"),
        ("{executor: processes,\n  ray: {actors: 2}}", 2, "run.ray", "needs executor: ray"),
        ("{executor: ray,\n  ray: {address: 'http://x'}}", 2, "run.ray.address", "pattern"),
        ("{executor: ray,\n  ray: {actors: 0}}", 2, "run.ray.actors", "greater than"),
    ],
)
def test_conflicts_name_file_key_and_line(
    write_config: Callable[..., Path], run: str, line: int, key: str, message: str
) -> None:
    path = config(write_config, run)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}: {key}: " in result.stderr
    assert message in result.stderr


def test_a_budget_is_allowed_with_every_executor(write_config: Callable[..., Path]) -> None:
    for run in ("{budget_usd: 1, executor: ray}", "{budget_usd: 1, workers: 2}"):
        assert load_config(config(write_config, run)).run.budget_usd == 1


def test_the_command_line_wins_and_the_hash_stays(write_config: Callable[..., Path]) -> None:
    spec = load_config(config(write_config, "{workers: 4}"))
    on_ray = with_executor(spec, "ray", "ray://head:10001")
    assert on_ray.run.executor_name == "ray" and on_ray.run.workers == 1
    assert on_ray.run.ray is not None and on_ray.run.ray.address == "ray://head:10001"
    assert on_ray.resolved["run"]["executor"] == "ray"
    assert with_executor(spec, None, "auto").run.executor_name == "ray"  # implied
    # Where requests are sent from is not the plan: a run may resume on another executor.
    assert on_ray.config_hash == spec.config_hash
    assert with_executor(spec, "inline").run.executor_name == "inline"
    assert with_executor(spec, None, None) is spec
    with pytest.raises(ConfigError, match="--ray-address needs the ray executor"):
        with_executor(spec, "processes", "auto")
    with pytest.raises(ConfigError, match=r"--executor ray --ray-address nowhere: .*pattern"):
        with_executor(spec, "ray", "nowhere")


def test_cli_refuses_a_bad_address_before_sending(write_config: Callable[..., Path]) -> None:
    path = config(write_config, "{}")
    result = CliRunner().invoke(main, ["run", str(path), "--ray-address", "http://x"])
    assert result.exit_code == 2
    assert f"{path}: --ray-address http://x:" in result.stderr


def test_without_ray_installed_the_error_says_how_to_get_it(
    write_config: Callable[..., Path],
) -> None:
    path = config(write_config, "{concurrency: 2,\n  executor: ray}")
    # sys.modules["ray"] = None is how Python blocks an import: as if it were not installed.
    code = (
        "import sys; sys.modules['ray'] = None; from harness.cli import main;"
        f" main(['validate', {str(path)!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert f"{path}:2: run.executor: " in done.stderr
    assert "pip install harness[ray]" in done.stderr
