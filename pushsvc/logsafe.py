"""Client-supplied text made safe to put in a log line or a response header.

Anyone can send a path, a query or a header, with or without a token, so
nothing a client chose may reach a log line raw: a newline would start a
forged line, a NUL or an escape sequence would corrupt the file or the
terminal, and a megabyte would flood the log. ``printable`` escapes every
character that is not printable (as Python's ``repr`` would) and caps the
length; ``redact_tokens`` hides anything shaped like a JWT wherever it
appears.
"""

from __future__ import annotations

import re

# Longest client value a log line carries (characters before escaping).
DEFAULT_LIMIT = 200

# A JOSE header is a JSON object, so a JWT (or JWE) starts with base64url("{\"") = "eyJ", and so
# does its payload. From such a run to the end of the value (the next separator in a URL) is a
# token: a token with a damaged character is still one, and stopping at the damage would log
# the rest of it, signature included.
_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{6,}[^\s&/?#;,\"']*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REDACTED = "<redacted>"


def printable(value: str, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` with control and other non-printable characters escaped, cut to ``limit`` characters.

    Backslashes are escaped too, so an escape in the output always means the
    client sent that character, never that it typed the escape. A cut value
    ends with ``...[N chars]``, N being the original length.
    """
    cut = value if len(value) <= limit else value[:limit]
    if not (cut.isprintable() and "\\" not in cut):
        cut = "".join(ch if ch.isprintable() and ch != "\\" else _escape(ch) for ch in cut)
    if len(value) > limit:
        cut += f"...[{len(value)} chars]"
    return cut


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def redact_tokens(value: str) -> str:
    """``value`` with every JWT-shaped run, to the end of its URL part, replaced by ``<redacted>``."""
    if "eyJ" not in value:
        return value
    return _JWT_SHAPED.sub(REDACTED, value)


def is_token_shaped(value: str) -> bool:
    """Whether ``value`` holds a JWT-shaped run anywhere."""
    return "eyJ" in value and _JWT_SHAPED.search(value) is not None


def safe_request_id(value: str | None) -> str | None:
    """A client's ``X-Request-ID`` if it is 1-64 characters of ``A-Z a-z 0-9 . _ : -``
    and not part of a token; else None (the caller generates one)."""
    if value is None or _REQUEST_ID.fullmatch(value) is None or is_token_shaped(value):
        return None
    return value
