"""A spool row's payload and the events it hands back still encoded (``EncodedEvents``)."""

from __future__ import annotations

import json

from connector_runtime.events import make_event, to_batch, to_structured
from connector_runtime.spool.payloads import (
    EncodedEvents,
    concat,
    decode_events,
    encode_events,
    events_size,
)


def test_events_read_back_from_the_spool_stay_encoded_until_an_item_is_asked_for():
    made = [
        make_event(id=f"e{i}", source="/s", type="t", data=b'{"n":%d}' % i, subject=f"s{i}")
        for i in range(5)
    ]
    encoded = decode_events(encode_events(made))
    assert isinstance(encoded, EncodedEvents)
    assert list(encoded) == made and encoded[3] == made[3]
    assert isinstance(encoded[1:3], EncodedEvents) and list(encoded[1:3]) == made[1:3]
    assert to_batch(encoded) == to_batch(made)
    joined = concat([encoded[:2], encoded[2:]])
    assert isinstance(joined, EncodedEvents) and to_batch(joined) == to_batch(made)
    assert concat([encoded[:2], made[2:]]) == made  # mixed parts: a plain list
    assert events_size(encoded) == sum(len(to_structured(e)) for e in made)


def test_spool_payloads_keep_documents_joined_and_cut_them_out_only_when_asked():
    def made(prefix: str, n: int):
        return [
            make_event(id=f"{prefix}{i}", source="/s", type="t", data=b'{"s":"%s"}' % (b"x," * i))
            for i in range(n)
        ]

    first, second = made("a", 4), made("b", 3)
    payload = encode_events(first)
    # the documents joined with commas, after their count and lengths
    assert payload.endswith(b",".join(to_structured(e) for e in first))
    rows = [decode_events(payload), decode_events(encode_events(second))]
    joined = concat(rows)
    assert isinstance(joined, EncodedEvents) and len(joined) == 7
    assert to_batch(joined) == to_batch(first + second)
    assert json.loads(to_batch(joined))[6]["id"] == "b2"
    assert events_size(joined) == sum(len(to_structured(e)) for e in first + second)
    assert list(joined) == first + second and joined[5] == second[1]
    assert list(joined[2:5]) == (first + second)[2:5]
    # a target's chunks of a read-back attempt stay runs, cut without copies
    everything = first + second
    for size in (1, 2, 3, 4, 5, 7, 8):
        chunks = [joined[i : i + size] for i in range(0, 7, size)]
        assert [to_batch(c) for c in chunks] == [
            to_batch(everything[i : i + size]) for i in range(0, 7, size)
        ]
        assert [events_size(c) for c in chunks] == [
            sum(len(to_structured(e)) for e in everything[i : i + size]) for i in range(0, 7, size)
        ]
        assert [len(c) for c in chunks] == [
            len(everything[i : i + size]) for i in range(0, 7, size)
        ]
    assert list(joined[::2]) == everything[::2] and len(joined[5:2]) == 0
    empty = decode_events(encode_events([]))
    assert len(empty) == 0 and list(empty) == [] and events_size(empty) == 0
