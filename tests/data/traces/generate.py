"""Regenerate the sample traces (run from this folder): ``python generate.py``.

Generated, not copied: seeded gamma arrivals (bursty, shape 0.5) and uniform lengths, in
the three layouts harness.suites.trace reads. No production data; no licence attached.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta


def arrivals(n: int, rate: float, seed: int) -> list[float]:
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        out.append(round(t, 4))
        t += rng.gammavariate(0.5, 1 / (0.5 * rate))
    return out


def main() -> None:
    rng = random.Random(17)
    with open("sample.jsonl", "w") as f:
        for i, t in enumerate(arrivals(40, 10, 1)):
            row = {
                "arrival_s": t,
                "input_tokens": rng.randint(20, 200),
                "output_tokens": rng.randint(2, 10),
                "prefix_id": f"system-{i % 3}",
            }
            f.write(json.dumps(row) + "\n")
    with open("mooncake.jsonl", "w") as f:
        for i, t in enumerate(arrivals(30, 10, 2)):
            blocks = rng.randint(1, 3)
            shared = [0, 1][: min(blocks, 1 + i % 2)]  # many rows start with blocks 0 (and 1)
            own = [100 + 10 * i + j for j in range(blocks - len(shared))]
            row = {
                "timestamp": int(t * 1000),
                "input_length": 512 * (blocks - 1) + rng.randint(10, 512),
                "output_length": rng.randint(2, 10),
                "hash_ids": shared + own,
            }
            f.write(json.dumps(row) + "\n")
    start = datetime(2023, 11, 16, 18, 15, 46)
    with open("azure.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        for t in arrivals(30, 10, 3):
            stamp = start + timedelta(seconds=t)
            writer.writerow(
                [
                    stamp.strftime("%Y-%m-%d %H:%M:%S.%f") + "0",  # Azure's 7 digits
                    rng.randint(20, 300),
                    rng.randint(1, 10),
                ]
            )


if __name__ == "__main__":
    main()
