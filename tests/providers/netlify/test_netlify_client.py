"""Request and response shapes of the Netlify provider, on a scripted MockTransport API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from envsync.config import TargetSpec
from envsync.errors import IncompleteReadError, ProviderError, ResolutionError
from envsync.model import RemoteValue, SecretValue, TargetRef
from envsync.providers.netlify.client import ContextValue, EnvScope

from .mock_api import ACCOUNT_ID, SITE_ID, MockNetlify, run, value, variable

ENV_PATH = f"/accounts/{ACCOUNT_ID}/env"
TARGET = TargetRef("netlify", "site", SITE_ID, "netlify/web", account_id=ACCOUNT_ID)
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]


def read_variables(api: MockNetlify, *variables: dict[str, Any]) -> dict[str, Any]:
    api.reply("GET", ENV_PATH, httpx.Response(200, json=list(variables)))
    provider = api.provider()
    state = run(provider.read(TARGET))
    return dict(state.variables)


def site(site_id: str, name: str, account: str = ACCOUNT_ID, slug: str = "team") -> dict[str, Any]:
    return {"id": site_id, "name": name, "account_id": account, "account_slug": slug}


def test_read_maps_branch_values_to_branch_contexts() -> None:
    api = MockNetlify()
    remote = read_variables(
        api,
        variable(
            "BRIDGE_MODE",
            value("production", "p", "v1"),
            value("branch", "s", "v2", branch="staging"),
            scopes=ALL_SCOPES,
        ),
    )

    mode = remote["BRIDGE_MODE"]
    assert mode.contexts == ("production", "branch:staging")
    assert mode.value_for("branch:staging") == RemoteValue("branch:staging", SecretValue("s"), "v2")
    assert mode.scopes == tuple(ALL_SCOPES)
    assert mode.updated_at == "2026-01-01T00:00:00Z"


def test_read_sends_site_id() -> None:
    api = MockNetlify()
    read_variables(api)

    (sent,) = api.calls()
    assert sent.path == ENV_PATH
    assert sent.query == {"site_id": SITE_ID}


def test_read_drops_empty_values_but_keeps_the_key() -> None:
    api = MockNetlify()
    remote = read_variables(
        api, variable("BRIDGE_EMPTY", value("production", "", "v1"), value("dev", "d", "v2"))
    )

    assert remote["BRIDGE_EMPTY"].contexts == ("dev",)


def test_read_keeps_key_with_only_empty_values() -> None:
    api = MockNetlify()
    remote = read_variables(api, variable("BRIDGE_UNSET", value("production", "", "v1")))

    assert remote["BRIDGE_UNSET"].values == ()


def test_read_without_scopes_gives_none() -> None:
    api = MockNetlify()
    remote = read_variables(api, variable("BRIDGE_FREE", value("all", "x", "v1")))

    assert remote["BRIDGE_FREE"].scopes is None


def test_read_spells_post_processing_with_underscore() -> None:
    api = MockNetlify()
    remote = read_variables(
        api, variable("BRIDGE_X", value("all", "x", "v1"), scopes=["builds", "post-processing"])
    )

    assert remote["BRIDGE_X"].scopes == ("builds", "post_processing")


@pytest.mark.parametrize("hidden", [None, ""], ids=["absent", "empty"])
def test_read_hides_secret_values_outside_dev(hidden: str | None) -> None:
    api = MockNetlify()
    remote = read_variables(
        api,
        variable(
            "BRIDGE_TOKEN",
            value("production", hidden, "v1"),
            value("dev", "local", "v2"),
            is_secret=True,
        ),
    )

    token = remote["BRIDGE_TOKEN"]
    assert token.is_secret
    assert token.value_for("production") == RemoteValue("production", None, "v1")
    assert token.value_for("dev") == RemoteValue("dev", SecretValue("local"), "v2")


@pytest.mark.parametrize("dev", [None, ""], ids=["dev-absent", "dev-empty"])
@pytest.mark.parametrize("hidden", [None, ""], ids=["hidden-absent", "hidden-empty"])
def test_read_folds_expanded_secret_into_all(dev: str | None, hidden: str | None) -> None:
    values = [
        value("production", hidden, "v1"),
        value("deploy-preview", hidden, "v2"),
        value("branch-deploy", hidden, "v3"),
    ]
    if dev is not None:
        values.append(value("dev", dev, "v4"))
    api = MockNetlify()
    remote = read_variables(api, variable("BRIDGE_TOKEN", *values, is_secret=True))

    assert remote["BRIDGE_TOKEN"].values == (RemoteValue("all", None, None),)


def test_read_keeps_secret_with_dev_value_apart() -> None:
    api = MockNetlify()
    remote = read_variables(
        api,
        variable(
            "BRIDGE_TOKEN",
            value("production", None, "v1"),
            value("deploy-preview", None, "v2"),
            value("branch-deploy", None, "v3"),
            value("dev", "local", "v4"),
            is_secret=True,
        ),
    )

    assert remote["BRIDGE_TOKEN"].contexts == (
        "production",
        "deploy-preview",
        "branch-deploy",
        "dev",
    )


def test_read_keeps_partial_secret_contexts_apart() -> None:
    api = MockNetlify()
    remote = read_variables(
        api,
        variable(
            "BRIDGE_TOKEN",
            value("production", None, "v1"),
            value("deploy-preview", None, "v2"),
            is_secret=True,
        ),
    )

    assert remote["BRIDGE_TOKEN"].contexts == ("production", "deploy-preview")


BROKEN_BODIES: list[tuple[str, Any]] = [
    ("not-a-list", {"key": "A"}),
    ("variable-not-object", ["A"]),
    ("no-key", [{"values": []}]),
    ("values-not-list", [{"key": "A", "values": "x"}]),
    ("value-without-context", [{"key": "A", "values": [{"id": "v1", "value": "x"}]}]),
    ("branch-without-name", [{"key": "A", "values": [{"context": "branch", "value": "x"}]}]),
    ("value-not-string", [{"key": "A", "values": [{"context": "dev", "value": 5}]}]),
    ("scopes-not-list", [{"key": "A", "values": [], "scopes": "builds"}]),
    ("key-twice", [{"key": "A", "values": []}, {"key": "A", "values": []}]),
]


@pytest.mark.parametrize(("case", "body"), BROKEN_BODIES, ids=[case for case, _ in BROKEN_BODIES])
def test_read_rejects_malformed_env_list(case: str, body: Any) -> None:
    api = MockNetlify()
    api.reply("GET", ENV_PATH, httpx.Response(200, json=body))

    with pytest.raises(IncompleteReadError) as raised:
        run(api.provider().read(TARGET))

    assert raised.value.target == "netlify/web"


def test_read_error_names_no_value() -> None:
    api = MockNetlify()
    body = [{"key": "BRIDGE_A", "values": [{"context": "branch", "value": "hunter2-secret"}]}]
    api.reply("GET", ENV_PATH, httpx.Response(200, json=body))

    with pytest.raises(IncompleteReadError) as raised:
        run(api.provider().read(TARGET))

    assert "hunter2-secret" not in str(raised.value)
    assert "hunter2-secret" not in repr(raised.value)


def test_read_looks_up_account_when_target_has_none() -> None:
    api = MockNetlify()
    api.reply("GET", f"/sites/{SITE_ID}", httpx.Response(200, json=site(SITE_ID, "web")))
    api.reply("GET", ENV_PATH, httpx.Response(200, json=[]))
    bare = TargetRef("netlify", "site", SITE_ID, "netlify/web")

    state = run(api.provider().read(bare))

    assert state.requests == 2
    assert [sent.path for sent in api.calls()] == [f"/sites/{SITE_ID}", ENV_PATH]


def test_env_scope_rejects_an_empty_site_id() -> None:
    with pytest.raises(ValueError, match="site id"):
        EnvScope(account=ACCOUNT_ID, site_id=" ")


def test_env_scope_rejects_an_empty_account() -> None:
    with pytest.raises(ValueError, match="account"):
        EnvScope(account="", site_id=SITE_ID)


@pytest.mark.parametrize("status", [200, 201])
def test_set_value_sends_branch_context_and_accepts_status(status: int) -> None:
    api = MockNetlify()
    answer = variable("BRIDGE_A", value("branch", "new", "v1", branch="staging"), updated_at="T2")
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(status, json=answer))
    provider = api.provider()
    scope = EnvScope(ACCOUNT_ID, SITE_ID, "netlify/web")

    updated_at = run(
        provider.client.set_value(
            scope, "BRIDGE_A", ContextValue("branch:staging", SecretValue("new")), is_secret=False
        )
    )

    (sent,) = api.calls()
    assert sent.query == {"site_id": SITE_ID}
    assert sent.body == {"context": "branch", "context_parameter": "staging", "value": "new"}
    assert updated_at == "T2"


def test_set_value_marks_secret_values() -> None:
    api = MockNetlify()
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(200, json=variable("BRIDGE_A")))
    scope = EnvScope(ACCOUNT_ID, SITE_ID)

    run(
        api.provider().client.set_value(
            scope, "BRIDGE_A", ContextValue("production", SecretValue("s")), is_secret=True
        )
    )

    assert api.calls()[0].body == {"context": "production", "value": "s", "is_secret": True}


def test_rejected_write_error_hides_the_sent_value() -> None:
    api = MockNetlify()
    echo = {"code": 422, "message": "value top-secret-value-42 is invalid"}
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(422, json=echo))
    scope = EnvScope(ACCOUNT_ID, SITE_ID)
    change = ContextValue("production", SecretValue("top-secret-value-42"))

    with pytest.raises(ProviderError) as raised:
        run(api.provider().client.set_value(scope, "BRIDGE_A", change, is_secret=False))

    assert "top-secret-value-42" not in str(raised.value)
    assert "nfp_unit_test_token_0001" not in str(raised.value)


def test_key_with_a_slash_stays_one_path_segment() -> None:
    api = MockNetlify()
    scope = EnvScope(ACCOUNT_ID, SITE_ID)

    with pytest.raises(ProviderError):
        run(api.provider().client.delete_variable(scope, "A/value/x"))

    assert api.calls()[0].raw_path == f"{ENV_PATH}/A%2Fvalue%2Fx"
    assert api.calls()[0].query == {"site_id": SITE_ID}


def spec(selector: str, kind: str, *, account: str | None = None) -> TargetSpec:
    return TargetSpec("netlify", "site", selector, kind, account_id=account)  # type: ignore[arg-type]


def test_resolve_by_id_uses_one_call() -> None:
    api = MockNetlify()
    api.reply("GET", f"/sites/{SITE_ID}", httpx.Response(200, json=site(SITE_ID, "web")))

    (target,) = run(api.provider().resolve(spec(SITE_ID, "id")))

    assert target == TargetRef(
        "netlify",
        "site",
        SITE_ID,
        "netlify/web",
        account_id=ACCOUNT_ID,
        extra={"site_name": "web", "account_slug": "team"},
    )
    assert len(api.calls()) == 1


def test_resolve_by_unknown_id_lists_candidates() -> None:
    api = MockNetlify()
    api.reply(
        "GET", "/sites", httpx.Response(200, json=[site("id-1", "web"), site("id-2", "docs")])
    )

    with pytest.raises(ResolutionError) as raised:
        run(api.provider().resolve(spec("missing", "id")))

    assert raised.value.candidates == ["web (id-1)", "docs (id-2)"]


def test_resolve_auto_picks_the_only_site() -> None:
    api = MockNetlify()
    api.reply("GET", "/sites", httpx.Response(200, json=[site(SITE_ID, "web")]))

    (target,) = run(api.provider().resolve(spec("auto", "auto")))

    assert target.name == "netlify/web"
    assert target.account_id == ACCOUNT_ID
    assert api.calls()[0].query == {"per_page": "100", "page": "1"}


def test_resolve_auto_reads_pages_until_a_short_one() -> None:
    api = MockNetlify()
    full = [site(f"id-{n}", f"site-{n}") for n in range(100)]
    api.reply(
        "GET",
        "/sites",
        httpx.Response(200, json=full),
        httpx.Response(200, json=[site("id-last", "last")]),
    )

    with pytest.raises(ResolutionError) as raised:
        run(api.provider().resolve(spec("auto", "auto")))

    assert len(raised.value.candidates) == 101
    assert [sent.query["page"] for sent in api.calls()] == ["1", "2"]
    assert "NETLIFY_SITE_ID" in str(raised.value)


def test_resolve_auto_scopes_to_team() -> None:
    api = MockNetlify()
    sites = [site("id-1", "web", slug="team"), site("id-2", "other", "0" * 24, slug="elsewhere")]
    api.reply("GET", "/sites", httpx.Response(200, json=sites))

    (target,) = run(api.provider().resolve(spec("auto", "auto", account="team")))

    assert target.id == "id-1"


def test_resolve_auto_with_no_site_fails() -> None:
    api = MockNetlify()
    api.reply("GET", "/sites", httpx.Response(200, json=[]))

    with pytest.raises(ResolutionError) as raised:
        run(api.provider().resolve(spec("auto", "auto")))

    assert raised.value.candidates == []


def test_resolve_by_name_needs_an_exact_match() -> None:
    api = MockNetlify()
    listed = [site("id-1", "web"), site("id-2", "web-staging")]
    api.reply("GET", "/sites", httpx.Response(200, json=listed))

    (target,) = run(api.provider().resolve(spec("web", "name")))

    assert target.id == "id-1"
    assert api.calls()[0].query["name"] == "web"


def test_resolve_by_id_in_another_team_fails() -> None:
    api = MockNetlify()
    api.reply("GET", f"/sites/{SITE_ID}", httpx.Response(200, json=site(SITE_ID, "web")))

    with pytest.raises(ResolutionError, match="NETLIFY_TEAM_ID"):
        run(api.provider().resolve(spec(SITE_ID, "id", account="other-team")))


def test_redeploy_starts_a_build() -> None:
    api = MockNetlify()
    api.reply("POST", f"/sites/{SITE_ID}/builds", httpx.Response(200, json={"id": "b1"}))

    run(api.provider().redeploy(TARGET))

    (sent,) = api.calls()
    assert (sent.method, sent.path) == ("POST", f"/sites/{SITE_ID}/builds")
