"""One module decides what is secret: a table of real-shaped FAKE keys in every position.

Every key below has the shape of a real credential (prefix, alphabet, length) and is
made up. Each is tried where a user could put it: a provider's ``api_key``, nested
``params.extra_headers``, a list inside ``params``, a judge's params, a suite file, a
``${VAR}`` that resolves to it, free text (an error body), a manifest, a report table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config.spec import load_config
from harness.errors import ConfigError
from harness.report.export import Report, redact_report
from harness.secrets import (
    REDACTED,
    audit,
    expand_refs,
    find_secret,
    is_secret_name,
    redact,
    redact_frame,
    scrub,
    scrub_file,
)
from harness.store.files import read_manifest, write_manifest

_ALNUM = "Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef"  # 32 characters, mixed case and digits

# (name, key, the name find_secret gives it)
FAKE_KEYS = [
    ("openai-project", "sk-proj-" + _ALNUM + "_" + _ALNUM[::-1] + "T3BlbkFJ", "OpenAI API key"),
    ("openai-legacy", "sk-" + _ALNUM + "q1W2e3R4t5Y6u7I8", "OpenAI API key"),
    ("anthropic", "sk-ant-api03-" + _ALNUM * 2 + "-" + _ALNUM[:28] + "AA", "Anthropic API key"),
    ("google", "AIza" + "SyD3-" + _ALNUM[:30], "Google API key"),
    ("aws-access-key-id", "AKIA" + "IOSFODNN7EXAMPLE", "AWS access key id"),
    ("aws-session-key-id", "ASIA" + "Z3QF7EXAMPLE2XYZ", "AWS access key id"),
    ("huggingface", "hf_" + _ALNUM + "Xy", "Hugging Face token"),
    ("github", "ghp_" + _ALNUM + "R2d2", "GitHub token"),
    ("groq", "gsk_" + _ALNUM + "Q9", "Groq API key"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXIiLCJpYXQiOjE3MDB9."
        "dQw4w9WgXcQ-fAkEsIgNaTuRe_0123456789",
        "JWT",
    ),
    ("bearer", "Bearer " + "opaque-" + _ALNUM, "bearer token"),
]
# The other half of an AWS credential: 40 characters of base64, shaped like anything
# else. It is found by its label, or by the key-name rule, or as a known value.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
IDS = [name for name, _, _ in FAKE_KEYS]
KEYS = [key for _, key, _ in FAKE_KEYS]

GOOD_SUITE = "suites:\n  - {name: s, kind: latency, prompts: [hi], requests: 1}\n"


def secret_part(key: str) -> str:
    """The part of a key that must vanish ("Bearer " itself is no secret)."""
    return key.removeprefix("Bearer ")


def test_fake_keys_have_real_shapes() -> None:
    # Lengths of the real formats: sk-ant-api03- + 95, AIza + 35, AKIA + 16, hf_ + 34.
    shapes = {name: key for name, key, _ in FAKE_KEYS}
    assert len(shapes["anthropic"]) == len("sk-ant-api03-") + 95
    assert len(shapes["google"]) == 4 + 35
    assert len(shapes["aws-access-key-id"]) == 4 + 16
    assert len(shapes["huggingface"]) == 3 + 34
    assert len(AWS_SECRET) == 40


# ------------------------------------------------------------------ free text


@pytest.mark.parametrize(("key", "kind"), [(k, n) for _, k, n in FAKE_KEYS], ids=IDS)
def test_every_shape_is_named_and_scrubbed_from_text(key: str, kind: str) -> None:
    assert find_secret(key) == kind
    for text in (
        key,
        f"401 Unauthorized: {key} was rejected",
        json.dumps({"error": {"message": f"bad credential ({key})", "code": 401}}),
        f"line one\nAuthorization={key}\nline three",
    ):
        cleaned = scrub(text)
        assert secret_part(key) not in cleaned, cleaned
        assert REDACTED in cleaned


def test_known_values_and_labelled_values_are_scrubbed_whatever_their_shape() -> None:
    opaque = "my-custom-key-1234"  # no known shape: only knowing it removes it
    text = f"key {opaque} rejected; header x-api-key: hdr-value-987; ?api_key=q1w2e3r4&x=1"
    cleaned = scrub(text, opaque, None, "")
    assert cleaned == "key *** rejected; header x-api-key: ***; ?api_key=***&x=1"
    assert scrub(f"aws_secret_access_key = {AWS_SECRET}") == "aws_secret_access_key = ***"
    assert scrub(f"AWS-Secret-Access-Key: {AWS_SECRET}") == "AWS-Secret-Access-Key: ***"
    assert scrub("Authorization: Bearer abc.def-123") == "Authorization: Bearer ***"
    assert scrub("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 4096, first_token_timeout_s: 20.0",
        "risk-assessment-framework-v2 and task-management-system-foo",
        "the answer is 42 and the model is openai/gpt-4o-mini",
        "x-api-key: ${HARNESS_HEADER_KEY}",  # a reference, not a value
        "Bearer ***",
        "AKIAIOSFODNN7EXAMPLEXTRA",  # longer than an access key id: something else
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text
    assert find_secret(text) is None


def test_short_known_values_are_ignored() -> None:
    # Replacing a 3-character "secret" everywhere would destroy the text.
    assert scrub("abc abcdef", "abc") == "abc abcdef"


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "x-api-key",
        "X-Goog-Api-Key",
        "Ocp-Apim-Subscription-Key",
        "Authorization",
        "proxy-authorization",
        "X-Auth-Token",
        "access_token",
        "aws_secret_access_key",
        "aws_session_token",
        "client_secret",
        "apiKey",
        "apikey",
        "password",
        "Cookie",
        "x-api-key-2",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "api_key_env",  # names a variable
        "max_tokens",
        "first_token_timeout_s",
        "token_budget",
        "keywords",
        "monkey",
        "temperature",
        "extra_headers",
        "aws_access_key_id",  # the id is found by its shape (AKIA…)
        "",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


# ------------------------------------------------------------------ redaction


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_redact_reaches_every_depth(key: str) -> None:
    data = {
        "providers": [
            {
                "name": "a",
                "params": {
                    "extra_headers": {"x-api-key": "plain-but-secret-named", "X-Trace": key},
                    "stop": ["ok", f"prefix {key} suffix"],
                    "nested": [{"deeper": [{"token": 12345678}]}],
                },
                "api_key_env": "OPENAI_API_KEY",
                "tags": {"use_token": True},
            }
        ],
        "max_tokens": 64,
    }
    out = redact(data, "plain-but-secret-named")
    text = json.dumps(out)
    assert secret_part(key) not in text and "plain-but-secret-named" not in text
    params = out["providers"][0]["params"]
    assert params["extra_headers"]["x-api-key"] == REDACTED
    assert params["stop"][0] == "ok"
    assert params["nested"][0]["deeper"][0]["token"] == REDACTED  # a number under a secret name
    assert out["providers"][0]["api_key_env"] == "OPENAI_API_KEY"  # names are kept
    assert out["providers"][0]["tags"] == {"use_token": True}
    assert out["max_tokens"] == 64
    assert data["providers"][0]["params"]["stop"][1] == f"prefix {key} suffix"  # a copy


def test_redact_keeps_references() -> None:
    headers = {"Authorization": "Bearer ${HDR_TOKEN}", "x-api-key": "${HDR_KEY:-}"}
    assert redact(headers) == headers


def test_expand_refs_returns_the_values_to_scrub() -> None:
    params = {"extra_headers": {"Authorization": "Bearer ${T}", "x-k": "${K:-fallback1}"}}
    resolved, used = expand_refs(params, {"T": "tok-123456"})
    assert resolved == {"extra_headers": {"Authorization": "Bearer tok-123456", "x-k": "fallback1"}}
    assert "tok-123456" in used and "Bearer tok-123456" in used and "fallback1" in used
    assert params["extra_headers"]["Authorization"] == "Bearer ${T}"  # not modified


def test_audit_names_each_problem_without_the_value() -> None:
    key = KEYS[0]
    data = {"a": {"x-api-key": "literal-value", "ok": [1, key]}, "p": {"token": "${T}"}}
    problems = list(audit(data, refs_allowed=lambda at: at[:1] == ("p",)))
    assert problems == [
        (("a", "x-api-key"), "a secret-named key needs its value from an environment variable"),
        (("a", "ok", 1), "this looks like a literal OpenAI API key"),
    ]
    assert list(audit({"tags": {"token": "${T}"}}, refs_allowed=lambda at: False)) == [
        (("tags", "token"), "a secret may be referenced (${VAR}) only inside params")
    ]


def test_scrub_file(tmp_path: Path) -> None:
    log = tmp_path / "_sim.log"
    log.write_text(f"GET /v1 x-api-key: {KEYS[0]}\nsecret opaque-known-1\nplain\n")
    assert scrub_file(log, "opaque-known-1")
    assert log.read_text() == "GET /v1 x-api-key: ***\nsecret ***\nplain\n"
    assert not scrub_file(log)  # nothing left: the file is not rewritten
    assert not scrub_file(tmp_path / "missing.log")


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_manifest_is_redacted_when_written(tmp_path: Path, key: str) -> None:
    write_manifest(
        tmp_path,
        {
            "config": {"providers": [{"params": {"extra_headers": {"X-Key": "lit-123456"}}}]},
            "note": f"started with {key}",
            "config_hash": "ab" * 32,
        },
    )
    text = (tmp_path / "_manifest.json").read_text()
    assert secret_part(key) not in text and "lit-123456" not in text
    assert read_manifest(tmp_path)["config_hash"] == "ab" * 32


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_report_tables_notes_and_title_are_redacted(key: str) -> None:
    rows = pd.DataFrame(
        {
            "provider": ["a", "b"],
            "error_message": [f"HTTP 401: {key}", None],
            "chunk_offsets_s": [[0.1, 0.2], []],
            "e2e_s": [1.0, float("nan")],
        }
    )
    report = Report(title=f"run {key}", run_ids=["r"], tables={"requests": rows}, notes=[key])
    clean = redact_report(report)
    assert secret_part(key) not in clean.title + " ".join(clean.notes)
    assert clean.tables["requests"]["error_message"][0] == "HTTP 401: " + (
        "Bearer ***" if key.startswith("Bearer ") else REDACTED
    )
    assert clean.tables["requests"]["chunk_offsets_s"][0] == [0.1, 0.2]
    assert rows["error_message"][0] == f"HTTP 401: {key}"  # the input is not modified
    untouched = rows.drop(columns="error_message")
    assert redact_frame(untouched) is untouched  # nothing to remove: no copy


# ------------------------------------------------------------------ configs


def positions(key: str) -> list[tuple[str, str, int, str]]:
    """(id, config text, line, key path) for each place a key can be pasted."""
    q = json.dumps(key)  # a YAML flow scalar that holds the key as is
    return [
        (
            "provider-api-key",
            f"providers:\n  - name: a\n    model: openai/x\n    api_key: {q}\n",
            4,
            "providers[0].api_key",
        ),
        (
            "provider-api-base",
            f"providers:\n  - name: a\n    model: openai/x\n    api_base: {json.dumps('http://h/v1?k=' + key)}\n",
            4,
            "providers[0].api_base",
        ),
        (
            "nested-extra-headers",
            "providers:\n  - name: a\n    model: openai/x\n    params:\n"
            f"      extra_headers:\n        X-Trace-Id: {q}\n",
            6,
            "providers[0].params.extra_headers.X-Trace-Id",
        ),
        (
            "list-inside-params",
            f"providers:\n  - name: a\n    model: openai/x\n    params:\n      stop: [a, {q}]\n",
            5,
            "providers[0].params.stop[1]",
        ),
        (
            "judge-params",
            "providers:\n  - {name: a, model: openai/x}\nsuites:\n  - name: q\n    kind: rag_qa\n"
            "    dataset: d.jsonl\n    judge:\n      model: openai/j\n      params:\n"
            f"        metadata: {{note: {q}}}\n",
            10,
            "suites[0].judge.params.metadata.note",
        ),
    ]


CASES = [(key, *p) for key in KEYS for p in positions(key)]


@pytest.mark.parametrize(
    ("key", "position", "text", "line", "key_path"),
    CASES,
    ids=[f"{n}-{p[0]}" for n in IDS for p in positions("x")],
)
def test_literal_keys_are_refused_in_every_position(
    tmp_path: Path, key: str, position: str, text: str, line: int, key_path: str
) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": "1", "question": "q?", "answers": ["a"]}\n')
    path = tmp_path / "c.yaml"
    path.write_text(text if "suites:" in text else text + GOOD_SUITE)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {key_path}: "), message
    assert secret_part(key) not in message


def test_literal_key_in_a_suite_file(write_config: Callable[..., Path]) -> None:
    key = KEYS[2]
    suite = write_config(f"name: s\nkind: latency\nprompts: [{json.dumps(key)}]\n", "s.yaml")
    path = write_config("providers:\n  - {name: a, model: openai/x}\nsuites: [s.yaml]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(
        f"{suite}:3: prompts[0]: this looks like a literal Anthropic API key"
    )


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_a_variable_that_resolves_to_a_key_is_refused(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # The variable's name does not look secret, its value does: the check sees the
    # resolved value (and so would the manifest).
    monkeypatch.setenv("HARNESS_TEST_MODEL_NAME", key)
    path = write_config(
        'providers:\n  - {name: a, model: "openai/${HARNESS_TEST_MODEL_NAME}"}\n' + GOOD_SUITE
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:2: providers[0].model: this looks like a literal")
    assert secret_part(key) not in str(info.value)


@pytest.mark.parametrize(
    ("params", "line", "key_path"),
    [
        ("{extra_headers: {x-api-key: opaque-literal}}", 4, "params.extra_headers.x-api-key"),
        ("{extra_headers: {Authorization: 12345678}}", 4, "params.extra_headers.Authorization"),
        (
            "{aws_secret_access_key: " + json.dumps(AWS_SECRET) + "}",
            4,
            "params.aws_secret_access_key",
        ),
        ("{metadata: [{session_token: opaque-literal}]}", 4, "params.metadata[0].session_token"),
    ],
)
def test_secret_named_keys_need_an_environment_variable(
    write_config: Callable[..., Path], params: str, line: int, key_path: str
) -> None:
    path = write_config(
        f"providers:\n  - name: a\n    model: openai/x\n    params: {params}\n" + GOOD_SUITE
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(
        f"{path}:{line}: providers[0].{key_path}: a secret-named key needs its value from an"
        " environment variable"
    ), message
    assert "opaque-literal" not in message and AWS_SECRET not in message
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}: providers[0].{key_path}" in result.output


def test_header_secrets_stay_references_in_the_resolved_config(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_TEST_HEADER_KEY", "opaque-header-value")
    monkeypatch.setenv("HARNESS_TEST_HOST", "gpu-box")
    path = write_config(
        dedent("""
        providers:
          - name: a
            model: openai/x
            api_base: "http://${HARNESS_TEST_HOST}:8000/v1"
            params:
              extra_headers:
                x-api-key: "${HARNESS_TEST_HEADER_KEY}"
                Authorization: "Bearer ${HARNESS_TEST_HEADER_KEY}"
        """)
        + GOOD_SUITE
    )
    spec = load_config(path)
    resolved = spec.resolved["providers"][0]
    assert resolved["api_base"] == "http://gpu-box:8000/v1"  # ordinary values resolve
    assert resolved["params"]["extra_headers"] == {
        "x-api-key": "${HARNESS_TEST_HEADER_KEY}",
        "Authorization": "Bearer ${HARNESS_TEST_HEADER_KEY}",
    }
    assert "opaque-header-value" not in json.dumps(spec.resolved)


def test_secret_references_outside_params_are_refused(write_config: Callable[..., Path]) -> None:
    path = write_config(
        "providers:\n  - name: a\n    model: openai/x\n    tags: {api_token: '${X_TOKEN}'}\n"
        + GOOD_SUITE
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(
        f"{path}:4: providers[0].tags.api_token: a secret may be referenced (${{VAR}}) only"
        " inside params"
    )


def test_unset_header_variable_fails_before_sending(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config(
        "providers:\n  - name: a\n    simulate: {}\n"
        "    params: {extra_headers: {x-api-key: '${HARNESS_TEST_UNSET_HEADER}'}}\n" + GOOD_SUITE
    )
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "providers[0].params: ${HARNESS_TEST_UNSET_HEADER}" in result.output
    assert not (tmp_path / "r").exists()
