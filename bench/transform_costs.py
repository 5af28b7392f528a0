"""Per-record cost of the Auth0 ``pii`` presets, in this process, on the bench's records.

The records are the main scenario's (bench/records.py), parsed and mapped by the auth0
plugin as the runtime does; each preset's transform (what the runtime runs per event) is
timed over all of them in CPU time, median of a few rounds, beside the plugin's own parse
and map of the same records, and compared with the per-record CPU time of
the main scenario when ``--cpu-us`` is given (bench/ab.py prints it). ``--profile`` prints
where the time goes.

Two batches: the main scenario's records as they are (256 templates, so 256 users, each
of its values met again every 256 records or so: every HMAC after the first comes from
the cache), and the same records with every user made new (``user_id``, ``user_name``,
``identity``, the user id in a Management API path and ``subject`` unique per record: no
value repeats, every HMAC is computed). Real logs sit between the two: a user's login
gives a few events in a row (``s``, ``seacft``, ``ssa``), and the cache keeps the last 4096
values per key.

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

from connector_runtime import Event, build_transform

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


def unique_users(batch: list) -> list:
    """``batch`` with each record's user replaced by one no other record has."""
    out = []
    for n, event in enumerate(batch):
        attributes = dict(event.peek())
        old = str(attributes["subject"]).split("|", 1)[1]
        number = str(int(old, 16))
        new = f"{10**9 + n:024x}"
        data = event.data.replace(old.encode(), new.encode())
        data = data.replace(number.encode(), str(10**9 + n).encode())
        attributes["subject"] = f"auth0|{new}"
        out.append(Event(attributes, data))
    return out


def per_record(transform, batch: list, make=None) -> float:
    """Median CPU us per item of ``transform`` over ``batch``; with ``make``, a new
    transform (an empty HMAC cache) for each round."""
    samples = []
    for _ in range(ROUNDS):
        if make is not None:
            transform = make()
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
    fresh = unique_users(batch)
    for preset in ("strict", "pseudonymize"):

        def make(preset=preset):
            return build_transform(expand(preset, KEY), lambda reason: None)

        transform = make()
        for label, records in (("repeating", batch), ("every user new", fresh)):
            if records is fresh:  # an empty cache each round: no value is met again
                cost = per_record(None, records, make)
            else:
                cost = per_record(transform, records)
            share = f" ({cost / args.cpu_us:.0%} of {args.cpu_us} us)" if args.cpu_us else ""
            print(f"{preset:13s} {cost:6.2f} us/record, {label:15s}{share}")
        if args.profile and preset == "strict":
            profile = cProfile.Profile()
            profile.runcall(per_record, transform, batch[:1000])
            pstats.Stats(profile).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
