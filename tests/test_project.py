"""Project hygiene that CI enforces through the test command: lint, types, pinned dependencies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPROMISED_LITELLM = {"1.82.7", "1.82.8"}  # supply-chain compromise, March 2026


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -r requirements.lock)"
    return found


def test_ruff() -> None:
    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [tool("ruff"), *args, "harness", "tests", "benchmarks"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = subprocess.run([tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


LOCKS = ("requirements.lock", "requirements-local.lock", "requirements-ray.lock")


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_file_pins_every_package_with_hashes(lock: str) -> None:
    text = (REPO / lock).read_text()
    requirements = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s\\]+)", text, re.M)
    assert len(requirements) > 20
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[-1])
    for block in blocks:
        if block.strip() and not block.startswith("#"):
            assert "--hash=sha256:" in block, f"no hash for: {block.splitlines()[0]}"
    versions = dict(requirements)
    assert versions["litellm"] not in COMPROMISED_LITELLM


def test_installed_litellm_is_not_a_compromised_release() -> None:
    from importlib.metadata import version

    assert version("litellm") not in COMPROMISED_LITELLM
