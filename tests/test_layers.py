"""The architecture as rules on imports (docs/architecture.md): each package may import only
the packages below it. Every import counts, including those inside functions (lazy ones).

A rule broken here is a seam broken: e.g. a transport that imports a suite can no longer be
reused by a new suite kind, and a report that imports the runner can no longer be run on a
results root alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness"

# Package (or module) → the harness packages it must never import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "harness.request": ("harness.",),  # the leaf every stage shares
    "harness.errors": ("harness.",),
    "harness.secrets": ("harness.",),
    "harness.children": ("harness.",),
    "harness.cost": (
        "harness.run",
        "harness.report",
        "harness.providers",
        "harness.suites",
        "harness.config",
        "harness.store",
        "harness.sim",
        "harness.cli",
    ),
    "harness.store": (
        "harness.run",
        "harness.report",
        "harness.providers",
        "harness.suites",
        "harness.config",
        "harness.cost",
        "harness.sim",
        "harness.cli",
    ),
    "harness.sim": (
        "harness.run",
        "harness.report",
        "harness.providers",
        "harness.suites",
        "harness.config",
        "harness.store",
        "harness.cost",
        "harness.cli",
    ),
    # Transports know nothing of suites, configs, runs or reports, nor of prices (the
    # pipeline prices rows; an endpoint only carries its Price, a type of cost.pricing).
    "harness.providers": (
        "harness.suites",
        "harness.config",
        "harness.run",
        "harness.report",
        "harness.store",
        "harness.cli",
    ),
    # A run whose providers all use native clients never imports litellm (~7 s).
    **{
        f"harness.providers.{native}": (
            "harness.providers.litellm",
            "harness.providers.socket_stamps",
        )
        for native in ("direct", "anthropic", "gemini", "sse", "trace")
    },
    # The scheduler knows nothing of suites or of which transport sends.
    "harness.run.scheduler": (
        "harness.suites",
        "harness.providers.direct",
        "harness.providers.anthropic",
        "harness.providers.litellm",
        "harness.config",
        "harness.report",
    ),
    # Reports read only the results root.
    "harness.report": (
        "harness.run",
        "harness.providers",
        "harness.suites",
        "harness.config",
        "harness.sim",
        "harness.cli",
    ),
    "harness.scoring": (
        "harness.run",
        "harness.providers",
        "harness.suites",
        "harness.config",
        "harness.report",
        "harness.store",
        "harness.cli",
    ),
    "harness.suites": (
        "harness.run",
        "harness.report",
        "harness.store",
        "harness.config",
        "harness.cli",
    ),
    "harness.config": (
        "harness.run",
        "harness.report",
        "harness.providers",
        "harness.store",
        "harness.cli",
    ),
    "harness.run": ("harness.cli",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every harness module ``path`` imports, at any depth (``from harness import x`` as
    ``harness.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "harness":
                found |= {f"harness.{a.name}" for a in node.names}
            elif node.module.startswith("harness."):
                found.add(node.module)
    return found


def rules_for(module: str) -> list[str]:
    return [
        banned
        for owner, bans in FORBIDDEN.items()
        if module == owner or module.startswith(owner + ".")
        for banned in bans
    ]


def _inside(module: str, package: str) -> bool:
    """``module`` is ``package`` or below it (``"harness."`` means any harness module)."""
    if package.endswith("."):
        return module.startswith(package)
    return module == package or module.startswith(package + ".")


MODULES = sorted(HARNESS.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_downward(path: Path) -> None:
    module = module_name(path)
    banned = rules_for(module)
    broken = sorted(
        f"{module} imports {imported}"
        for imported in imports_of(path)
        if not _inside(imported, module) and any(_inside(imported, b) for b in banned)
    )
    assert not broken, "\n".join(broken)


def test_every_package_has_a_rule() -> None:
    """A new top-level package gets its place in FORBIDDEN (and in docs/architecture.md)."""
    packages = {p.parent.name for p in HARNESS.glob("*/__init__.py")}
    ruled = {name.split(".")[1] for name in FORBIDDEN}
    assert packages <= ruled, f"packages without an import rule: {sorted(packages - ruled)}"


def test_the_rules_catch_a_broken_seam(tmp_path: Path) -> None:
    """The checker itself: an import of a suite from a transport is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from harness.suites.rag_qa import score\n")
    assert "harness.suites.rag_qa" in imports_of(bad)
    assert "harness.suites" in rules_for("harness.providers.direct")
