"""Reading a running runtime's ``/metrics`` in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from connector_runtime.testing import post


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = post(url + "/metrics", method="GET")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]
