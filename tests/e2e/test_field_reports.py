"""Failures people hit with other sync tools, each replayed against the emulators over
loopback through the whole engine: the wrong outcome seen in the field must not happen."""

from __future__ import annotations

import json

import pytest

from envsync import dotenv
from envsync.errors import SecretDeletedError
from envsync.model import Op
from tests.e2e.conftest import (
    SITE_ID,
    Workspace,
    netlify_seed,
    netlify_var,
    reads,
    render_seed,
    result_for,
    writes,
)

# 1 and 2: a bulk PUT replaces the whole set on Render.


def many_vars(count: int) -> dict[str, str]:
    return {f"LEGACY_SETTING_{index:03d}": f"value-{index}" for index in range(count)}


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
def test_bulk_sync_keeps_all_130_variables(workspace: Workspace, write_mode: str) -> None:
    seeded = {**many_vars(129), "BRIDGE_VERSION": "1.0.0"}
    workspace.emulators.seed({"render": render_seed(seeded)})
    workspace.write_env("BRIDGE_VERSION=1.0.1\n")

    report = workspace.run(
        "enforce",
        targets=("render",),
        ENVSYNC_INCLUDE_PREFIXES="BRIDGE_",
        RENDER_WRITE_MODE=write_mode,
    )

    assert report.ok
    after = workspace.render_vars()
    assert after == {**seeded, "BRIDGE_VERSION": "1.0.1"}
    requests = workspace.requests("render")
    assert [r["method"] for r in requests[:2]] == ["GET", "GET"]
    assert len(writes(requests)) == 1


def test_bulk_put_follows_complete_read(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({**many_vars(129), "BRIDGE_VERSION": "1"})})
    workspace.write_env("BRIDGE_VERSION=2\n")

    workspace.run("enforce", targets=("render",), ENVSYNC_INCLUDE_PREFIXES="BRIDGE_")

    requests = workspace.requests("render")
    put = writes(requests)[0]
    assert put["method"] == "PUT"
    assert len(put["keys"]) == 130
    last_read = max(index for index, r in enumerate(requests) if r["method"] == "GET")
    assert requests.index(put) > last_read


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
def test_unmanaged_database_url_untouched(workspace: Workspace, write_mode: str) -> None:
    workspace.emulators.seed(
        {"render": render_seed({"DATABASE_URL": "postgres://db/app", "BRIDGE_VERSION": "1"})}
    )
    workspace.write_env("BRIDGE_VERSION=2\n")

    workspace.run(
        "enforce",
        targets=("render",),
        ENVSYNC_INCLUDE_PREFIXES="BRIDGE_",
        RENDER_WRITE_MODE=write_mode,
    )

    assert workspace.render_vars() == {"DATABASE_URL": "postgres://db/app", "BRIDGE_VERSION": "2"}


# 3: the first sync deletes nothing it did not write.


def test_first_sync_keeps_hand_set_keys(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({"A": "1", "B": "2"})})
    workspace.write_env("C=3\n")

    report = workspace.run("enforce", targets=("render",), ENVSYNC_ALLOW_DELETIONS="true")

    assert workspace.render_vars() == {"A": "1", "B": "2", "C": "3"}
    plan = result_for(report, "render").plan
    assert plan is not None
    assert plan.unmanaged == 2


def test_owned_key_deleted_on_later_run(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({"A": "1"})})
    workspace.write_env("C=3\nD=4\n")
    workspace.run("enforce", targets=("render",))

    workspace.write_env("C=3\n")
    workspace.run("enforce", targets=("render",), ENVSYNC_ALLOW_DELETIONS="true")

    assert workspace.render_vars() == {"A": "1", "C": "3"}


# 4 and 5: one Netlify context never wipes another.


def seed_environment_key(workspace: Workspace) -> None:
    variable = netlify_var(
        "ENVIRONMENT",
        ("production", "prod"),
        ("branch-deploy", "beta"),
        ("branch:staging", "stage"),
    )
    workspace.emulators.seed({"netlify": netlify_seed([variable])})


def test_update_keeps_other_contexts(workspace: Workspace) -> None:
    seed_environment_key(workspace)
    workspace.write_env("ENVIRONMENT=live\n")

    report = workspace.run("enforce", targets=("netlify",))

    assert report.ok
    assert workspace.netlify_values("ENVIRONMENT") == {
        "production": "live",
        "branch-deploy": "beta",
        "branch:staging": "stage",
    }


