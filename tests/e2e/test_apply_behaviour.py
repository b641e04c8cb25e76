"""Apply behaviours beyond the plan: redeploys, re-reading after an unknown write outcome,
and the run history of an apply."""

from __future__ import annotations

from envsync.store import open_store
from tests.e2e.conftest import SERVICE_ID, SITE_ID, Workspace, render_seed, result_for, writes


def test_redeploy_after_change(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    report = workspace.run("enforce", ENVSYNC_REDEPLOY="true")

    assert report.ok
    render_posts = [
        r["path"] for r in writes(workspace.requests("render")) if r["method"] == "POST"
    ]
    netlify_posts = [
        r["path"] for r in writes(workspace.requests("netlify")) if r["path"].endswith("/builds")
    ]
    assert render_posts == [f"/v1/services/{SERVICE_ID}/deploys"]
    assert netlify_posts == [f"/api/v1/sites/{SITE_ID}/builds"]
    assert all(result.redeployed for result in report.results)


def test_no_redeploy_without_change(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")
    workspace.run("enforce")
    before = len(workspace.requests("render"))

    report = workspace.run("enforce", ENVSYNC_REDEPLOY="true")

    assert not any(result.redeployed for result in report.results)
    later = workspace.requests("render")[before:]
    assert writes(later) == []


def test_change_without_redeploy_says_next_deploy(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    report = workspace.run("enforce", targets=("render",))

    assert any("next deploy" in warning for warning in report.results[0].warnings)


def test_dropped_write_is_reread_then_finished(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({"UNMANAGED": "u"})})
    workspace.write_env("A=1\nB=2\nC=3\n")
    workspace.emulators.add_fault(
        "render",
        {"match": {"method": "PUT", "path": "/env-vars/B$"}, "times": 1, "fault": {"drop": True}},
    )

    report = workspace.run("enforce", targets=("render",), RENDER_WRITE_MODE="per-key")

    assert report.ok
    assert workspace.render_vars() == {"UNMANAGED": "u", "A": "1", "B": "2", "C": "3"}
    methods = [r["method"] for r in workspace.requests("render")]
    # read, write A, write B (dropped), read again, then the rest.
    assert methods.count("GET") == 2


def test_run_history_lists_written_keys(workspace: Workspace) -> None:
    workspace.write_env("A=1\nB=2\n")

    report = workspace.run("enforce", targets=("render",))

    store = open_store(workspace.environ["ENVSYNC_DATABASE_URL"])
    run = store.get_run(report.run_id)
    assert run is not None
    assert run.status == "succeeded"
    target = run.targets[0]
    assert sorted(change.key for change in target.written) == ["A", "B"]
    assert result_for(report, "render").applied
