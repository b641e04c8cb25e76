"""Rotation to a .env file and to the Vault emulator, applied to the Render emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from envsync.emulators import EmulatorSet
from envsync.engine import Engine
from envsync.errors import ConfigError, RotationError
from envsync.model import SecretValue
from envsync.rotate import RotateReport, rotate
from envsync.store import RunTrigger
from tests.ops_support import environ_for, make_engine, render_vars, seed_render, write_canonical

# Lines a rotation must leave byte for byte: a comment, an export, quotes, blanks, a BOM-free
# CRLF line and a key defined before the rotated one.
CANONICAL = (
    "# canonical set for the api service\n"
    "export BRIDGE_MODE=live\n"
    "BRIDGE_TOKEN=old-token   # rotated monthly\n"
    "\n"
    "BRIDGE_QUOTED='single quoted'\r\n"
    'BRIDGE_JSON="{\\"a\\": 1}"\n'
)


def _engine(emulators: EmulatorSet, folder: Path, **extra: str) -> Engine:
    return make_engine(environ_for(emulators, folder, ENVSYNC_TARGETS="render", **extra), folder)


def _rotate(
    engine: Engine, key: str, value: str | None = None, *, generate: bool = False
) -> RotateReport:
    secret = SecretValue(value) if value is not None else None
    return asyncio.run(rotate(engine, key, value=secret, generate=generate, actor="tester"))


def test_file_rotation_keeps_every_other_line(emulators: EmulatorSet, tmp_path: Path) -> None:
    path = write_canonical(tmp_path, CANONICAL)
    path.write_bytes(CANONICAL.encode())
    engine = _engine(emulators, tmp_path)

    _rotate(engine, "BRIDGE_TOKEN", "new-token")

    before = CANONICAL.encode().splitlines(keepends=True)
    after = path.read_bytes().splitlines(keepends=True)
    assert after[2] == b"BRIDGE_TOKEN=new-token   # rotated monthly\n"
    assert after[:2] + after[3:] == before[:2] + before[3:]


def test_file_rotation_applies_only_the_rotated_key(emulators: EmulatorSet, tmp_path: Path) -> None:
    seed_render(emulators, {"BRIDGE_TOKEN": "old-token", "DATABASE_URL": "unmanaged"})
    write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)

    outcome = _rotate(engine, "BRIDGE_TOKEN", "new-token")

    assert outcome.ok
    assert render_vars(emulators) == {"BRIDGE_TOKEN": "new-token", "DATABASE_URL": "unmanaged"}


def test_rotation_is_recorded_as_one_run(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)

    outcome = _rotate(engine, "BRIDGE_TOKEN", "new-token")

    recorded = engine.store().get_run(outcome.run_id)
    assert recorded is not None
    assert (recorded.trigger, recorded.actor) == (RunTrigger.ROTATE, "tester")
    [target] = recorded.targets
    assert [change.key for change in target.written] == ["BRIDGE_TOKEN"]


def test_rotation_publishes_complete_event_with_key(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)
    seen: list[Any] = []
    engine.events.subscribe("ENVSYNC_COMPLETE", seen.append)

    _rotate(engine, "BRIDGE_TOKEN", "new-token")

    [event] = seen
    assert event.keys == ["BRIDGE_TOKEN"]


def test_generated_value_reaches_file_and_target(emulators: EmulatorSet, tmp_path: Path) -> None:
    path = write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)

    outcome = _rotate(engine, "BRIDGE_TOKEN", generate=True)

    generated = render_vars(emulators)["BRIDGE_TOKEN"]
    assert outcome.generated
    assert len(generated) == 43
    assert f"BRIDGE_TOKEN={generated}   # rotated monthly\n" in path.read_text()


def test_new_key_is_appended_to_the_file(emulators: EmulatorSet, tmp_path: Path) -> None:
    path = write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)

    _rotate(engine, "BRIDGE_NEW", "fresh")

    assert path.read_text().endswith('BRIDGE_JSON="{\\"a\\": 1}"\nBRIDGE_NEW=fresh\n')


def _vault_engine(emulators: EmulatorSet, folder: Path) -> Engine:
    return _engine(
        emulators,
        folder,
        ENVSYNC_CANONICAL_SOURCE="vault",
        VAULT_ADDR=emulators.vault_url,
        VAULT_TOKEN=emulators.vault_token,
    )


def _seed_vault(emulators: EmulatorSet, data: dict[str, Any]) -> None:
    emulators.seed(
        {"vault": {"tokens": [emulators.vault_token], "mounts": {"secret": {"envsync": data}}}}
    )


def _vault_data(emulators: EmulatorSet) -> dict[str, Any]:
    data: dict[str, Any] = emulators.state("vault")["mounts"]["secret"]["envsync"]
    return data


def test_vault_rotation_keeps_other_fields(emulators: EmulatorSet, tmp_path: Path) -> None:
    _seed_vault(emulators, {"BRIDGE_TOKEN": "old", "BRIDGE_PORT": 5432, "BRIDGE_MODE": "live"})
    engine = _vault_engine(emulators, tmp_path)

    outcome = _rotate(engine, "BRIDGE_TOKEN", "new-token")

    assert outcome.origin == "vault secret/envsync"
    assert _vault_data(emulators) == {
        "BRIDGE_TOKEN": "new-token",
        "BRIDGE_PORT": 5432,
        "BRIDGE_MODE": "live",
    }
    assert render_vars(emulators) == {"BRIDGE_TOKEN": "new-token"}


def test_vault_rotation_retries_after_check_and_set_mismatch(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    _seed_vault(emulators, {"BRIDGE_TOKEN": "old"})
    engine = _vault_engine(emulators, tmp_path)
    mismatch = {
        "status": 400,
        "body": {"errors": ["check-and-set parameter did not match the current version"]},
    }
    write = {"method": "POST", "path": "/v1/secret/data/envsync$"}
    emulators.add_fault("vault", {"match": write, "times": 1, "fault": mismatch})

    _rotate(engine, "BRIDGE_TOKEN", "new-token")

    writes = [r for r in emulators.requests("vault") if r["method"] == "POST"]
    assert [r["status"] for r in writes] == [400, 200]
    assert _vault_data(emulators)["BRIDGE_TOKEN"] == "new-token"


@pytest.mark.parametrize("source", ["env", "dashboard"])
def test_unwritable_source_names_the_setting(
    emulators: EmulatorSet, tmp_path: Path, source: str
) -> None:
    engine = _engine(
        emulators,
        tmp_path,
        ENVSYNC_CANONICAL_SOURCE=source,
        ENVSYNC_DASHBOARD_URL="http://127.0.0.1:9/unused",
    )

    with pytest.raises(ConfigError) as raised:
        _rotate(engine, "BRIDGE_TOKEN", "new-token")

    assert raised.value.setting == "ENVSYNC_CANONICAL_SOURCE"
    assert "file or vault" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "extra", "message"),
    [
        ("OTHER_TOKEN", {}, "ENVSYNC_INCLUDE_PREFIXES=BRIDGE_"),
        ("SECRET_BRIDGE", {"ENVSYNC_INCLUDE_PREFIXES": ""}, "ENVSYNC_EXCLUDE_PREFIXES"),
        ("ENVSYNC_SNAPSHOT_KEY", {}, "envsync's own credentials"),
        (
            "URL",
            {"ENVSYNC_TARGETS": "netlify", "ENVSYNC_INCLUDE_PREFIXES": ""},
            "Netlify rejects the key URL",
        ),
    ],
    ids=["outside-include", "excluded", "own-credential", "netlify-reserved"],
)
def test_key_rules_say_which_rule(
    emulators: EmulatorSet, tmp_path: Path, key: str, extra: dict[str, str], message: str
) -> None:
    path = write_canonical(tmp_path, CANONICAL)
    environ = environ_for(emulators, tmp_path, **{"ENVSYNC_TARGETS": "render", **extra})
    environ.setdefault("ENVSYNC_INCLUDE_PREFIXES", "BRIDGE_")
    engine = make_engine(environ, tmp_path)

    with pytest.raises(RotationError) as raised:
        _rotate(engine, key, "new-value")

    assert message in str(raised.value)
    assert path.read_bytes() == CANONICAL.encode()


@pytest.mark.parametrize(
    ("value", "generate", "message"),
    [(None, False, "no new value"), ("x", True, "not both"), ("", False, "empty")],
    ids=["none", "both", "empty"],
)
def test_value_choice_errors(
    emulators: EmulatorSet, tmp_path: Path, value: str | None, generate: bool, message: str
) -> None:
    write_canonical(tmp_path, CANONICAL)
    engine = _engine(emulators, tmp_path)

    with pytest.raises(RotationError) as raised:
        _rotate(engine, "BRIDGE_TOKEN", value, generate=generate)

    assert message in str(raised.value)
