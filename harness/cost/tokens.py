"""Local tokenisation for synthetic prompts, offline.

litellm ships tiktoken's encoding files; pointing ``TIKTOKEN_CACHE_DIR`` at
them (without importing litellm, which takes seconds) lets tiktoken load
``o200k_base`` with no network.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import random
from pathlib import Path
from typing import Any

ENCODING = "o200k_base"


@functools.cache
def encoding() -> Any:
    """The tiktoken encoding used to size synthetic prompts."""
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.origin is not None and "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text))


# Plain English words, so every provider's tokenizer sees ordinary text.
_WORDS = tuple(
    (
        "the quarterly report shows revenue growth across every region while costs stayed "
        "flat customers asked for faster delivery better support and clearer pricing on "
        "the new plan engineers measured latency throughput and error rates before the "
        "release went live policy requires approval from a manager for travel expenses "
        "above the monthly limit "
    ).split()
)


def synthetic_prompt(n_tokens: int, seed: int) -> str:
    """A prompt of exactly ``n_tokens`` tokens under ``o200k_base`` (seeded, reproducible)."""
    rng = random.Random(seed)
    enc = encoding()
    words: list[str] = []
    while len(enc.encode(" ".join(words))) < n_tokens:
        words.extend(rng.choice(_WORDS) for _ in range(max(1, n_tokens // 2)))
    tokens = enc.encode(" ".join(words))[:n_tokens]
    text: str = enc.decode(tokens)
    # Decoding a cut can re-tokenise differently at the edge; trim until exact.
    while count_tokens(text) > n_tokens:
        text = text[:-1]
    return text
