"""The ownership ledger kept on the target (ENVSYNC_LEDGER_BACKEND=target): a CLI run in CI
starts with no local state and still knows what envsync owns."""

from __future__ import annotations

from pathlib import Path

import pytest

from envsync.config import OWNERSHIP_KEY
from tests.e2e.conftest import Workspace, reads, render_seed, writes

LEDGER = {"ENVSYNC_LEDGER_BACKEND": "target", "ENVSYNC_LEDGER_KEY": "ci-ledger-key-for-tests"}


def fresh_machine(workspace: Workspace, tmp_path: Path, name: str) -> dict[str, str]:
    """Settings as a new CI job would have them: a database no earlier run has seen."""
    folder = tmp_path / name
    folder.mkdir()
    return {**LEDGER, "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'state.db'}"}


def test_netlify_secret_plans_clean_on_new_machine(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_env("API_TOKEN=tok-1\nPLAIN=x\n")
    secrets = {"NETLIFY_SECRET_KEYS": "*_TOKEN", "NETLIFY_CONTEXT": "all"}
    first = workspace.cli(
        "apply",
        "--yes",
        "--target",
        "netlify",
        extra={**fresh_machine(workspace, tmp_path, "a"), **secrets},
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert OWNERSHIP_KEY in workspace.netlify_vars()

    second = workspace.cli(
        "plan",
        "--detailed-exitcode",
        "--target",
        "netlify",
        extra={**fresh_machine(workspace, tmp_path, "b"), **secrets},
    )

    assert second.returncode == 0, second.stdout + second.stderr


def test_owned_key_deleted_from_new_machine(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_env("KEEP=1\nDROP_ME=2\n")
    workspace.cli("apply", "--yes", extra=fresh_machine(workspace, tmp_path, "a"))

    workspace.write_env("KEEP=1\n")
    deletion = {"ENVSYNC_ALLOW_DELETIONS": "true"}
    completed = workspace.cli(
        "apply", "--yes", extra={**fresh_machine(workspace, tmp_path, "b"), **deletion}
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "DROP_ME" not in workspace.render_vars()
    assert "DROP_ME" not in workspace.netlify_vars()
    assert "KEEP" in workspace.netlify_vars()


def test_ownership_variable_is_never_planned(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write_env("A=1\n")
    workspace.cli("apply", "--yes", extra=fresh_machine(workspace, tmp_path, "a"))

    completed = workspace.cli(
        "plan",
        "--json",
        extra={**fresh_machine(workspace, tmp_path, "b"), "ENVSYNC_ALLOW_DELETIONS": "true"},
    )

    assert OWNERSHIP_KEY not in completed.stdout


def test_bulk_apply_writes_ledger_in_same_put(workspace: Workspace, tmp_path: Path) -> None:
    workspace.emulators.seed({"render": render_seed({"OTHER": "x"})})
    workspace.write_env("A=1\nB=2\n")

    workspace.cli(
        "apply", "--yes", "--target", "render", extra=fresh_machine(workspace, tmp_path, "a")
    )

    render_writes = writes(workspace.requests("render"))
    assert len(render_writes) == 1
    assert OWNERSHIP_KEY in render_writes[0]["keys"]
    assert workspace.render_vars()["OTHER"] == "x"


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
def test_no_drift_run_makes_no_write(workspace: Workspace, tmp_path: Path, write_mode: str) -> None:
    workspace.write_env("A=1\nB=2\n")
    mode = {"RENDER_WRITE_MODE": write_mode}
    workspace.cli("apply", "--yes", extra={**fresh_machine(workspace, tmp_path, "a"), **mode})
    before = {api: len(workspace.requests(api)) for api in ("render", "netlify")}

    completed = workspace.cli(
        "apply", "--yes", extra={**fresh_machine(workspace, tmp_path, "b"), **mode}
    )

    assert completed.returncode == 0
    new_requests = [request for api in before for request in workspace.requests(api)[before[api] :]]
    assert writes(new_requests) == []
    assert reads(new_requests)


def test_target_backend_requires_ledger_key(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", extra={"ENVSYNC_LEDGER_BACKEND": "target"})

    assert completed.returncode == 1
    assert "ENVSYNC_LEDGER_KEY" in completed.stderr
