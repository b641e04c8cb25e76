"""A canonical value that equals or contains one of envsync's credentials never leaves."""

from __future__ import annotations

import pytest

from envsync.model import SecretValue
from envsync.planner import credential_reason

TOKEN = "rnd_4f9c2a7e81b0d3c6"
CREDENTIALS = {
    "RENDER_API_TOKEN": SecretValue(TOKEN),
    "VAULT_ADDR": SecretValue("https://vault.example.com"),
    "ENVSYNC_WEBHOOK_SECRET": SecretValue("short"),
}

CASES = [
    ("a copy of the token", TOKEN, "equals envsync's own credential RENDER_API_TOKEN"),
    ("the token in a URL", f"https://ci:{TOKEN}@example.com", "contains"),
    ("the token after a prefix", f"Bearer {TOKEN}", "contains"),
    ("a copy of the vault address", "https://vault.example.com", "equals"),
    ("a link into the vault", "https://vault.example.com/ui/vault/secrets", None),
    ("a short credential inside a word", "shortcut", None),
    ("a copy of a short credential", "short", "equals"),
    ("an unrelated value", "postgres://app@db/app", None),
    ("an empty value", "", None),
]


@pytest.mark.parametrize(
    ("value", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_credential_reason_cases(value: str, expected: str | None) -> None:
    reason = credential_reason(SecretValue(value), CREDENTIALS)

    if expected is None:
        assert reason is None
        return
    assert reason is not None
    assert expected in reason
    assert TOKEN not in reason
