"""Identifier, token and timestamp formats of the emulated platforms."""

from __future__ import annotations

import base64
import datetime
import secrets
import time
import uuid

# Render ids are a type prefix and 20 characters of lowercase base32hex, such as
# `srv-ct6vn35j0q5s700ckga0` (Render API recordings in render-oss/terraform-provider-render).
_RENDER_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
RENDER_ID_LENGTH = 20


def render_id(prefix: str) -> str:
    """Return a new Render-style id, e.g. `render_id("srv")` -> `srv-` and 20 characters."""
    body = "".join(secrets.choice(_RENDER_ID_ALPHABET) for _ in range(RENDER_ID_LENGTH))
    return f"{prefix}-{body}"


def netlify_hex_id() -> str:
    """Return a new 24-hex-digit id, the form of Netlify account, build and deploy ids."""
    return secrets.token_hex(12)


def new_uuid() -> str:
    """Return a new random UUID string, the form of Netlify site and value ids."""
    return str(uuid.uuid4())


def generated_secret() -> str:
    """Return a base64-encoded 256-bit random value: 44 characters, as Render's generateValue."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def timestamp(moment_ns: int | None = None, *, digits: int = 6) -> str:
    """Format a Unix time in nanoseconds as RFC 3339 UTC with `digits` fractional digits.

    Render's times have microseconds, Netlify's milliseconds and Vault's nanoseconds.
    """
    nanoseconds = time.time_ns() if moment_ns is None else moment_ns
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return f"{stamp}Z"
    return f"{stamp}.{fraction:09d}"[: len(stamp) + 1 + digits] + "Z"


def parse_timestamp(text: str) -> float:
    """Parse an RFC 3339 or ISO 8601 time into Unix seconds; raise ValueError when invalid."""
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()
