"""`envsync runs`, `tickets`, `rollback` and `rotate`, run as a user runs them: a subprocess
with the loopback guard, against the emulators and a store in the test's folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from envsync.emulators import EmulatorSet
from envsync.model import RunMode
from envsync.tickets import TicketHook
from tests.conftest import subprocess_env
from tests.ops_support import (
    CANARY,
    environ_for,
    make_engine,
    render_vars,
    run,
    seed_render,
    write_canonical,
)

ENTRY = "from envsync.cli import main; main()"


def _envsync(
    environ: dict[str, str], folder: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        env=subprocess_env(environ),
        cwd=folder,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        completed.stdout.decode("utf-8"),
        completed.stderr.decode("utf-8"),
    )


def _environ(emulators: EmulatorSet, folder: Path, **extra: str) -> dict[str, str]:
    return environ_for(emulators, folder, ENVSYNC_TARGETS="render", **extra)


def _applied(emulators: EmulatorSet, folder: Path) -> tuple[dict[str, str], str]:
    """Apply BRIDGE_A (updated) and BRIDGE_B (created) through the CLI; return the run id."""
    seed_render(emulators, {"BRIDGE_A": "old-a"})
    write_canonical(folder, f"BRIDGE_A=new-a\nBRIDGE_B={CANARY}\n")
    environ = _environ(emulators, folder)
    applied = _envsync(environ, folder, "apply", "--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    run_id: str = json.loads(applied.stdout)["run_id"]
    return environ, run_id


def test_runs_json_lists_the_cli_run(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ, run_id = _applied(emulators, tmp_path)

    listed = _envsync(environ, tmp_path, "runs", "--json")

    assert listed.returncode == 0
    [entry] = json.loads(listed.stdout)
    assert (entry["id"], entry["trigger"], entry["mode"]) == (run_id, "cli", "enforce")
    written = [change["key"] for change in entry["targets"][0]["written"]]
    assert sorted(written) == ["BRIDGE_A", "BRIDGE_B"]


def test_runs_table_shows_run_id(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ, run_id = _applied(emulators, tmp_path)

    listed = _envsync(environ, tmp_path, "runs", "--limit", "5")

    assert listed.returncode == 0
    assert run_id in listed.stdout
    assert "succeeded" in listed.stdout


def test_runs_show_lists_written_keys(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ, run_id = _applied(emulators, tmp_path)

    shown = _envsync(environ, tmp_path, "runs", "show", run_id)

    assert shown.returncode == 0
    assert "written: create BRIDGE_B" in shown.stdout
    assert "written: update BRIDGE_A" in shown.stdout
    assert CANARY not in shown.stdout


def test_runs_show_unknown_run_exits_1(emulators: EmulatorSet, tmp_path: Path) -> None:
    shown = _envsync(_environ(emulators, tmp_path), tmp_path, "runs", "show", "nope")

    assert shown.returncode == 1
    assert "run nope not found" in shown.stderr


def test_tickets_lists_open_tickets_with_next_step(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    environ = _environ(emulators, tmp_path)
    engine = make_engine(environ, tmp_path)
    engine.result_hooks.append(TicketHook(engine.store()))
    fault = {"status": 401}
    read = {"method": "GET", "path": "/env-vars$"}
    emulators.add_fault("render", {"match": read, "times": 1, "fault": fault})
    run(engine, RunMode.DRY_RUN)

    as_json = _envsync(environ, tmp_path, "tickets", "--json")
    as_text = _envsync(environ, tmp_path, "tickets")

    [ticket] = json.loads(as_json.stdout)
    assert (ticket["target"], ticket["cause"], ticket["closed"]) == ("render/api", "auth", None)
    assert "next:" in as_text.stdout
    assert "envsync discover" in as_text.stdout


def test_tickets_all_includes_closed(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    environ = _environ(emulators, tmp_path)
    engine = make_engine(environ, tmp_path)
    engine.result_hooks.append(TicketHook(engine.store()))
    read = {"method": "GET", "path": "/env-vars$"}
    emulators.add_fault("render", {"match": read, "times": 1, "fault": {"status": 401}})
    run(engine, RunMode.DRY_RUN)
    run(engine, RunMode.ENFORCE)

    open_only = _envsync(environ, tmp_path, "tickets", "--json")
    every = _envsync(environ, tmp_path, "tickets", "--json", "--all")

    assert json.loads(open_only.stdout) == []
    assert [ticket["cause"] for ticket in json.loads(every.stdout)] == ["auth"]


def test_rollback_yes_restores_and_exits_0(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ, run_id = _applied(emulators, tmp_path)

    rolled = _envsync(environ, tmp_path, "rollback", run_id, "--yes", "--json")

    assert rolled.returncode == 0, rolled.stderr
    document = json.loads(rolled.stdout)
    assert (document["run_id"], document["applied"], document["ok"]) == (run_id, True, True)
    assert render_vars(emulators) == {"BRIDGE_A": "old-a"}
    assert CANARY not in rolled.stdout


def test_rollback_without_yes_shows_plan_and_refuses(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    environ, run_id = _applied(emulators, tmp_path)

    rolled = _envsync(environ, tmp_path, "rollback", run_id)

    assert rolled.returncode == 1
    assert "BRIDGE_B" in rolled.stdout
    assert "needs --yes" in rolled.stderr
    assert render_vars(emulators) == {"BRIDGE_A": "new-a", "BRIDGE_B": CANARY}


def test_rollback_conflict_exits_1_and_force_restores(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    environ, run_id = _applied(emulators, tmp_path)
    seed_render(emulators, {"BRIDGE_A": "edited", "BRIDGE_B": CANARY})

    conflicted = _envsync(environ, tmp_path, "rollback", run_id, "--yes")
    forced = _envsync(environ, tmp_path, "rollback", run_id, "--yes", "--force")

    assert conflicted.returncode == 1
    assert "changed since run" in conflicted.stdout
    assert forced.returncode == 0
    assert render_vars(emulators) == {"BRIDGE_A": "old-a"}


def test_rollback_without_snapshot_key_says_why(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ, run_id = _applied(emulators, tmp_path)
    environ["ENVSYNC_SNAPSHOT_KEY"] = ""

    rolled = _envsync(environ, tmp_path, "rollback", run_id, "--yes")

    assert rolled.returncode == 1
    assert "ENVSYNC_SNAPSHOT_KEY is not set" in rolled.stderr


def test_rotate_value_stdin_drops_one_trailing_newline(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    path = write_canonical(tmp_path, "BRIDGE_TOKEN=old\n")
    environ = _environ(emulators, tmp_path)

    rotated = _envsync(
        environ, tmp_path, "rotate", "BRIDGE_TOKEN", "--value-stdin", "--yes", stdin=b"k\n"
    )

    assert rotated.returncode == 0, rotated.stderr
    assert render_vars(emulators) == {"BRIDGE_TOKEN": "k"}
    assert path.read_text() == "BRIDGE_TOKEN=k\n"


def test_rotate_value_stdin_drops_exactly_one_newline(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_TOKEN=old\n")
    environ = _environ(emulators, tmp_path)

    for given, stored in ((b"k\r\n", "k"), (b"k\n\n", "k\n"), (b"k", "k")):
        rotated = _envsync(
            environ, tmp_path, "rotate", "BRIDGE_TOKEN", "--value-stdin", "--yes", stdin=given
        )
        assert rotated.returncode == 0, rotated.stderr
        assert render_vars(emulators) == {"BRIDGE_TOKEN": stored}


def test_rotate_generate_json_never_prints_value(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_TOKEN=old\n")
    environ = _environ(emulators, tmp_path)

    rotated = _envsync(environ, tmp_path, "rotate", "BRIDGE_TOKEN", "--generate", "--yes", "--json")

    assert rotated.returncode == 0, rotated.stderr
    document = json.loads(rotated.stdout)
    assert (document["key"], document["generated"], document["ok"]) == (
        "BRIDGE_TOKEN",
        True,
        True,
    )
    generated = render_vars(emulators)["BRIDGE_TOKEN"]
    assert generated not in rotated.stdout + rotated.stderr


def test_rotate_from_stdin_needs_yes(emulators: EmulatorSet, tmp_path: Path) -> None:
    path = write_canonical(tmp_path, "BRIDGE_TOKEN=old\n")

    rotated = _envsync(
        _environ(emulators, tmp_path),
        tmp_path,
        "rotate",
        "BRIDGE_TOKEN",
        "--value-stdin",
        stdin=b"k\n",
    )

    assert rotated.returncode == 1
    assert "needs --yes" in rotated.stderr
    assert path.read_text() == "BRIDGE_TOKEN=old\n"


def test_rotate_needs_exactly_one_value_option(emulators: EmulatorSet, tmp_path: Path) -> None:
    rotated = _envsync(_environ(emulators, tmp_path), tmp_path, "rotate", "BRIDGE_TOKEN", "--yes")

    assert rotated.returncode == 1
    assert "exactly one of --value-stdin and --generate" in rotated.stderr


def test_rotate_unwritable_source_exits_1(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_CANONICAL_SOURCE="env")

    rotated = _envsync(environ, tmp_path, "rotate", "BRIDGE_TOKEN", "--generate", "--yes")

    assert rotated.returncode == 1
    assert "ENVSYNC_CANONICAL_SOURCE" in rotated.stderr
