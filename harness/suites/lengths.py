"""Token-length distributions for synthetic prompts and outputs, and prompts of exact lengths.

A length is ``fixed`` (``value``), ``uniform`` (integers ``min``..``max``, both included),
``normal`` (``mean``, ``std``, rounded, clipped to ``min``..``max``, never below 1) or
sampled from a ``file`` of observed lengths (one number a line; or a CSV / JSON-lines
``column``), as AIPerf's and vLLM bench's synthetic datasets allow. Draws are seeded.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.suites.base import StrictModel

MAX_LENGTH = 10_000_000


class LengthDist(StrictModel):
    """A distribution of token lengths (see the module doc)."""

    dist: Literal["fixed", "uniform", "normal", "file"]
    value: int | None = Field(default=None, ge=1, le=MAX_LENGTH, description="fixed")
    min: int | None = Field(default=None, ge=1, le=MAX_LENGTH, description="uniform, normal")
    max: int | None = Field(default=None, ge=1, le=MAX_LENGTH, description="uniform, normal")
    mean: float | None = Field(default=None, gt=0, le=MAX_LENGTH, description="normal")
    std: float | None = Field(default=None, ge=0, le=MAX_LENGTH, description="normal")
    path: str | None = Field(default=None, description="file: relative to the suite's file")
    column: str | None = Field(default=None, description="file: CSV or JSON-lines column")
    _values: list[int] = PrivateAttr(default_factory=list)

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(value)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"length file not found: {value}")
        return str(path.resolve())

    @model_validator(mode="after")
    def _complete(self) -> LengthDist:
        needs = {
            "fixed": ("value",),
            "uniform": ("min", "max"),
            "normal": ("mean", "std"),
            "file": ("path",),
        }[self.dist]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist {self.dist} needs {', '.join(missing)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.dist == "file":
            assert self.path is not None
            self._values = read_lengths(Path(self.path), self.column)
        return self

    @property
    def upper(self) -> int:
        """The largest length a draw can give (for bounds checks)."""
        if self.dist == "fixed":
            assert self.value is not None
            return self.value
        if self.dist == "file":
            return max(self._values)
        if self.max is not None:
            return self.max
        assert self.mean is not None
        assert self.std is not None
        return round(self.mean + 10 * self.std)

    def sample(self, n: int, rng: random.Random) -> list[int]:
        """``n`` lengths drawn from the distribution with ``rng``."""
        if self.dist == "fixed":
            assert self.value is not None
            return [self.value] * n
        if self.dist == "uniform":
            assert self.min is not None
            assert self.max is not None
            return [rng.randint(self.min, self.max) for _ in range(n)]
        if self.dist == "file":
            return [rng.choice(self._values) for _ in range(n)]
        assert self.mean is not None
        assert self.std is not None
        low = max(1, self.min or 1)
        high = self.max if self.max is not None else MAX_LENGTH
        return [min(high, max(low, round(rng.gauss(self.mean, self.std)))) for _ in range(n)]


def read_lengths(path: Path, column: str | None) -> list[int]:
    """Observed lengths from a file; a bad value raises ``ValueError`` naming file and line."""
    text = path.read_text(encoding="utf-8")
    values: list[tuple[int, object]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = reader.fieldnames or []
        name = column or (fields[0] if len(fields) == 1 else None)
        if name is None or name not in fields:
            raise ValueError(f"{path}: name the column of lengths (columns: {', '.join(fields)})")
        values = [(i + 2, row.get(name)) for i, row in enumerate(reader)]
    elif path.suffix.lower() in (".jsonl", ".json"):
        if column is None:
            raise ValueError(f"{path}: name the column of lengths (JSON lines)")
        for i, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not JSON ({exc.msg})") from None
                values.append((i, record.get(column) if isinstance(record, dict) else None))
    else:
        values = [(i, t.strip()) for i, t in enumerate(text.splitlines(), start=1) if t.strip()]
    out: list[int] = []
    for line, value in values:
        try:
            number = int(str(value))
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_LENGTH:
            raise ValueError(f"{path}:{line}: {value!r} is not a token length (1..{MAX_LENGTH})")
        out.append(number)
    if not out:
        raise ValueError(f"{path}: no lengths in the file")
    return out


def word_prompt(n_tokens: int, seed: int | str) -> str:
    """A prompt of exactly ``n_tokens`` ``o200k_base`` tokens, built without tokenizing.

    Every word of the vocabulary, with its leading space, is one token, and words never
    merge across a space, so ``n`` words are ``n`` tokens. The same seed gives the same
    word stream: two prompts of one seed share their text up to the shorter length
    (which is how a trace's shared prefixes are rebuilt).
    """
    from harness.cost.tokens import _WORDS

    rng = random.Random(seed)
    return "".join(" " + rng.choice(_WORDS) for _ in range(n_tokens))


def _which(value: Any) -> str:
    return "Int" if isinstance(value, int) and not isinstance(value, bool) else "Dist"


Length = Annotated[
    Annotated[int, Tag("Int")] | Annotated[LengthDist, Tag("Dist")], Discriminator(_which)
]
"""A token length: a number, or ``{dist: ...}`` (errors name the key, not both forms)."""
