"""The two ceilings the runtime is measured against, as small Tornado servers.

- ``bare``: a handler that reads the body and answers 200 with a short JSON body: what
  Tornado itself costs per request on one core;
- ``parse``: the same plus ``orjson.loads`` of every JSON Lines line: the parse ceiling, the
  least work a webhook that looks at every record can do.

Both answer ``GET /healthz``. The driver runs them pinned to the core the runtime gets.

    python bench/ceilings.py parse --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import orjson
import tornado.httpserver
import tornado.web


class Bare(tornado.web.RequestHandler):
    def post(self, _path: str) -> None:
        body = self.request.body
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"bytes":%d}' % len(body))


class Parse(tornado.web.RequestHandler):
    def post(self, _path: str) -> None:
        records = 0
        loads = orjson.loads
        for line in self.request.body.split(b"\n"):
            if line:
                loads(line)
                records += 1
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"accepted":%d}' % records)


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ok"})


def make_app(kind: str) -> tornado.web.Application:
    handler = Parse if kind == "parse" else Bare
    return tornado.web.Application(
        [(r"/healthz", Health), (r"/(.*)", handler)], log_function=lambda _h: None
    )


async def serve(kind: str, host: str, port: int) -> None:
    server = tornado.httpserver.HTTPServer(make_app(kind), max_body_size=64 * 1024 * 1024)
    server.listen(port, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=["bare", "parse"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args()
    asyncio.run(serve(args.kind, args.host, args.port))


if __name__ == "__main__":
    main()
