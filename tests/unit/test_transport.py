"""One branch at a time: error classification and scrubbing of provider messages."""

from __future__ import annotations

from harness.providers.trace import classify_error
from harness.secrets import scrub


class FakeStatusError(Exception):
    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class RateLimitError(Exception):
    status_code = 429


class InternalServerError(Exception):
    status_code = 500


def test_classify_error() -> None:
    assert classify_error(TimeoutError()) == ("timeout", None)
    assert classify_error(FakeStatusError("bad", 503)) == ("http_503", 503)
    assert classify_error(RateLimitError("slow down")) == ("rate_limited", 429)
    # litellm reports a refused connection as a 500 it never received.
    assert classify_error(InternalServerError("OpenAIException - Connection error.")) == (
        "connection_error",
        None,
    )
    assert classify_error(ValueError("x")) == ("value_error", None)


def test_scrub_removes_keys_and_bearer_tokens() -> None:
    key = "my-custom-key-1234"
    text = f"401: key {key} rejected; header Authorization: Bearer abc.def-123; sk-live{'x' * 20}"
    cleaned = scrub(text, key)
    assert key not in cleaned and "abc.def-123" not in cleaned and "sk-live" not in cleaned
    assert cleaned.startswith("401: key *** rejected")