def test_delete_keeps_other_contexts(workspace: Workspace) -> None:
    seed_environment_key(workspace)
    workspace.write_env("ENVIRONMENT=prod\nOTHER=x\n")
    workspace.run("enforce", targets=("netlify",))

    workspace.write_env("OTHER=x\n")
    workspace.run("enforce", targets=("netlify",), ENVSYNC_ALLOW_DELETIONS="true")

    assert workspace.netlify_values("ENVIRONMENT") == {
        "branch-deploy": "beta",
        "branch:staging": "stage",
    }
    value_deletes = [r for r in writes(workspace.requests("netlify")) if "/value/" in r["path"]]
    assert len(value_deletes) == 1


def test_last_context_deletes_whole_key(workspace: Workspace) -> None:
    workspace.write_env("ONLY_PROD=x\nKEEP=y\n")
    workspace.run("enforce", targets=("netlify",))

    workspace.write_env("KEEP=y\n")
    workspace.run("enforce", targets=("netlify",), ENVSYNC_ALLOW_DELETIONS="true")

    assert "ONLY_PROD" not in workspace.netlify_vars()


def test_branch_value_kept_when_managing_branch(workspace: Workspace) -> None:
    seed_environment_key(workspace)
    workspace.write_env("ENVIRONMENT=new\n")

    workspace.run("enforce", targets=("netlify",), NETLIFY_CONTEXT="branch:preview")

    assert workspace.netlify_values("ENVIRONMENT") == {
        "production": "prod",
        "branch-deploy": "beta",
        "branch:staging": "stage",
        "branch:preview": "new",
    }


# 6: hidden secrets are judged from the ledger, not rewritten every run.


def test_secret_not_rewritten_without_change(workspace: Workspace) -> None:
    workspace.write_env("API_TOKEN=tok-1\n")
    settings = {"NETLIFY_SECRET_KEYS": "*_TOKEN", "NETLIFY_CONTEXT": "all"}
    workspace.run("enforce", targets=("netlify",), **settings)
    assert workspace.netlify_vars()["API_TOKEN"]["is_secret"]

    report = workspace.run("dry-run", targets=("netlify",), **settings)

    assert not report.has_changes
    assert report.ok


def test_secret_change_in_ui_is_reported(workspace: Workspace) -> None:
    workspace.write_env("API_TOKEN=tok-1\n")
    settings = {"NETLIFY_SECRET_KEYS": "*_TOKEN", "NETLIFY_CONTEXT": "all"}
    workspace.run("enforce", targets=("netlify",), **settings)
    change_in_ui(workspace, "API_TOKEN", "deploy-preview", "edited-by-hand")

    report = workspace.run("dry-run", targets=("netlify",), **settings)

    plan = result_for(report, "netlify").plan
    assert plan is not None
    assert not plan.has_changes
    assert any("--rewrite-secrets" in warning.message for warning in plan.warnings)


def test_secret_rewritten_on_request(workspace: Workspace) -> None:
    workspace.write_env("API_TOKEN=tok-1\n")
    settings = {"NETLIFY_SECRET_KEYS": "*_TOKEN", "NETLIFY_CONTEXT": "all"}
    workspace.run("enforce", targets=("netlify",), **settings)
    change_in_ui(workspace, "API_TOKEN", "deploy-preview", "edited-by-hand")

    workspace.run("enforce", targets=("netlify",), rewrite_secrets=True, **settings)

    values = workspace.netlify_values("API_TOKEN")
    assert values["deploy-preview"] == "tok-1"
    assert values["production"] == "tok-1"


def change_in_ui(workspace: Workspace, key: str, context: str, value: str) -> None:
    """Change a value the way a person in Netlify's dashboard would: through the API."""
    import httpx

    response = httpx.patch(
        f"{workspace.emulators.netlify_url}/accounts/e2e-team/env/{key}",
        params={"site_id": SITE_ID},
        json={"context": context, "value": value},
        headers={"Authorization": "Bearer nfp_e2e_token"},
    )
    response.raise_for_status()


# 7: reserved Netlify keys are rejected by name and kept out of the batch.


@pytest.mark.parametrize("reserved", ["SITE_NAME", "URL"])
def test_reserved_key_rejected_rest_synced(workspace: Workspace, reserved: str) -> None:
    workspace.write_env(f"{reserved}=x\nGOOD_ONE=1\nGOOD_TWO=2\n")

    report = workspace.run("enforce", targets=("netlify",))

    result = result_for(report, "netlify")
    assert not report.ok
    assert result.plan is not None
    assert [rejection.key for rejection in result.plan.rejected] == [reserved]
    assert set(workspace.netlify_vars()) == {"GOOD_ONE", "GOOD_TWO"}
    posted = [r for r in writes(workspace.requests("netlify")) if r["method"] == "POST"]
    assert reserved not in posted[0]["keys"]


