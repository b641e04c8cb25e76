"""netlify-cli's env commands against the Netlify emulator.

Each test runs the real `netlify` command, checks that it exits 0 and prints the expected
values, and then checks that the emulator stores what Netlify would store after the calls
the CLI made. netlify-cli 27 turns some failed writes into an exit code of 0 (it reads
`error.json.msg`, a field Netlify's `{"code", "message"}` errors do not have), so the
state checks, not the exit codes, are what prove a command worked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.netlify_cli.conftest import (
    ALL_SCOPES,
    OTHER_SITE_ID,
    SECRET_SCOPES,
    SITE_ID,
    NetlifyCli,
    netlify_seed,
    plain_var,
    secret_var,
)

pytestmark = pytest.mark.isolated


def values_of(var: dict[str, Any]) -> dict[str, str | None]:
    """Map each value's context (`branch:NAME` for a branch) to its value."""
    shown: dict[str, str | None] = {}
    for value in var["values"]:
        context = value["context"]
        if context == "branch":
            context = f"branch:{value['context_parameter']}"
        shown[context] = value.get("value")
    return shown


# env:set


def test_set_writes_every_context(netlify_cli: NetlifyCli) -> None:
    output = netlify_cli.succeed("env:set", "PLAIN", "hello")

    var = netlify_cli.site_vars()["PLAIN"]
    assert "Set environment variable PLAIN=hello in the all context" in output
    assert values_of(var) == {"all": "hello"}
    assert var["scopes"] == ALL_SCOPES
    assert var["is_secret"] is False


def test_set_with_context_creates_then_patches(netlify_cli: NetlifyCli) -> None:
    first = netlify_cli.succeed(
        "env:set", "API_URL", "https://prod.test", "--context", "production"
    )
    second = netlify_cli.succeed(
        "env:set", "API_URL", "https://preview.test", "--context", "deploy-preview", "--force"
    )

    assert "API_URL=https://prod.test in the production" in first
    assert "API_URL=https://preview.test in the deploy-preview" in second
    assert values_of(netlify_cli.site_vars()["API_URL"]) == {
        "production": "https://prod.test",
        "deploy-preview": "https://preview.test",
    }
    path = "/api/v1/accounts/cli-team/env"
    assert netlify_cli.writes() == [f"POST {path}", f"PATCH {path}/API_URL"]


def test_set_branch_context(netlify_cli: NetlifyCli) -> None:
    netlify_cli.succeed("env:set", "FLAG", "on", "--context", "branch:staging")

    assert values_of(netlify_cli.site_vars()["FLAG"]) == {"branch:staging": "on"}


