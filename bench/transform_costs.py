"""Per-record cost of the Auth0 ``pii`` presets, in this process, on the bench's records.

The records are the main scenario's (bench/records.py), parsed and mapped by the auth0
plugin as the runtime does; each preset's transform (what the runtime runs per event) is
timed over all of them in CPU time, median of a few rounds, beside the plugin's own parse
and map of the same records, and compared with the per-record CPU time of
the main scenario when ``--cpu-us`` is given (bench/ab.py prints it). ``--profile`` prints
where the time goes.

Run: .venv/bin/python bench/transform_costs.py [--cpu-us 16.3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

from connector_runtime_auth0.mapping import Mapper
from connector_runtime_auth0.parse import parse_body
from connector_runtime_auth0.pii import expand

from connector_runtime import build_transform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import BodyMaker

ROUNDS = 7
KEY = "k" * 32


def events() -> list:
    maker = BodyMaker(100, 0.0)
    mapper = Mapper("https://bench-tenant.eu.auth0.example/")
    out = []
    for _ in range(40):
        body, _ = maker.body()
        out.extend(parse_body(body, "jsonlines", mapper))
    return out


def per_record(transform, batch: list) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.process_time()  # CPU time: the machine is shared
        for event in batch:
            transform(event)
        samples.append((time.process_time() - start) / len(batch))
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-us", type=float, help="the main scenario's CPU us per record")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    batch = events()
    maker = BodyMaker(100, 0.0)
    bodies = [maker.body()[0] for _ in range(40)]
    mapper = Mapper("https://bench-tenant.eu.auth0.example/")
    parse = per_record(lambda body: parse_body(body, "jsonlines", mapper), bodies) / 100
    print(f"{'(reference)':13s} {parse:6.2f} us/record: the auth0 plugin's parse and map")
    for preset in ("strict", "pseudonymize"):
        transform = build_transform(expand(preset, KEY), lambda reason: None)
        cost = per_record(transform, batch)
        share = f" ({cost / args.cpu_us:.0%} of {args.cpu_us} us)" if args.cpu_us else ""
        print(f"{preset:13s} {cost:6.2f} us/record over {len(batch)} records{share}")
        if args.profile and preset == "strict":
            profile = cProfile.Profile()
            profile.runcall(per_record, transform, batch[:1000])
            pstats.Stats(profile).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