def test_reserved_key_exits_one(workspace: Workspace) -> None:
    workspace.write_env("SITE_NAME=x\nGOOD=1\n")

    completed = workspace.cli("apply", "--yes", "--target", "netlify")

    assert completed.returncode == 1
    assert "SITE_NAME" in completed.stdout
    assert "reserved by Netlify" in completed.stdout


# 10: a canonical file piped on standard input keeps no trailing newline.


def test_stdin_file_has_no_trailing_newline(workspace: Workspace) -> None:
    completed = workspace.cli(
        "apply", "--yes", "--target", "render", "--file", "-", stdin="BRIDGE_KEY=k\n"
    )

    assert completed.returncode == 0, completed.stderr
    assert workspace.render_vars() == {"BRIDGE_KEY": "k"}


# 11: an empty Render value is skipped with a warning, and a second plan is clean.


def test_empty_render_value_skipped(workspace: Workspace) -> None:
    workspace.write_env("FILLED=1\nEMPTY=\n")

    first = workspace.run("enforce", targets=("render",))
    second = workspace.run("dry-run", targets=("render",))

    plan = result_for(first, "render").plan
    assert plan is not None
    assert first.ok
    assert any(warning.key == "EMPTY" for warning in plan.warnings)
    assert workspace.render_vars() == {"FILLED": "1"}
    assert not second.has_changes


# 12: every Netlify env-var call carries site_id.


def test_every_netlify_env_call_has_site_id(workspace: Workspace) -> None:
    seed_environment_key(workspace)
    workspace.write_env("ENVIRONMENT=x\nNEW_KEY=1\n")
    workspace.run("enforce", targets=("netlify",))
    workspace.write_env("NEW_KEY=2\n")
    workspace.run("enforce", targets=("netlify",), ENVSYNC_ALLOW_DELETIONS="true")

    env_calls = [r for r in workspace.requests("netlify") if "/env" in r["path"]]
    assert len(env_calls) >= 6
    for call in env_calls:
        assert f"site_id={SITE_ID}" in call["query"], call


# 13: a failed read is an error, never an empty remote set.


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ({"status": 401, "body": {"message": "Unauthorized"}}, "auth"),
        ({"status": 500, "body": {"message": "boom"}}, "read_failed"),
        ({"latency_ms": 3000}, "read_failed"),
        ({"truncate": True}, "read_failed"),
        ({"drop": True}, "read_failed"),
    ],
    ids=["401", "500", "timeout", "truncated", "dropped"],
)
def test_failed_read_writes_nothing(
    workspace: Workspace, fault: dict[str, object], cause: str
) -> None:
    workspace.emulators.seed({"render": render_seed({"KEEP": "1"})})
    workspace.emulators.add_fault(
        "render", {"match": {"method": "GET", "path": "env-vars"}, "times": 100, "fault": fault}
    )
    workspace.write_env("KEEP=1\nNEW=2\n")

    report = workspace.run(
        "enforce", targets=("render",), ENVSYNC_HTTP_TIMEOUT_S="0.5", ENVSYNC_MAX_RETRIES="1"
    )

    result = result_for(report, "render")
    assert not result.ok
    assert result.error_causes == (cause,)
    assert writes(workspace.requests("render")) == []
    assert workspace.render_vars() == {"KEEP": "1"}


# 15: a value with a newline and a double quote survives a round trip through a .env file.


def test_value_with_newline_and_quote_round_trips(workspace: Workspace) -> None:
    tricky = 'line one\nsaid "hi" and $HOME and ${NOT_SET} \\ end'
    path = workspace.folder / "exported.env"
    dotenv.write_file(path, {"TRICKY": tricky})
    workspace.environ["ENVSYNC_CANONICAL_FILE"] = str(path)

    workspace.run("enforce", targets=("render",))

    assert workspace.render_vars()["TRICKY"] == tricky


# 16: a token file with a newline, CRLF or byte-order mark still works.


