"""``python -m harness.sim``: the child-process entry point used by the runner."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from harness.sim.profile import SimProfile
from harness.sim.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.sim")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--profiles-json", default="{}")
    args = parser.parse_args()
    profiles = {k: SimProfile(**v) for k, v in json.loads(args.profiles_json).items()}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(SimProfile(), profiles, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
