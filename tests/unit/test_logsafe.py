"""Client text made safe for log lines and headers: escaping, capping, token redaction, request ids."""

from __future__ import annotations

import pytest

from pushsvc.logsafe import is_token_shaped, printable, redact_tokens, safe_request_id

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZXN0ZXIiLCJleHAiOjE4OTM0NTYwMDB9"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ"
)


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("/api/v1/vm-contexts/pgtest1", "/api/v1/vm-contexts/pgtest1"),
        (
            "/x\n2026-11-28 07:00:00,000 CRITICAL pushsvc.auth: forged",
            "/x\\x0a2026-11-28 07:00:00,000 CRITICAL pushsvc.auth: forged",
        ),
        ("/a\rb", "/a\\x0db"),
        ("/nul\x00", "/nul\\x00"),
        ("/del\x7f", "/del\\x7f"),
        ("/esc\x1b[31mred", "/esc\\x1b[31mred"),
        ("/ls\u2028ps\u2029", "/ls\\u2028ps\\u2029"),
        ("/bidi\u202egnp.exe", "/bidi\\u202egnp.exe"),
        ("/c1\x85", "/c1\\x85"),
        ("/back\\x0a", "/back\\\\x0a"),
        ("/vm-ünïcødé-名前", "/vm-ünïcødé-名前"),
        ("/surrogate\udcff", "/surrogate\\udcff"),
    ],
)
def test_printable_escapes_what_could_forge_or_corrupt_a_line(raw, shown):
    assert printable(raw) == shown
    assert printable(raw).isprintable()


def test_printable_caps_the_length_and_says_so():
    shown = printable("a" * 5000, limit=100)
    assert shown == "a" * 100 + "...[5000 chars]"
    assert printable("b" * 100, limit=100) == "b" * 100


def test_printable_caps_before_escaping_a_flood_of_control_characters():
    assert len(printable("\n" * 100_000, limit=10)) < 64


@pytest.mark.parametrize(
    "raw, shown",
    [
        (f"/x?t={JWT}", "/x?t=<redacted>"),
        (f"state={JWT}&x=1", "state=<redacted>&x=1"),
        (f"Bearer {JWT}", "Bearer <redacted>"),
        ("eyJhbGciOiJIUzI1NiJ9", "<redacted>"),  # a header segment alone is still token-shaped
        ("eyJ", "eyJ"),
        ("/api/v1/vm-contexts/pgtest1?limit=5", "/api/v1/vm-contexts/pgtest1?limit=5"),
        (f"{JWT}\x00tail", "<redacted>"),
        (f"/vm/{JWT}/disks?x=1", "/vm/<redacted>/disks?x=1"),
        # damaged tokens: the damage does not end the redaction
        (f"t={JWT[:60]}|{JWT[61:]}&x=1", "t=<redacted>&x=1"),
        # the payload starts with eyJ too: only the (public) damaged header stays
        (f"t={JWT[:5]}|{JWT[6:]}", "t=eyJhb|ciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.<redacted>"),
    ],
)
def test_redact_tokens(raw, shown):
    assert redact_tokens(raw) == shown


def test_is_token_shaped():
    assert is_token_shaped(JWT) and is_token_shaped("x" + JWT)
    assert not is_token_shaped("eyJ") and not is_token_shaped("pgtest1")


@pytest.mark.parametrize("value", ["abc", "req-1", "a.b_c:d-e", "0" * 64, "7f3c2a1b9e0d4c55"])
def test_safe_request_id_accepts(value):
    assert safe_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "0" * 65, "a b", "a\nb", "x\x7f", "x\u2028", "٣", "a/b", "a;b", '"quoted"', "eyJhbGciOiJIUzI1NiJ9"],
)
def test_safe_request_id_refuses(value):
    assert safe_request_id(value) is None
