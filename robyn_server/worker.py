"""`--role worker`: a queue worker without HTTP, executing the runs that API processes create.

It shares the database and Redis with the API processes, hears their wake-ups on the bus, claims runs from
storage like any server process, and on SIGTERM drains its runs (the rest go back to the queue).
"""

from __future__ import annotations

import asyncio
import signal

from robyn_server import gc_tuning
from robyn_server.context import ServerContext


async def run_worker(ctx: ServerContext, grace: float) -> None:
    from robyn_server.ops import tracing
    from robyn_server.runs.recovery import forget_this_instance, recover_at_startup
    from robyn_server.storage.errors import exit_on_startup_error

    tracing.configure()  # only with OTEL_* settings: run spans continue the trace of the request that created them
    try:
        await ctx.storage.setup()
        await ctx.runs.bus.start()
        await recover_at_startup(ctx)
    except Exception as exc:
        exit_on_startup_error(ctx.storage, exc)
    gc_tuning.settle(ctx.settings.gc_thresholds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await ctx.runs.shutdown(grace)
    await forget_this_instance(ctx)
    await ctx.runs.bus.close()
    tracing.shutdown()  # flush the spans still queued for export
