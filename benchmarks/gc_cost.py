"""Server CPU per run with the garbage collector as the server sets it, beside the interpreter's defaults.

    .venv/bin/python benchmarks/gc_cost.py [--runs 600] [--clients 8] [--repeats 4] [--storage memory]

Starts this server on `benchmarks/langgraph.json` once per setting and repeat (the two settings in turn, so
drift of a shared machine hits both), sends `--runs` streamed 50-token runs and reads the server's CPU time, as
`ops_overhead.py` does, with operations features off: `ROBYN_SERVER_GC_THRESHOLDS` unset (start-up objects
frozen, thresholds 50000, 20, 10; `robyn_server/gc_tuning.py`) and `python` (CPython's 700, 10, 10, nothing
frozen). Prints the minimum and median CPU per run of each, and the median of the paired differences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ops_overhead import OFF, measure  # noqa: E402

SETTINGS = {"server's": {**OFF, "ROBYN_SERVER_GC_THRESHOLDS": None},
            "python's": {**OFF, "ROBYN_SERVER_GC_THRESHOLDS": "python"}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--storage", choices=["sqlite", "memory"], default="memory")
    args = parser.parse_args()
    found: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, env in SETTINGS.items():
            found[name].append(measure(env, args.runs, args.clients, args.storage, 0.2)[0])
    print(f"{args.runs} streamed 50-token runs x {args.repeats}, {args.clients} clients, {args.storage}")
    for name, samples in found.items():
        listed = ", ".join(f"{c:.2f}" for c in samples)
        print(f"{name + ' collector':<20} min {min(samples):.2f} median {statistics.median(samples):.2f} ms/run  "
              f"({listed})")  # fmt: skip
    paired = [p - s for s, p in zip(found["server's"], found["python's"], strict=True)]
    print(f"python's minus server's, median of pairs: {statistics.median(paired):+.2f} ms/run")


if __name__ == "__main__":
    main()
