"""Issue 18: a property test of ``spec.transforms`` over random JSON shapes.

Random data, a random list of operations on random paths, through the same chain the
pipeline runs (:func:`~connector_runtime.transforms.chain.chain_transforms` over the
built-in plugin's transform). Whatever the shapes: nothing raises out of the chain, an
event that fails is reported as a ``TransformError`` (never another exception), ``id`` and
``source`` never change, and a value put under ``hash`` or ``drop`` first leaves no trace
in the encoded event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from connector_runtime.events import make_event, to_structured
from connector_runtime.transforms.chain import chain_transforms
from connector_runtime.transforms.ops import build_transform, compile_transforms, make_transform
from connector_runtime.transforms.record import Record, TransformError

KEY = "fuzz-key-0123456789abcdef"
NAMES = ["a", "b", "c"]
# random text never holds the marker's letters, so the marker is found only where it was put
TEXT = st.text(alphabet=st.characters(blacklist_characters="QZ", blacklist_categories=["Cs"]))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(
        ["81.2.69.143", "2001:db8::1", "ann@example.org", "To: b@c.io", "/api/v2/users/a%7Cb"]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner),
    max_leaves=12,
)
STEPS = st.lists(st.sampled_from([".a", ".b", ".c", "[*]", "[0]"]), max_size=3)
PATHS = st.one_of(
    STEPS.map(lambda steps: "data" + "".join(steps)),
    st.sampled_from(["subject", "time", "tag", "type"]),
)


@st.composite
def operations(draw: st.DrawFn) -> dict[str, Any]:
    paths = draw(st.lists(PATHS, min_size=1, max_size=3))
    name = draw(
        st.sampled_from(["hash", "mask", "ipPrefix", "truncate", "drop", "emails", "userIds"])
    )
    if name in ("drop", "ipPrefix"):
        paths = [p for p in paths if p != "type"] or ["data"]
    config: dict[str, Any] = {"paths": paths}
    if name == "hash" or (name in ("emails", "userIds") and draw(st.booleans())):
        config["key"] = KEY
    if name == "mask":
        config |= {"keepStart": draw(st.integers(0, 3)), "keepEnd": draw(st.integers(0, 3))}
    if name == "ipPrefix":
        config |= {"v4": draw(st.integers(0, 32)), "v6": draw(st.integers(0, 128))}
    if name == "truncate":
        config["maxBytes"] = draw(st.integers(1, 40))
    return {name: config}


def put(data: Any, keys: list[str], value: Any) -> Any:
    """``data`` with ``value`` at ``keys`` (objects made on the way)."""
    if not keys:
        return value
    holder = data if isinstance(data, dict) else {}
    holder[keys[0]] = put(holder.get(keys[0]), keys[1:], value)
    return holder


@given(
    data=JSON,
    keys=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
    in_list=st.booleans(),
    marker=st.text(alphabet="QZ", min_size=12, max_size=20),
    first=st.sampled_from(["hash", "drop"]),
    rest=st.lists(operations(), max_size=4),
    subject=st.one_of(st.none(), TEXT),
)
def test_transforms_over_random_json(data, keys, in_list, marker, first, rest, subject):
    value: Any = [marker, 7, marker] if in_list else marker
    data = put(data, keys, value)
    path = "data." + ".".join(keys) + ("[*]" if in_list else "")
    head: dict[str, Any] = {"paths": [path]}
    if first == "hash":
        head["key"] = KEY
    entries = [{first: head}, *rest]
    failures: list[str] = []
    notes: list[str] = []
    chain = chain_transforms([("spec", build_transform(entries, notes.append))], failures.append)
    assert chain is not None
    event = make_event(
        id="id-1",
        source="urn:fuzz",
        type="t",
        data=json.dumps(data).encode(),
        subject=subject,
        extensions={"tag": "x"},
    )

    out = chain([event])  # never raises

    assert all(f.startswith("spec: TransformError: ") for f in failures), failures
    assert len(out) + len(failures) == 1
    if not out:
        return
    (done,) = out
    assert (done.id, done.get("source")) == ("id-1", "urn:fuzz")
    document = to_structured(done)
    assert marker.encode() not in document
    assert json.loads(document)["id"] == "id-1"
    if first == "hash" and not rest:
        digest = hmac.new(KEY.encode(), marker.encode(), hashlib.sha256).hexdigest()
        assert digest.encode() in document


def outcome(transform: Any, event: Any) -> tuple[Any, ...]:
    notes: list[str] = []
    try:
        done = transform(event, notes.append)
    except TransformError as exc:
        return ("error", str(exc), notes)
    return ("ok", to_structured(done), done is event, notes)


@given(
    data=st.one_of(JSON, st.dictionaries(st.sampled_from(NAMES), JSON)),
    entries=st.lists(operations(), min_size=1, max_size=4),
    subject=st.one_of(st.none(), TEXT),
)
def test_the_compiled_plan_is_the_paths_in_turn(data, entries, subject):
    """The trees of transforms/plan.py give what applying each path in turn gives: the
    same bytes, the same error, the same notes."""
    operations_ = compile_transforms(entries)

    def fast(event, note):
        return make_transform(operations_, note)(event)

    def in_turn(event, note):
        record = Record(event)
        for operation in operations_:
            operation.apply_in_turn(record, note)
        return record.finish()

    def event():
        body = json.dumps(data).encode()
        return make_event(id="i", source="urn:s", type="t", data=body, subject=subject)

    assert outcome(fast, event()) == outcome(in_turn, event())
