"""Where the time goes: a summary of a ``py-spy record --format raw --threads`` profile.

Best recorded with ``--native --idle`` (``bench/run.py --profile --profile-native``): every
thread is sampled whatever it does, and the C frames under the innermost Python frame tell
what a sample was:

- *waiting for the GIL* (``pthread_cond_timedwait``: a thread that finished a blocking call
  or got its turn and waits to run Python again);
- *idle* (``epoll_wait``: the event loop has nothing to do; ``PyThread_acquire_lock_timed``:
  a thread waits on a queue or lock);
- *fsync* (the disk flush of a commit);
- *running*: everything else, which is the process's CPU time.

Shares of functions are shares of the *running* samples: with the process pinned to one
core, that is its share of the core. Time in C (SQLite, msgspec, orjson, socket calls)
counts for the Python function that called it (*self*); *total* counts a function once
per sample it is anywhere on the stack. Without ``--native`` py-spy guesses which samples
are idle itself, and calls some GIL waits running.

    python bench/pyspy_summary.py bench/out/profile-main.txt
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \(0?x?[0-9a-fA-F]+\): ?(?P<name>.*)$")
_IDLE = {"epoll_wait", "select_epoll_poll_impl", "PyThread_acquire_lock_timed", "poll"}
_GIL = {"pthread_cond_timedwait", "pthread_cond_wait", "take_gil", "drop_gil"}
_FSYNC = {"fsync", "fdatasync", "__libc_fsync", "__fdatasync", "unixSync", "full_fsync"}


STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (stage, thread prefix or "", any of these on the stack): the first match wins.
    ("garbage collector", "", ("gc_collect_main",)),
    ("spool writer: append (request's events, dedupe ids)", "spool-writer", ("append_job",)),
    ("spool writer: settle (delivered rows deleted)", "spool-writer", ("settle.<locals>.job",)),
    ("spool writer: commit, fsync wake-ups, other", "spool-writer", ()),
    ("spool checkpoint thread", "spool-checkpoint", ()),
    ("dispatcher: read the spool head (thread pool)", "to_thread pool", ()),
    ("webhook: parse the body (auth0 parse_body)", "MainThread", ("parse_body",)),
    ("webhook: map records to events (to_event)", "MainThread", ("to_event",)),
    ("webhook: filter, dedupe, hand over (Pipeline.submit)", "MainThread", ("Pipeline.submit",)),
    ("webhook: answer (RequestHandler.finish)", "MainThread", ("RequestHandler.finish",)),
    ("webhook: rest of the handler", "MainThread", ("RequestHandler._execute",)),
    (
        "webhook: HTTP parsing and body reads (Tornado)",
        "MainThread",
        ("HTTP1ServerConnection", "HTTP1Connection", "BaseIOStream", "IOStream."),
    ),
    ("dispatcher: encode and POST the batch", "MainThread", ("HTTPTarget", "aiohttp")),
    ("dispatcher: settle and the rest", "MainThread", ("Dispatcher", "SpoolQueue")),
    ("event loop and other", "", ()),
)


def stage_of(thread: str, stack: str) -> str:
    for label, thread_prefix, markers in STAGES:
        if thread_prefix and not thread.startswith(thread_prefix):
            continue
        if not markers or any(m in stack for m in markers):
            return label
    return "event loop and other"


def short_path(path: str) -> str:
    """``/work/main/connector_runtime/spool.py`` → ``connector_runtime/spool.py``;
    ``…/site-packages/tornado/iostream.py`` → ``tornado/iostream.py``; stdlib by name."""
    for marker in ("/site-packages/", "/plugins/auth0/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    m = re.search(r"/lib/python3\.\d+/(.*)$", path)
    if m:
        return m.group(1)
    return path.rsplit("/", 1)[-1]


def _parse(frame: str) -> tuple[str, str, bool]:
    """(function, short file, is a Python frame)."""
    m = _FRAME.match(frame)
    if m is None:
        return frame, "", False
    file = m["file"]
    python = file.endswith(".py") or "/bin/" in file
    return m["func"], short_path(file), python


def _state(native: list[str]) -> str:
    names = set(native)
    if names & _FSYNC:
        return "fsync"
    if names & _IDLE:
        return "idle"
    if names & _GIL:
        return "GIL wait"
    return "running"


def summarize(text: str, top: int = 25) -> dict[str, Any]:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    native_leaf: collections.Counter[str] = collections.Counter()
    stages: collections.Counter[str] = collections.Counter()
    states: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    running = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        m = _THREAD.match(frames[0])
        if m is not None:
            thread = _thread_name(m["name"])
            frames = frames[1:]
        parsed = [_parse(f) for f in frames]
        python = [(func, file) for func, file, is_py in parsed if is_py]
        last_py = max((i for i, p in enumerate(parsed) if p[2]), default=-1)
        native = [func for func, _, _ in parsed[last_py + 1 :] if not func.startswith("0x")]
        state = _state(native)
        states[thread][state] += count
        if state != "running" or not python:
            continue
        running += count
        stages[stage_of(thread, stack)] += count
        keys = [f"{func} ({file})" for func, file in python]
        own[keys[-1]] += count
        for key in set(keys):
            total[key] += count
        files[python[-1][1]] += count
        if native:
            native_leaf[native[-1]] += count

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / running) for k, v in counter.most_common(top)] if running else []

    all_samples = sum(sum(c.values()) for c in states.values())
    return {
        "samples": all_samples,
        "running": running,
        "threads": {
            name: {state: n / all_samples for state, n in counter.most_common()}
            for name, counter in sorted(states.items(), key=lambda kv: -sum(kv[1].values()))
        },
        "running_by_thread": [
            (name, counter["running"] / running if running else 0.0)
            for name, counter in states.items()
        ],
        "self": share(own),
        "total": share(total),
        "self_by_file": share(files),
        "native_leaf": share(native_leaf),
        "stages": share(stages),
    }


def _thread_name(name: str) -> str:
    if name.startswith("asyncio_"):
        return "to_thread pool"
    return name or "?"


def render(summary: dict[str, Any], top: int = 20) -> str:
    out = [f"{summary['samples']} samples, {summary['running']} of them running", "", "threads:"]
    for name, states in summary["threads"].items():
        shown = ", ".join(f"{state} {share:.1%}" for state, share in states.items())
        out.append(f"  {name}: {shown}")
    out += ["", "running samples by thread:"]
    out += [f"  {share:6.1%}  {name}" for name, share in summary["running_by_thread"]]
    out += ["", "stages:"]
    out += [f"  {share:6.1%}  {name}" for name, share in summary["stages"]]
    out += ["", "self time (innermost Python frame; C calls count for their caller):"]
    out += [f"  {share:6.1%}  {name}" for name, share in summary["self"][:top]]
    out += ["", "total time (on the stack):"]
    out += [f"  {share:6.1%}  {name}" for name, share in summary["total"][:top]]
    out += ["", "self time by file:"]
    out += [f"  {share:6.1%}  {name}" for name, share in summary["self_by_file"][:top]]
    if summary["native_leaf"]:
        out += ["", "innermost named C function of running samples:"]
        out += [f"  {share:6.1%}  {name}" for name, share in summary["native_leaf"][:top]]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(summarize(Path(sys.argv[1]).read_text())))
