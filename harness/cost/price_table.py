"""litellm's bundled price table, read as JSON without importing litellm (seconds faster).

It is the same file litellm itself loads when ``LITELLM_LOCAL_MODEL_COST_MAP``
is set, so prices agree with ``litellm.model_cost`` of the installed version.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

from harness.cost.pricing import price_table_identity

TABLE_FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def model_cost() -> dict[str, Any]:
    """The installed litellm's price table (empty if litellm is not installed)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return {}
    table: dict[str, Any] = json.loads((Path(spec.origin).parent / TABLE_FILE).read_bytes())
    return table


def identity() -> dict[str, Any]:
    """litellm version, sha256 and size of the table, for the manifest."""
    try:
        version = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return price_table_identity(model_cost(), version)
