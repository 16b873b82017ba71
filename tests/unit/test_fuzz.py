"""Hostile input: every config or dataset either loads or fails with the clean error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import load_config
from harness.datasets import DatasetError, load_cases
from harness.errors import ConfigError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
)
keys = st.sampled_from(
    [
        "run",
        "providers",
        "suites",
        "name",
        "model",
        "kind",
        "prompts",
        "requests",
        "max_tokens",
        "simulate",
        "concurrency",
        "api_base",
        "api_key_env",
        "api_key",
        "params",
        "load",
        "levels",
        "pattern",
        "dataset",
        "ttft_ms",
        "budget_usd",
        "pricing",
        "x",
    ]
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)


def load_text(text: str, name: str = "c.yaml") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
        except ConfigError:
            pass


@SETTINGS
@given(documents)
def test_structured_configs_load_or_fail_cleanly(document: object) -> None:
    load_text(yaml.safe_dump(document, allow_unicode=True))


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_configs_load_or_fail_cleanly(text: str) -> None:
    load_text(text)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["d.jsonl", "d.csv", "d.json", "d.parquet"]))
def test_arbitrary_bytes_datasets_load_or_fail_cleanly(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            load_cases(path)
        except DatasetError:
            pass


@SETTINGS
@given(st.lists(st.dictionaries(keys, documents, max_size=5), max_size=4))
def test_structured_jsonl_datasets_load_or_fail_cleanly(records: list[dict[str, object]]) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.jsonl"
        path.write_text("\n".join(json.dumps(r, default=str) for r in records))
        try:
            load_cases(path)
        except DatasetError:
            pass
