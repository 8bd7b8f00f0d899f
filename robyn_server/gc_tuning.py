"""CPython's cyclic garbage collector set for a long-running server: start-up objects frozen, collections rarer.

With the interpreter's defaults (thresholds 700, 10, 10) a streamed 50-token run set off about one young
collection, and every few hundred runs a full one walked the ~190,000 objects that importing LangChain,
LangGraph and pydantic leaves behind (140 ms each): 1.1 ms of garbage collection per run, 15% of the run's
CPU in memory. Once the server has started, everything alive is moved out of the collector's generations
(`gc.freeze()`: those objects are never walked again, and start-up garbage is collected first), and the young
generation's threshold is raised so most of a run's short-lived cycles are gone before a collection looks at
them: 0.02 ms per run (both timed with `gc.callbacks` in a server; `benchmarks/gc_cost.py` measures the
whole server's CPU per run, 0.87 ms less). Reference counting still frees everything that is not in a
cycle at once; the thresholds only bound how many cyclic leftovers wait for a collection.
"""

from __future__ import annotations

import gc

DEFAULT_THRESHOLDS = (50_000, 20, 10)


def thresholds_from(value: str | None) -> tuple[int, ...] | None:
    """`ROBYN_SERVER_GC_THRESHOLDS`: empty for the default, `python` to keep the interpreter's own (and not
    freeze), or up to three positive integers separated by commas, as `gc.set_threshold` takes them.
    ValueError, saying what is allowed, for anything else."""
    text = (value or "").strip().lower()
    if not text:
        return DEFAULT_THRESHOLDS
    if text == "python":
        return None
    try:
        numbers = tuple(int(part) for part in text.split(","))
    except ValueError:
        numbers = ()
    if not 1 <= len(numbers) <= 3 or any(n < 1 for n in numbers):
        raise ValueError(
            f"ROBYN_SERVER_GC_THRESHOLDS must be 'python' or one to three positive integers like "
            f"'{','.join(map(str, DEFAULT_THRESHOLDS))}', got {value!r}"
        )
    return numbers


def settle(thresholds: tuple[int, ...] | None) -> None:
    """Called once the server has started: collect, freeze the survivors, raise the thresholds."""
    if thresholds is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
