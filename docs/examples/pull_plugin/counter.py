"""A pull source that counts: the smallest example of ``SourceType.pull``.

``tests/sources/test_pull.py`` installs it as a throwaway plugin and runs it in real
runtimes (checkpoints, restarts, readiness, the ack policies that refuse it).
"""

import asyncio

from connector_runtime import SourceType, hookimpl, make_event

STARTS = []
"""The checkpoint each run started from (for the tests)."""

SCHEMA = {
    "type": "object",
    "properties": {
        "total": {"type": "integer"},
        "batch": {"type": "integer"},
        "failAt": {"type": "integer"},
    },
    "required": ["total", "batch"],
}


# snippet: pull
async def pull(ctx):
    STARTS.append(ctx.checkpoint)
    n = int(ctx.checkpoint or 0)  # None on the very first run
    total, batch = ctx.config["total"], ctx.config["batch"]
    fail_at = ctx.config.get("failAt")
    while n < total:
        if fail_at is not None and n >= fail_at and len(STARTS) == 1:
            ctx.status.problem("unavailable", "the counter is down")  # /readyz, metrics
            raise RuntimeError("counter broke")  # restarted with backoff, from the checkpoint
        upto = min(total, n + batch)
        events = [
            make_event(
                id=f"c-{i}", source="urn:counter", type="counter.tick", data=b'{"i": %d}' % i
            )
            for i in range(n, upto)
        ]
        # the events and the checkpoint are committed together, or neither is
        await ctx.ingest.submit(events, checkpoint=str(upto))
        ctx.status.ok()
        n = upto
    await asyncio.Event().wait()  # caught up: a real source would poll again


@hookimpl
def register_source_types(register):
    register(SourceType(name="counter", config_schema=SCHEMA, routes=lambda ctx: [], pull=pull))


# end snippet: pull
