"""Issue 18: the operations of ``spec.transforms`` and their path language, as pure code."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from connector_runtime.events import make_event, to_structured
from connector_runtime.transforms.ops import (
    TransformConfigError,
    compile_transforms,
    make_transform,
    transform_secrets,
)
from connector_runtime.transforms.paths import STAR, PathError, parse_path
from connector_runtime.transforms.record import TransformError

KEY = "k" * 16


def event(data, **attrs):
    return make_event(id="e1", source="urn:s", type="t", data=json.dumps(data).encode(), **attrs)


def run(transforms, ev, notes=None):
    notes = [] if notes is None else notes
    return make_transform(compile_transforms(transforms), notes.append)(ev)


def data_of(ev):
    return json.loads(ev.data)


def mac(text: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_paths_parse():
    assert parse_path("data.a.b").steps == ("a", "b")
    assert parse_path("data.details.prompts[*].user_name").steps == (
        "details",
        "prompts",
        STAR,
        "user_name",
    )
    assert parse_path('data["a.b"][2]').steps == ("a.b", 2)
    assert parse_path("subject").root == "subject"
    for bad, why in [
        ("data..a", "cannot read"),
        ("id", "cannot be transformed"),
        ("source", "cannot be transformed"),
        ("subject.x", "no members"),
        ("Subject", "not a CloudEvents attribute"),
        (".x", "must start"),
        ("data[x]", "cannot read"),
    ]:
        with pytest.raises(PathError, match=why):
            parse_path(bad)


def test_hash_is_hmac_sha256_hex_of_the_utf8_text():
    ev = event({"u": "Zoë@example.com", "n": 42, "b": True, "f": 1.5}, subject="auth0|1")
    out = run(
        [{"hash": {"paths": ["data.u", "data.n", "data.b", "data.f", "subject"], "key": KEY}}], ev
    )
    assert data_of(out) == {
        "u": mac("Zoë@example.com"),
        "n": mac("42"),
        "b": mac("true"),
        "f": mac("1.5"),
    }
    assert out.get("subject") == mac("auth0|1")
    assert len(mac("x")) == 64


def test_missing_and_null_are_skipped_and_the_event_is_kept_as_it_was():
    ev = event({"a": None, "b": [1, None]})
    doc = to_structured(ev)
    ev.doc = doc
    out = run(
        [
            {
                "hash": {
                    "paths": ["data.a", "data.zz", "data.b[1]", "data.b[9]", "subject"],
                    "key": KEY,
                }
            }
        ],
        ev,
    )
    assert out is ev and out.doc is doc  # nothing changed: not re-encoded


def test_object_or_list_under_hash_mask_ip_prefix_is_an_error():
    for op in [{"hash": {"key": KEY}}, {"mask": {}}, {"ipPrefix": {}}]:
        ((name, config),) = op.items()
        for value in ({"x": 1}, [1]):
            with pytest.raises(TransformError) as caught:
                run([{name: {**config, "paths": ["data.v"]}}], event({"v": value}))
            assert f"{name} data.v" in str(caught.value)
            assert "1" not in str(caught.value).replace("data.v", "")


def test_ip_prefix_keeps_the_leading_bits_in_canonical_form():
    ev = event({"ips": ["81.2.69.143", "2001:db8:85a3::8a2e:370:7334", "fe80::1%eth0", "nope", 7]})
    notes: list[str] = []
    out = run([{"ipPrefix": {"paths": ["data.ips[*]"], "v4": 24, "v6": 48}}], ev, notes)
    assert data_of(out) == {"ips": ["81.2.69.0", "2001:db8:85a3::", "fe80::", None, None]}
    assert len(notes) == 2 and all("not an IP address" in n for n in notes)
    out = run([{"ipPrefix": {"paths": ["data.ip"], "v4": 16, "v6": 0}}], event({"ip": "10.9.8.7"}))
    assert data_of(out) == {"ip": "10.9.0.0"}


def test_mask_counts_code_points():
    ev = event({"d": "héllo wörld", "s": "abc", "n": 123456})
    out = run(
        [{"mask": {"paths": ["data.d", "data.s", "data.n"], "keepStart": 2, "keepEnd": 2}}], ev
    )
    assert data_of(out) == {"d": "hé*******ld", "s": "***", "n": "12**56"}
    out = run([{"mask": {"paths": ["data.d"]}}], ev)
    assert data_of(out)["d"] == "*" * 11


def test_drop_members_items_attributes_and_the_data():
    ev = event({"a": 1, "l": [{"x": 1, "y": 2}, {"x": 3}], "keep": 0}, subject="s")
    out = run([{"drop": {"paths": ["data.a", "data.l[*].x", "subject"]}}], ev)
    assert data_of(out) == {"l": [{"y": 2}, {}], "keep": 0}
    assert "subject" not in out.peek()
    out = run([{"drop": {"paths": ["data.l[*]"]}}], ev)
    assert data_of(out) == {"a": 1, "l": [], "keep": 0}
    out = run([{"drop": {"paths": ["data"]}}], ev)
    assert out.data is None and "datacontenttype" not in out.peek()
    assert b'"data"' not in to_structured(out)


def test_truncate_cuts_at_a_code_point():
    ev = event({"s": "ééééé", "o": {"k": "v" * 20}, "n": 10**30})
    out = run([{"truncate": {"paths": ["data.s", "data.o", "data.n"], "maxBytes": 5}}], ev)
    assert data_of(out) == {"s": "éé", "o": '{"k":', "n": 10**30}


def test_set_attributes_and_ids_untouched():
    ev = event({"a": 1})
    out = run(
        [{"set": {"attributes": {"dataschema": "https://example.com/s.json", "tier": 2}}}], ev
    )
    assert out.get("dataschema") == "https://example.com/s.json" and out.get("tier") == 2
    assert out.data == ev.data  # the data bytes are kept when only attributes change
    assert (out.id, out.get("source")) == ("e1", "urn:s")


def test_operations_apply_in_order_and_encode_once():
    ev = event({"ip": "1.2.3.4", "u": "a@b.c", "big": 2**70, "text": "x"})
    out = run(
        [
            {"hash": {"paths": ["data.u"], "key": KEY}},
            {"ipPrefix": {"paths": ["data.ip"]}},
            {"mask": {"paths": ["data.u"], "keepStart": 4}},
        ],
        ev,
    )
    assert data_of(out) == {
        "ip": "1.2.3.0",
        "u": mac("a@b.c")[:4] + "*" * 60,
        "big": 2**70,
        "text": "x",
    }
    assert out.doc is not None and out.doc == to_structured(
        make_event(id="e1", source="urn:s", type="t", data=out.data)
    )
    assert b"1180591620717411303424" in out.data  # integers past 64 bits stay exact


def test_invalid_json_data_is_an_error():
    bad = make_event(id="e", source="s", type="t", data=b'{"a":')
    with pytest.raises(TransformError, match="not valid JSON"):
        run([{"drop": {"paths": ["data.a"]}}], bad)
    text = make_event(id="e", source="s", type="t", data=b"a@b.c", datacontenttype="text/plain")
    assert run([{"hash": {"paths": ["data.a"], "key": KEY}}], text) is text  # not JSON: not reached


def test_config_errors_name_the_entry():
    cases = [
        ([{"hash": {"paths": ["data.a"], "key": "short"}}], "/spec/transforms/0/hash/key"),
        (
            [{"drop": {"paths": ["data.a"]}}, {"drop": {"paths": ["id"]}}],
            "/spec/transforms/1/drop/paths/0",
        ),
        ([{"drop": {"paths": ["type"]}}], "/spec/transforms/0/drop/paths/0"),
        ([{"set": {"attributes": {"source": "x"}}}], "/spec/transforms/0/set/attributes"),
        ([{"hash": {}, "drop": {}}], "/spec/transforms/0"),
    ]
    for transforms, where in cases:
        with pytest.raises(TransformConfigError) as caught:
            compile_transforms(transforms)
        assert caught.value.path == where
        assert "short" not in caught.value.message
    assert transform_secrets([{"hash": {"paths": ["a"], "key": KEY}}, {"drop": {}}]) == {KEY}
    assert KEY not in repr(compile_transforms([{"hash": {"paths": ["data.a"], "key": KEY}}]))


def test_emails_inside_text_objects_and_lists():
    ev = event(
        {"d": "To: neo@test.com, cc a.b+c@mail.example.org.", "x": {"l": ["dev@test.com", 1]}}
    )
    out = run([{"emails": {"paths": ["data.d", "data.x"], "key": KEY}}], ev)
    assert data_of(out) == {
        "d": f"To: {mac('neo@test.com')}, cc {mac('a.b+c@mail.example.org')}.",
        "x": {"l": [mac("dev@test.com"), 1]},
    }
    out = run([{"emails": {"paths": ["data"]}}], ev)
    assert data_of(out)["d"] == "To: <email>, cc <email>."
    untouched = event({"d": "no address @ all"})
    assert run([{"emails": {"paths": ["data"]}}], untouched) is untouched


def test_truncate_of_an_object_with_an_integer_past_64_bits():
    # found by tests/fuzz/test_fuzz_transforms.py
    ev = event({"a": {"a": -9223372036854775809}})
    out = run([{"truncate": {"paths": ["data"], "maxBytes": 12}}], ev)
    assert data_of(out) == '{"a":{"a":-9'


def test_user_ids_inside_text_and_urls():
    ev = event(
        {
            "request": {
                "path": "/api/v2/users/auth0%7C5f7c8ec7c33c6c004bbafe82/roles",
                "query": "?q=user_id%3Agoogle-oauth2%7C1099&per_page=5",
                "also": "/api/v2/users/email|ann/identities/google-oauth2/1099",
            },
            "text": "blocked samlp|corp|ann@example.com.",
            "n": 7,
        }
    )
    out = run([{"userIds": {"paths": ["data.request", "data.text"], "key": KEY}}], ev)
    assert data_of(out) == {
        "request": {
            "path": f"/api/v2/users/{mac('auth0|5f7c8ec7c33c6c004bbafe82')}/roles",
            "query": f"?q=user_id%3A{mac('google-oauth2|1099')}&per_page=5",
            "also": f"/api/v2/users/{mac('email|ann')}/identities/google-oauth2/{mac('1099')}",
        },
        "text": f"blocked {mac('samlp|corp|ann@example.com')}.",
        "n": 7,
    }
    out = run([{"userIds": {"paths": ["data"]}}], ev)
    assert data_of(out)["request"]["path"] == "/api/v2/users/<user_id>/roles"
    assert "1099" not in out.data.decode() and "5f7c8ec7" not in out.data.decode()
    untouched = event({"path": "/api/v2/clients/abc", "d": "no id here"})
    assert run([{"userIds": {"paths": ["data"]}}], untouched) is untouched


def test_a_failing_event_names_the_error_the_paths_in_turn_meet_first():
    # The paths under one [*] are walked item by item; the error named is still the one
    # of the first path that fails over all items (here x of the second item, not y of
    # the first).
    ev = event({"l": [{"x": 1, "y": {"o": 1}}, {"x": [2], "y": 3}]})
    with pytest.raises(TransformError) as caught:
        run([{"hash": {"paths": ["data.l[*].x", "data.l[*].y"], "key": KEY}}], ev)
    assert str(caught.value) == "hash data.l[*].x: found a list, not a value"
    out = run(
        [{"hash": {"paths": ["data.l[*].x", "data.l[*].y"], "key": KEY}}],
        event({"l": [{"x": 1, "y": 2}]}),
    )
    assert data_of(out) == {"l": [{"x": mac("1"), "y": mac("2")}]}
