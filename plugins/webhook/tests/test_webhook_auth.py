"""The pure verification functions of ``connector_runtime_webhook.auth``."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from connector_runtime_webhook.auth import (
    ALGORITHMS,
    ENCODINGS,
    INVALID_SIGNATURE,
    STALE_TIMESTAMP,
    AuthFailure,
    BasicAuth,
    HmacAuth,
    TokenAuth,
    basic_header,
    basic_matches,
    fresh,
    make_auth,
    parse_stripe_header,
    sign,
    signature_matches,
    signed_payload,
    token_matches,
)

SECRET = b"a shared secret"
BODY = b'{"action":"opened","number":2}'
NOW = 1_700_000_000.0


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_sign_then_verify_round_trips(algorithm, encoding):
    signature = sign(SECRET, BODY, algorithm, encoding)
    assert signature_matches(SECRET, BODY, signature, algorithm, encoding)
    assert not signature_matches(SECRET, BODY + b" ", signature, algorithm, encoding)
    assert not signature_matches(b"another secret", BODY, signature, algorithm, encoding)
    other = "sha1" if algorithm != "sha1" else "sha256"
    assert not signature_matches(SECRET, BODY, signature, other, encoding)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_signatures_agree_with_hashlib(algorithm):
    mac = hmac.new(SECRET, BODY, getattr(hashlib, algorithm)).digest()
    assert sign(SECRET, BODY, algorithm, "hex") == mac.hex()
    assert sign(SECRET, BODY, algorithm, "base64") == base64.b64encode(mac).decode()


def test_githubs_published_example_verifies():
    # The example from GitHub's "Validating webhook deliveries" page.
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(b"It's a Secret to Everybody", b"Hello, World!") == expected


def test_hex_is_compared_case_insensitively_base64_exactly():
    hex_sig = sign(SECRET, BODY, "sha256", "hex")
    assert signature_matches(SECRET, BODY, hex_sig.upper())
    b64 = sign(SECRET, BODY, "sha256", "base64")
    assert not signature_matches(SECRET, BODY, b64.lower(), encoding="base64")
    assert not signature_matches(SECRET, BODY, b64.rstrip("="), encoding="base64")


def test_non_ascii_garbage_is_just_a_mismatch():
    assert not signature_matches(SECRET, BODY, "sïgnätür€")
    assert not signature_matches(SECRET, BODY, "")


def test_signed_payload_fills_the_template_without_touching_the_body():
    body = b'{"note":"{timestamp} and {body} stay as they are"}'
    assert signed_payload("{body}", body) is body
    assert signed_payload("{timestamp}.{body}", body, "17") == b"17." + body
    assert signed_payload("v0:{timestamp}:{body}", body, "9") == b"v0:9:" + body
    with pytest.raises(ValueError, match="timestamp"):
        signed_payload("{timestamp}.{body}", body)


def test_stripe_header_parsing():
    assert parse_stripe_header("t=1700000000,v1=abc,v1=def,v0=zzz") == (
        "1700000000",
        ("abc", "def"),
    )
    assert parse_stripe_header(" t = 12 , v1 = ab ") == ("12", ("ab",))
    assert parse_stripe_header("garbage") == (None, ())
    assert parse_stripe_header("v1=ab") == (None, ("ab",))


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1700000000", True),
        ("1700000300", True),
        ("1699999700", True),
        ("1700000301", False),
        ("1699999699", False),
        ("1700000000.5", True),
        ("-5", None),
        ("soon", None),
        ("", None),
        ("1e9", None),
    ],
)
def test_fresh(stamp, expected):
    assert fresh(stamp, NOW, 300) is expected


def test_token_and_basic_comparisons():
    assert token_matches("Bearer abc", "Bearer abc")
    assert not token_matches("Bearer abd", "Bearer abc")
    assert not token_matches(None, "Bearer abc")
    header = basic_header("ops", "pa:ss")
    assert basic_matches(header, "ops", "pa:ss")
    assert basic_matches(header.replace("Basic", "basic"), "ops", "pa:ss")
    assert not basic_matches(header, "ops", "pa:sS")
    assert not basic_matches(header, "Ops", "pa:ss")
    assert not basic_matches(header.replace("Basic", "Bearer"), "ops", "pa:ss")
    assert not basic_matches("Basic !!!", "ops", "pa:ss")
    assert not basic_matches("Basic " + base64.b64encode(b"opspa:ss").decode(), "ops", "pa:ss")
    assert not basic_matches(None, "ops", "pa:ss")


def _github() -> HmacAuth:
    return HmacAuth(header="X-Hub-Signature-256", secret=SECRET, prefix="sha256=")


def test_hmac_with_a_prefix():
    auth = _github()
    good = {"X-Hub-Signature-256": "sha256=" + sign(SECRET, BODY)}
    auth.check_body(auth.check_headers(good, NOW), BODY)
    with pytest.raises(AuthFailure, match=INVALID_SIGNATURE):
        auth.check_body(auth.check_headers(good, NOW), BODY + b"\n")
    for headers in ({}, {"X-Hub-Signature-256": sign(SECRET, BODY)}):
        with pytest.raises(AuthFailure) as caught:
            auth.check_headers(headers, NOW)
        assert caught.value.reason == INVALID_SIGNATURE


def test_hmac_with_a_timestamp_header():
    auth = HmacAuth(
        header="X-Signature",
        secret=SECRET,
        encoding="base64",
        template="{timestamp}:{body}",
        timestamp_header="X-Timestamp",
        tolerance=60,
    )
    stamp = str(int(NOW))
    signature = sign(SECRET, stamp.encode() + b":" + BODY, encoding="base64")
    headers = {"X-Signature": signature, "X-Timestamp": stamp}
    auth.check_body(auth.check_headers(headers, NOW), BODY)
    with pytest.raises(AuthFailure, match=STALE_TIMESTAMP):
        auth.check_headers(headers, NOW + 61)
    with pytest.raises(AuthFailure, match="missing or invalid timestamp"):
        auth.check_headers({"X-Signature": signature}, NOW)
    # A timestamp moved into the window no longer matches the signature.
    moved = {**headers, "X-Timestamp": str(int(NOW) + 30)}
    with pytest.raises(AuthFailure, match=INVALID_SIGNATURE):
        auth.check_body(auth.check_headers(moved, NOW), BODY)


def test_stripe_format_accepts_any_of_several_v1_signatures():
    config = {"type": "hmac", "format": "stripe", "header": "Stripe-Signature", "secret": "whsec_x"}
    auth = make_auth(config)
    stamp = str(int(NOW))
    good = sign(b"whsec_x", f"{stamp}.".encode() + BODY)
    header = f"t={stamp},v1={'0' * 64},v1={good},v0=ignored"
    auth.check_body(auth.check_headers({"Stripe-Signature": header}, NOW), BODY)
    with pytest.raises(AuthFailure, match=STALE_TIMESTAMP):
        auth.check_headers({"Stripe-Signature": header}, NOW + 301)
    with pytest.raises(AuthFailure, match=INVALID_SIGNATURE):
        auth.check_headers({"Stripe-Signature": f"t={stamp}"}, NOW)
    only_old = f"t={stamp},v1={'0' * 64}"
    with pytest.raises(AuthFailure, match=INVALID_SIGNATURE):
        auth.check_body(auth.check_headers({"Stripe-Signature": only_old}, NOW), BODY)


def test_make_auth_compiles_each_kind():
    assert make_auth(None).kind == "none"
    assert make_auth({"type": "none"}).kind == "none"
    assert make_auth({"type": "token", "value": "t0ken-value"}) == TokenAuth(
        "Authorization", "t0ken-value"
    )
    assert make_auth({"type": "basic", "username": "u", "password": "p"}) == BasicAuth("u", "p")
    stripe = make_auth({"type": "hmac", "format": "stripe", "header": "S", "secret": "x"})
    assert isinstance(stripe, HmacAuth)
    assert stripe.template == "{timestamp}.{body}"
    assert stripe.tolerance == 300


def test_a_failure_never_carries_the_secret_or_the_offered_value():
    auth = make_auth({"type": "token", "header": "X-Token", "value": "very-secret-value"})
    with pytest.raises(AuthFailure) as caught:
        auth.check_headers({"X-Token": "very-secret-valuf"}, NOW)
    assert "very-secret" not in str(caught.value)