def test_set_without_context_replaces_var(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(netlify_seed([plain_var("MODE", ("production", "p"), ("dev", "d"))]))

    output = netlify_cli.succeed("env:set", "MODE", "same", "--force", "--json")

    assert json.loads(output)["MODE"] == "same"
    assert values_of(netlify_cli.site_vars()["MODE"]) == {"all": "same"}
    assert netlify_cli.writes() == ["PUT /api/v1/accounts/cli-team/env/MODE"]


def test_set_secret_hides_its_values(netlify_cli: NetlifyCli) -> None:
    output = netlify_cli.succeed(
        "env:set", "TOKEN", "s3cret", "--secret", "--context", "production", "deploy-preview"
    )
    read_back = netlify_cli.succeed("env:get", "TOKEN", "--context", "production")
    listed = json.loads(netlify_cli.succeed("env:list", "--json", "--context", "production"))

    var = netlify_cli.site_vars()["TOKEN"]
    assert "Set environment variable TOKEN as a secret" in output
    assert "s3cret" not in output
    assert var["is_secret"] is True
    assert var["scopes"] == SECRET_SCOPES
    assert values_of(var) == {"production": "s3cret", "deploy-preview": "s3cret"}
    # Netlify returns no value for a secret outside `dev`, so the CLI finds none.
    assert (
        read_back.strip() == "No value set in the production context for environment variable TOKEN"
    )
    assert "TOKEN" not in listed


def test_set_secret_converts_a_plain_var(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(netlify_seed([plain_var("KEY", ("all", "v"))]))

    netlify_cli.succeed("env:set", "KEY", "--secret", "--force")

    var = netlify_cli.site_vars()["KEY"]
    assert var["is_secret"] is True
    assert var["scopes"] == SECRET_SCOPES
    # The CLI spells `all` out into each context, with `dev` empty, as secrets require.
    assert values_of(var) == {
        "production": "v",
        "deploy-preview": "v",
        "branch-deploy": "v",
        "dev": "",
        "dev-server": "v",
    }
    assert netlify_cli.succeed("env:get", "KEY").strip() == (
        "No value set in the dev context for environment variable KEY"
    )


# env:get and env:list


def seeded_for_reading(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(
        netlify_seed(
            [
                plain_var("EVERYWHERE", ("all", "e")),
                plain_var("OVERRIDDEN", ("all", "site-value")),
                plain_var("SPLIT", ("production", "p"), ("dev", "d")),
                plain_var("ON_BRANCH", ("branch:staging", "b")),
                secret_var("HIDDEN", ("production", "hp"), ("dev", "hd")),
            ],
            team_env=[
                plain_var("SHARED", ("all", "team-value")),
                plain_var("OVERRIDDEN", ("all", "team-value")),
            ],
        )
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["EVERYWHERE"], "e"),
        (["SPLIT"], "d"),
        (["SPLIT", "--context", "production"], "p"),
        (["SHARED"], "team-value"),
        (["OVERRIDDEN"], "site-value"),
        (["HIDDEN"], "hd"),
        (["ON_BRANCH", "--context", "branch:staging"], "b"),
    ],
)
def test_get_prints_the_resolved_value(
    netlify_cli: NetlifyCli, arguments: list[str], expected: str
) -> None:
    seeded_for_reading(netlify_cli)

    assert netlify_cli.succeed("env:get", *arguments).strip() == expected


def test_list_json_shows_dev_values(netlify_cli: NetlifyCli) -> None:
    seeded_for_reading(netlify_cli)

    listed = json.loads(netlify_cli.succeed("env:list", "--json"))

    assert listed == {
        "EVERYWHERE": "e",
        "OVERRIDDEN": "site-value",
        "SPLIT": "d",
        "HIDDEN": "hd",
        "SHARED": "team-value",
    }


def test_list_json_for_production(netlify_cli: NetlifyCli) -> None:
    seeded_for_reading(netlify_cli)

    listed = json.loads(netlify_cli.succeed("env:list", "--json", "--context", "production"))

    assert listed == {
        "EVERYWHERE": "e",
        "OVERRIDDEN": "site-value",
        "SPLIT": "p",
        "SHARED": "team-value",
    }


# env:unset


def test_unset_deletes_the_var(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(
        netlify_seed([plain_var("GONE", ("all", "g")), plain_var("KEPT", ("all", "k"))])
    )

    output = netlify_cli.succeed("env:unset", "GONE", "--force")

    assert "Unset environment variable GONE in the all context" in output
    assert sorted(netlify_cli.site_vars()) == ["KEPT"]
    assert netlify_cli.writes() == ["DELETE /api/v1/accounts/cli-team/env/GONE"]


def test_unset_one_context_splits_all(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(netlify_seed([plain_var("EVERY", ("all", "e"))]))

    netlify_cli.succeed("env:unset", "EVERY", "--context", "production", "--force")

    # The CLI deletes the `all` value and sets every other context one by one.
    assert values_of(netlify_cli.site_vars()["EVERY"]) == {
        "deploy-preview": "e",
        "branch-deploy": "e",
        "dev": "e",
        "dev-server": "e",
    }


def test_unset_one_of_two_contexts(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(netlify_seed([plain_var("SPLIT", ("production", "p"), ("dev", "d"))]))

    netlify_cli.succeed("env:unset", "SPLIT", "--context", "dev", "--force")

    assert values_of(netlify_cli.site_vars()["SPLIT"]) == {"production": "p"}


# env:import


def write_dotenv(netlify_cli: NetlifyCli) -> str:
    (netlify_cli.folder / "import.env").write_text(
        "FOO=from-file\nA=1\nB='two words'\n", encoding="utf-8"
    )
    return "import.env"


def test_import_merges_with_existing(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(
        netlify_seed([plain_var("KEEP", ("production", "k")), plain_var("FOO", ("all", "old"))])
    )
    kept_before = netlify_cli.site_vars()["KEEP"]

    printed = json.loads(netlify_cli.succeed("env:import", write_dotenv(netlify_cli), "--json"))

    stored = netlify_cli.site_vars()
    assert printed == {"FOO": "from-file", "A": "1", "B": "two words"}
    assert sorted(stored) == ["A", "B", "FOO", "KEEP"]
    assert stored["KEEP"] == kept_before
    assert {key: values_of(stored[key]) for key in ("A", "B", "FOO")} == {
        "A": {"all": "1"},
        "B": {"all": "two words"},
        "FOO": {"all": "from-file"},
    }


def test_import_replace_existing(netlify_cli: NetlifyCli) -> None:
    netlify_cli.seed(
        netlify_seed([plain_var("KEEP", ("production", "k")), plain_var("FOO", ("all", "old"))])
    )

    netlify_cli.succeed("env:import", write_dotenv(netlify_cli), "--replace-existing")

    stored = netlify_cli.site_vars()
    assert sorted(stored) == ["A", "B", "FOO"]
    assert values_of(stored["FOO"]) == {"all": "from-file"}


# env:clone


def test_clone_copies_vars_to_another_site(netlify_cli: NetlifyCli) -> None:
    source = [
        plain_var("SAME", ("all", "from-web")),
        plain_var("SPLIT", ("production", "p"), ("branch:staging", "s")),
        plain_var("BUILD_ONLY", ("all", "b"), scopes=["builds"]),
    ]
    netlify_cli.seed(
        netlify_seed(
            source,
            other_site_env=[
                plain_var("SAME", ("all", "from-docs")),
                plain_var("OWN", ("all", "o")),
            ],
        )
    )
    source_before = netlify_cli.site_vars(SITE_ID)

    output = netlify_cli.succeed("env:clone", "--from", SITE_ID, "--to", OTHER_SITE_ID, "--force")

    target = netlify_cli.site_vars(OTHER_SITE_ID)
    assert "Successfully cloned environment variables from web to docs" in output
    assert sorted(target) == ["BUILD_ONLY", "OWN", "SAME", "SPLIT"]
    for key in ("SAME", "SPLIT", "BUILD_ONLY"):
        assert values_of(target[key]) == values_of(source_before[key])
        assert target[key]["scopes"] == source_before[key]["scopes"]
    assert values_of(target["OWN"]) == {"all": "o"}
    assert netlify_cli.site_vars(SITE_ID) == source_before
