"""Request counts from the emulators' logs: envsync makes the fewest calls the APIs allow
for targets given by id."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    Workspace,
    netlify_seed,
    netlify_var,
    reads,
    render_seed,
    writes,
)


def render_service_of_130(workspace: Workspace) -> str:
    """Seed 130 managed variables and return the matching canonical file's text."""
    seeded = {f"BRIDGE_KEY_{index:03d}": f"value-{index}" for index in range(130)}
    workspace.emulators.seed({"render": render_seed(seeded)})
    return "".join(f"{key}={value}\n" for key, value in seeded.items())


def test_no_drift_render_plan_reads_twice(workspace: Workspace) -> None:
    workspace.write_env(render_service_of_130(workspace))

    report = workspace.run("dry-run", targets=("render",))

    assert not report.has_changes
    requests = workspace.requests("render")
    assert len(requests) == 2
    assert len(reads(requests)) == 2


@pytest.mark.parametrize(
    ("write_mode", "changed"), [("bulk", 1), ("bulk", 7), ("per-key", 1), ("per-key", 7)]
)
def test_render_apply_writes(workspace: Workspace, write_mode: str, changed: int) -> None:
    text = render_service_of_130(workspace)
    for index in range(changed):
        text = text.replace(
            f"BRIDGE_KEY_{index:03d}=value-{index}\n", f"BRIDGE_KEY_{index:03d}=changed-{index}\n"
        )
    workspace.write_env(text)

    report = workspace.run("enforce", targets=("render",), RENDER_WRITE_MODE=write_mode)

    assert report.ok
    requests = workspace.requests("render")
    expected_writes = 1 if write_mode == "bulk" else changed
    assert len(reads(requests)) == 2
    assert len(writes(requests)) == expected_writes


def test_render_apply_without_drift_writes_nothing(workspace: Workspace) -> None:
    workspace.write_env(render_service_of_130(workspace))

    workspace.run("enforce", targets=("render",))

    assert writes(workspace.requests("render")) == []


def netlify_three_contexts(workspace: Workspace) -> None:
    variables = [
        netlify_var(
            f"SITE_KEY_{index}",
            ("production", f"prod-{index}"),
            ("deploy-preview", f"preview-{index}"),
            ("branch:staging", f"stage-{index}"),
        )
        for index in range(10)
    ]
    workspace.emulators.seed({"netlify": netlify_seed(variables)})


def test_netlify_plan_makes_two_calls(workspace: Workspace) -> None:
    netlify_three_contexts(workspace)
    workspace.write_env("".join(f"SITE_KEY_{i}=prod-{i}\n" for i in range(10)))

    report = workspace.run("dry-run", targets=("netlify",))

    assert not report.has_changes
    assert len(workspace.requests("netlify")) == 2


def test_netlify_apply_creates_in_one_batch(workspace: Workspace) -> None:
    netlify_three_contexts(workspace)
    changed = 3
    created = 4
    lines = [f"SITE_KEY_{i}={'new' if i < changed else 'prod'}-{i}\n" for i in range(10)]
    lines += [f"NEW_KEY_{i}=n{i}\n" for i in range(created)]
    workspace.write_env("".join(lines))

    report = workspace.run("enforce", targets=("netlify",))

    assert report.ok
    requests = workspace.requests("netlify")
    assert len(requests) <= 2 + 1 + changed
    methods = sorted(request["method"] for request in writes(requests))
    assert methods == ["PATCH"] * changed + ["POST"]
