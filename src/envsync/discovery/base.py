"""Shared parts of the token discovery steps: their input, their result and the clean-up
of a token found as text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from envsync.config import Settings
from envsync.model import SecretValue

TOKEN_NAMES = {"render": "RENDER_API_TOKEN", "netlify": "NETLIFY_API_TOKEN"}
PROVIDER_TITLES = {"render": "Render", "netlify": "Netlify"}

Attempt = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StepContext:
    """One provider's lookup: the settings, the token's variable name and the environment."""

    settings: Settings
    provider: str
    token_name: str
    environ: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one step: a token and where it was, or the places tried and why each had
    nothing. `attempts` pairs a place (such as `env RENDER_API_TOKEN`) with the reason."""

    token: SecretValue | None = None
    source: str | None = None
    attempts: tuple[Attempt, ...] = ()
    warnings: tuple[str, ...] = ()


class DiscoveryStep(NamedTuple):
    """A step of the chain: `find` looks the token up, `hint` names where a user can put it
    for this step (None when the step is not configured)."""

    find: Callable[[StepContext], Awaitable[StepResult]]
    hint: Callable[[StepContext], str | None]


def miss(where: str, reason: str) -> StepResult:
    return StepResult(attempts=((where, reason),))


def token_result(raw: str, where: str, *, had_bom: bool = False) -> StepResult:
    """Turn text found at `where` into a token, trimming what surrounds it with a warning.

    Editors and `echo` add line ends, and Windows tools a byte-order mark. Sent as they
    are, they break the Authorization header, so they are removed. A token with whitespace
    or a control character inside is unusable and counts as a miss.
    """
    text = raw.removeprefix("\ufeff")
    had_bom = had_bom or text != raw
    token = text.strip()
    if not token:
        return miss(where, "empty")
    if any(character.isspace() or not character.isprintable() for character in token):
        return miss(where, "contains whitespace or a control character inside the token")

    trimmed = _describe_trimmed(text, had_bom)
    warnings = (f"{where}: trimmed {trimmed} around the token",) if trimmed else ()
    return StepResult(token=SecretValue(token), source=where, warnings=warnings)


def _describe_trimmed(text: str, had_bom: bool) -> str:
    parts = ["a byte-order mark"] if had_bom else []
    leading = text[: len(text) - len(text.lstrip())]
    trailing = text[len(text.rstrip()) :]
    if leading:
        parts.append("leading whitespace")
    if "\r\n" in trailing:
        parts.append("a CRLF line ending")
    elif "\n" in trailing or "\r" in trailing:
        parts.append("a line ending")
    if trailing.strip("\r\n"):
        parts.append("trailing whitespace")
    return " and ".join(parts)


def token_from_body(body: Any, token_name: str, where: str) -> StepResult:
    """Read a token from a JSON body `{"key": NAME, "value": "..."}` or `{"value": "..."}`."""
    if not isinstance(body, dict):
        return miss(where, "the response is not a JSON object")
    if "key" in body and body["key"] != token_name:
        return miss(where, "the response is for another key")

    value = body.get("value")
    if value is None:
        return miss(where, "the response has no value")
    if not isinstance(value, str):
        return miss(where, "the value in the response is not a string")
    return token_result(value, where)