@pytest.mark.parametrize(
    "content",
    [b"rnd_e2e_token\n", b"rnd_e2e_token\r\n", b"\xef\xbb\xbfrnd_e2e_token\n", b"  rnd_e2e_token "],
    ids=["newline", "crlf", "bom", "spaces"],
)
def test_trimmed_token_file_works(workspace: Workspace, content: bytes) -> None:
    secrets = workspace.folder / "secrets"
    secrets.mkdir()
    (secrets / "render.token").write_bytes(content)
    del workspace.environ["RENDER_API_TOKEN"]
    workspace.write_env("A=1\n")

    completed = workspace.cli(
        "discover", extra={"ENVSYNC_DISCOVERY_ORDER": "secret_files", "ENVSYNC_TARGETS": "render"}
    )
    report = workspace.run("enforce", targets=("render",), ENVSYNC_DISCOVERY_ORDER="secret_files")

    assert report.ok
    assert workspace.render_vars() == {"A": "1"}
    assert "render.token" in completed.stdout
    assert "rnd_e2e_token" not in completed.stdout + completed.stderr


def test_unreadable_token_file_is_named(workspace: Workspace) -> None:
    secrets = workspace.folder / "secrets"
    (secrets / "render.token").mkdir(parents=True)
    del workspace.environ["RENDER_API_TOKEN"]

    completed = workspace.cli(
        "discover", extra={"ENVSYNC_DISCOVERY_ORDER": "secret_files", "ENVSYNC_TARGETS": "render"}
    )

    assert completed.returncode == 1
    assert "render.token" in completed.stdout


# 17 and 18: Vault KV v2.


def use_vault(workspace: Workspace, data: dict[str, object]) -> None:
    workspace.emulators.seed(
        {"vault": {"tokens": ["hvs.e2e"], "mounts": {"secret": {"envsync": data}}}}
    )
    workspace.environ.update(
        {
            "ENVSYNC_CANONICAL_SOURCE": "vault",
            "VAULT_ADDR": workspace.emulators.vault_url,
            "VAULT_TOKEN": "hvs.e2e",
        }
    )


def test_vault_values_become_json_text(workspace: Workspace) -> None:
    use_vault(workspace, {"port": 5432, "debug": True, "sa": {"type": "x"}, "name": "plain"})

    report = workspace.run("enforce", targets=("render",))

    assert report.ok
    assert workspace.render_vars() == {
        "port": "5432",
        "debug": "true",
        "sa": json.dumps({"type": "x"}),
        "name": "plain",
    }


def test_deleted_vault_version_stops_run(workspace: Workspace) -> None:
    import httpx

    use_vault(workspace, {"A": "1"})
    workspace.emulators.seed({"render": render_seed({"A": "1"})})
    response = httpx.delete(
        f"{workspace.emulators.vault_url}/v1/secret/data/envsync",
        headers={"X-Vault-Token": "hvs.e2e"},
    )
    assert response.status_code == 204

    with pytest.raises(SecretDeletedError, match="version 1"):
        workspace.run("enforce", targets=("render",), ENVSYNC_ALLOW_DELETIONS="true")

    assert workspace.requests("render") == []
    assert workspace.render_vars() == {"A": "1"}


# 22: no token in any URL or error text.


def test_provider_401_error_holds_no_token(workspace: Workspace) -> None:
    workspace.environ["RENDER_API_TOKEN"] = "rnd_canary_token_1234567890"
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--target", "render")

    assert completed.returncode == 1
    assert "401" in completed.stdout + completed.stderr
    assert "rnd_canary_token_1234567890" not in completed.stdout + completed.stderr
    for request in workspace.requests("render"):
        assert "canary" not in request["path"] + request["query"]


def test_dashboard_timeout_error_holds_no_query(workspace: Workspace) -> None:
    del workspace.environ["RENDER_API_TOKEN"]
    workspace.write_env("A=1\n")
    # A loopback port nothing listens on: the connection is refused at once.
    url = "http://127.0.0.1:9/api/tokens/envsync"

    completed = workspace.cli(
        "plan",
        "--target",
        "render",
        extra={"ENVSYNC_DISCOVERY_ORDER": "env,dashboard", "ENVSYNC_DASHBOARD_TOKEN_URLS": url},
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 1
    assert "Render API token not found via discovery chain" in output
    assert "key=" not in output
    assert "RENDER_API_TOKEN" in output


def test_reads_are_all_gets_for_plan(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")
    workspace.run("dry-run")
    assert writes(workspace.requests("render")) == []
    assert writes(workspace.requests("netlify")) == []
    assert reads(workspace.requests("render"))
    assert Op.NOOP.value == "noop"
