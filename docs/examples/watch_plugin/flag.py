"""A webhook source with a watcher: the smallest example of ``SourceType.watchers``.

The ``flagged`` source takes no requests of its own; its watcher reads a file every
``every`` seconds and reports what it holds. ``tests/sources/test_watch.py`` installs it as
a throwaway plugin and runs it in real runtimes (warnings, metrics, restarts, the stop).
"""

import asyncio
from pathlib import Path

from connector_runtime import SourceType, Watcher, hookimpl

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "every": {"type": "number"}},
    "required": ["path"],
}


# snippet: watch
async def watch_flag(ctx):
    path = Path(ctx.config["path"])
    while True:
        text = path.read_text().strip() if path.exists() else "missing"
        if text == "crash":
            path.write_text("ok")
            raise RuntimeError("the flag said crash")  # started again after a backoff
        warning = None if text == "ok" else f"the flag says {text}"  # /readyz, stays ready
        ctx.status.report(f"flag {path.name}: {text}", warning)  # the status page
        ctx.status.gauge("flag_ok", "1 while the flag says ok.", {"flag": path.name}, text == "ok")
        ctx.status.count("flag_checks", "Times the flag was read.", {"flag": path.name})
        await asyncio.sleep(ctx.config.get("every", 0.1))


def watchers(config):
    return [Watcher("flag", watch_flag)]  # one per connector; [] for none


@hookimpl
def register_source_types(register):
    register(
        SourceType(name="flagged", config_schema=SCHEMA, routes=lambda ctx: [], watchers=watchers)
    )


# end snippet: watch
