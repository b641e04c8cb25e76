"""Behaviour of the Netlify API emulator over real loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from envsync.emulators import EmulatorSet
from tests.conftest import shared_path

ACCOUNT_ID = "65e0c0ffee00000000000001"
SLUG = "team"
SITE_ID = "5f1c0de0-0000-4000-8000-000000000001"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]
SITE_ENV = f"/accounts/{SLUG}/env"


@pytest.fixture
def netlify(emulators: EmulatorSet) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulators.netlify_token}", "Accept": "application/json"}
    with httpx.Client(base_url=emulators.netlify_url, headers=headers) as client:
        yield client


def plain(key: str, *values: tuple[str, str], **fields: Any) -> dict[str, Any]:
    """A create-request item with (context, value) pairs."""
    return {"key": key, "values": [{"context": c, "value": v} for c, v in values], **fields}


def create(netlify: httpx.Client, *items: dict[str, Any], site: bool = True) -> httpx.Response:
    params = {"site_id": SITE_ID} if site else {}
    return netlify.post(SITE_ENV, params=params, json=list(items))


def site_keys(netlify: httpx.Client) -> list[str]:
    return [var["key"] for var in netlify.get(SITE_ENV, params={"site_id": SITE_ID}).json()]


def values_by_context(var: dict[str, Any]) -> dict[str, Any]:
    return {value["context"]: value.get("value") for value in var["values"]}


# Create.


def test_create_answers_201_with_the_vars(netlify: httpx.Client) -> None:
    response = create(netlify, plain("API_URL", ("all", "https://example.test")))

    assert response.status_code == 201
    [var] = response.json()
    assert var["key"] == "API_URL"
    assert var["scopes"] == ALL_SCOPES
    assert values_by_context(var) == {"all": "https://example.test"}
    assert var["values"][0]["id"]
    assert var["updated_by"]["email"]


def test_create_conflict_rejects_whole_batch(netlify: httpx.Client) -> None:
    create(netlify, plain("TAKEN", ("all", "1")))

    response = create(netlify, plain("FRESH", ("all", "2")), plain("TAKEN", ("all", "3")))

    assert response.status_code == 409
    assert response.json()["code"] == 409
    assert site_keys(netlify) == ["TAKEN"]


@pytest.mark.parametrize("key", ["SITE_NAME", "site_id", "Url", "aws_region", "NETLIFY"])
def test_reserved_key_rejects_the_whole_batch(netlify: httpx.Client, key: str) -> None:
    response = create(netlify, plain("GOOD", ("all", "1")), plain(key, ("all", "2")))

    assert response.status_code == 422
    assert site_keys(netlify) == []


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A.B", "_LEADING", "", "K" * 256])
def test_invalid_key_is_rejected(netlify: httpx.Client, key: str) -> None:
    response = create(netlify, plain(key, ("all", "1")))

    assert response.status_code == 422
    assert site_keys(netlify) == []


def test_longest_valid_key_is_accepted(netlify: httpx.Client) -> None:
    assert create(netlify, plain("K" * 255, ("all", "1"))).status_code == 201


def test_post_processing_spelling_is_normalised(netlify: httpx.Client) -> None:
    response = create(netlify, plain("S", ("all", "1"), scopes=["builds", "post-processing"]))

    assert response.json()[0]["scopes"] == ["builds", "post_processing"]


def test_branch_values_need_a_branch_name(netlify: httpx.Client) -> None:
    missing = create(netlify, plain("B", ("branch", "1")))
    context_named = create(
        netlify,
        {
            "key": "B",
            "values": [{"context": "branch", "context_parameter": "production", "value": "1"}],
        },
    )
    good = create(
        netlify,
        {
            "key": "B",
            "values": [{"context": "branch", "context_parameter": "staging", "value": "1"}],
        },
    )

    assert missing.status_code == 400
    assert context_named.status_code == 400
    assert good.json()[0]["values"][0]["context_parameter"] == "staging"


# Contexts.


def test_all_mixed_with_specific_is_rejected(netlify: httpx.Client) -> None:
    response = create(netlify, plain("MIX", ("all", "1"), ("production", "2")))

    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": "invalid request: non-compatible context"}


def test_patch_cannot_add_specific_to_all(netlify: httpx.Client) -> None:
    create(netlify, plain("MIX", ("all", "1")))

    response = netlify.patch(
        f"{SITE_ENV}/MIX", params={"site_id": SITE_ID}, json={"context": "production", "value": "2"}
    )

    assert response.status_code == 400


def test_mix_is_stored_when_accepted(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    emulators.configure("netlify", mixed_all_context="accept")

    response = create(netlify, plain("MIX", ("all", "1"), ("production", "2")))

    assert response.status_code == 201
    assert values_by_context(response.json()[0]) == {"all": "1", "production": "2"}


# Replace, set, delete.


def test_put_replaces_every_value(netlify: httpx.Client) -> None:
    create(netlify, plain("K", ("production", "p"), ("deploy-preview", "d")))

    answer = netlify.put(
        f"{SITE_ENV}/K",
        params={"site_id": SITE_ID},
        json={"key": "K", "values": [{"context": "production", "value": "p2"}], "is_secret": False},
    )

    assert answer.status_code == 200
    assert values_by_context(answer.json()) == {"production": "p2"}


def test_put_replaces_scopes(netlify: httpx.Client) -> None:
    create(netlify, plain("K", ("all", "1")))

    answer = netlify.put(
        f"{SITE_ENV}/K",
        params={"site_id": SITE_ID},
        json={"values": [{"context": "all", "value": "1"}], "scopes": ["runtime"]},
    )

    assert answer.json()["scopes"] == ["runtime"]


def test_put_with_key_query_renames(netlify: httpx.Client) -> None:
    create(netlify, plain("OLD", ("all", "1")))

    netlify.put(
        f"{SITE_ENV}/OLD",
        params={"site_id": SITE_ID, "key": "NEW"},
        json={"values": [{"context": "all", "value": "1"}]},
    )

    assert site_keys(netlify) == ["NEW"]


def test_put_on_missing_key_is_404(netlify: httpx.Client) -> None:
    response = netlify.put(f"{SITE_ENV}/NOPE", params={"site_id": SITE_ID}, json={"values": []})

    assert response.status_code == 404


@pytest.mark.parametrize(("setting", "status"), [(200, 200), (201, 201)])
def test_patch_creates_a_context_value(
    emulators: EmulatorSet, netlify: httpx.Client, setting: int, status: int
) -> None:
    emulators.configure("netlify", patch_status=setting)
    create(netlify, plain("K", ("production", "p")))

    response = netlify.patch(
        f"{SITE_ENV}/K", params={"site_id": SITE_ID}, json={"context": "dev", "value": "d"}
    )

    assert response.status_code == status
    assert values_by_context(response.json()) == {"production": "p", "dev": "d"}


def test_patch_updates_in_place(netlify: httpx.Client) -> None:
    created = create(netlify, plain("K", ("production", "p"))).json()[0]

    answer = netlify.patch(
        f"{SITE_ENV}/K", params={"site_id": SITE_ID}, json={"context": "production", "value": "q"}
    ).json()

    assert answer["values"] == [
        {"id": created["values"][0]["id"], "context": "production", "value": "q"}
    ]


def test_patch_on_missing_key_is_404(netlify: httpx.Client) -> None:
    response = netlify.patch(
        f"{SITE_ENV}/NOPE", params={"site_id": SITE_ID}, json={"context": "dev", "value": "d"}
    )

    assert response.status_code == 404


def test_delete_one_value_by_id(netlify: httpx.Client) -> None:
    var = create(netlify, plain("K", ("production", "p"), ("dev", "d"))).json()[0]
    dev_id = next(v["id"] for v in var["values"] if v["context"] == "dev")

    deleted = netlify.delete(f"{SITE_ENV}/K/value/{dev_id}", params={"site_id": SITE_ID})
    again = netlify.delete(f"{SITE_ENV}/K/value/{dev_id}", params={"site_id": SITE_ID})

    assert deleted.status_code == 204
    assert again.status_code == 404
    remaining = netlify.get(f"{SITE_ENV}/K", params={"site_id": SITE_ID}).json()
    assert values_by_context(remaining) == {"production": "p"}


def test_204_has_no_body_and_no_content_type(netlify: httpx.Client) -> None:
    create(netlify, plain("K", ("all", "1")))

    response = netlify.delete(f"{SITE_ENV}/K", params={"site_id": SITE_ID})

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


def test_updated_at_changes_on_every_change(netlify: httpx.Client) -> None:
    created = create(netlify, plain("K", ("production", "p"))).json()[0]

    first = netlify.patch(
        f"{SITE_ENV}/K", params={"site_id": SITE_ID}, json={"context": "dev", "value": "1"}
    ).json()
    second = netlify.patch(
        f"{SITE_ENV}/K", params={"site_id": SITE_ID}, json={"context": "dev", "value": "2"}
    ).json()

    assert created["updated_at"] < first["updated_at"] < second["updated_at"]


# Secrets.


def create_secret(netlify: httpx.Client) -> dict[str, Any]:
    response = create(
        netlify, plain("API_TOKEN", ("production", "prod-secret"), ("dev", ""), is_secret=True)
    )
    assert response.status_code == 201
    var: dict[str, Any] = response.json()[0]
    return var


def test_secret_values_are_hidden_except_dev(netlify: httpx.Client) -> None:
    create_secret(netlify)

    var = netlify.get(f"{SITE_ENV}/API_TOKEN", params={"site_id": SITE_ID}).json()

    production = next(v for v in var["values"] if v["context"] == "production")
    dev = next(v for v in var["values"] if v["context"] == "dev")
    assert "value" not in production
    assert dev["value"] == ""
    assert "prod-secret" not in json.dumps(var)


def test_secret_values_hidden_as_empty(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    emulators.configure("netlify", secret_value="empty")
    create_secret(netlify)

    var = netlify.get(f"{SITE_ENV}/API_TOKEN", params={"site_id": SITE_ID}).json()

    assert values_by_context(var) == {"production": "", "dev": ""}


def test_secret_scopes_leave_out_post_processing(netlify: httpx.Client) -> None:
    var = create_secret(netlify)

    assert var["scopes"] == ["builds", "functions", "runtime"]
    assert var["is_secret"] is True


@pytest.mark.parametrize(
    "item",
    [
        plain("S", ("production", "1"), is_secret=True, scopes=["builds", "post_processing"]),
        plain("S", ("all", "1"), is_secret=True),
    ],
)
def test_secret_rules_reject(netlify: httpx.Client, item: dict[str, Any]) -> None:
    response = create(netlify, item)

    assert response.status_code == 400


def test_secret_flag_cannot_be_removed(netlify: httpx.Client) -> None:
    create_secret(netlify)

    response = netlify.put(
        f"{SITE_ENV}/API_TOKEN",
        params={"site_id": SITE_ID},
        json={"values": [{"context": "production", "value": "x"}], "is_secret": False},
    )

    assert response.status_code == 400


def test_state_shows_secret_values(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    create_secret(netlify)

    [var] = emulators.state("netlify")["sites"][0]["env"]

    assert values_by_context(var) == {"production": "prod-secret", "dev": ""}


# Plans.


def test_free_plan_forbids_explicit_scopes(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    emulators.configure("netlify", free_plan=True)

    refused = create(netlify, plain("K", ("all", "1"), scopes=ALL_SCOPES))
    allowed = create(netlify, plain("K", ("all", "1")))

    assert refused.status_code == 403
    assert refused.json() == {
        "code": 403,
        "message": "Upgrade your Netlify account to set specific scopes",
    }
    assert "scopes" not in allowed.json()[0]


def test_forbidden_secrets_answer_403(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    emulators.configure("netlify", secrets="forbidden")

    response = create(netlify, plain("S", ("production", "1"), is_secret=True))

    assert response.status_code == 403


# Where variables live.


def test_team_and_site_vars_are_separate(netlify: httpx.Client) -> None:
    create(netlify, plain("TEAM_ONLY", ("all", "t")), site=False)
    create(netlify, plain("SITE_ONLY", ("all", "s")))

    team = [var["key"] for var in netlify.get(SITE_ENV).json()]

    assert team == ["TEAM_ONLY"]
    assert site_keys(netlify) == ["SITE_ONLY"]


def test_account_id_and_slug_both_work(netlify: httpx.Client) -> None:
    create(netlify, plain("K", ("all", "1")))

    by_id = netlify.get(f"/accounts/{ACCOUNT_ID}/env", params={"site_id": SITE_ID}).json()
    by_slug = netlify.get(f"/accounts/{SLUG}/env", params={"site_id": SITE_ID}).json()

    assert by_id == by_slug
    assert [var["key"] for var in by_id] == ["K"]


def test_site_env_list_matches_account_path(netlify: httpx.Client) -> None:
    create(netlify, plain("K", ("all", "1")))

    assert [var["key"] for var in netlify.get(f"/sites/{SITE_ID}/env").json()] == ["K"]


@pytest.mark.parametrize("param", ["context_name", "context"])
def test_context_filter(netlify: httpx.Client, param: str) -> None:
    create(
        netlify,
        plain("EVERYWHERE", ("all", "1")),
        plain("PROD", ("production", "2")),
        plain("DEV", ("dev", "3")),
    )

    listed = netlify.get(SITE_ENV, params={"site_id": SITE_ID, param: "dev"}).json()

    assert sorted(var["key"] for var in listed) == ["DEV", "EVERYWHERE"]


def test_scope_filter(netlify: httpx.Client) -> None:
    create(
        netlify,
        plain("RUN", ("all", "1"), scopes=["runtime"]),
        plain("BUILD", ("all", "2"), scopes=["builds"]),
    )

    listed = netlify.get(SITE_ENV, params={"site_id": SITE_ID, "scope": "builds"}).json()

    assert [var["key"] for var in listed] == ["BUILD"]


def test_unknown_site_is_404(netlify: httpx.Client) -> None:
    response = netlify.get(SITE_ENV, params={"site_id": "00000000-0000-4000-8000-000000000000"})

    assert response.status_code == 404
    assert response.json()["code"] == 404


# Sites, accounts and the CLI's first calls.


def test_site_carries_what_netlify_cli_needs(netlify: httpx.Client) -> None:
    site = netlify.get(f"/sites/{SITE_ID}", params={"feature_flags": "cli"}).json()

    assert site["id"] == SITE_ID
    assert site["account_slug"] == SLUG
    assert site["account_id"] == ACCOUNT_ID
    assert site["use_envelope"] is True


def test_minimal_accounts_list(netlify: httpx.Client) -> None:
    accounts = netlify.get("/accounts", params={"minimal": "true"}).json()

    assert [(a["id"], a["slug"]) for a in accounts] == [(ACCOUNT_ID, SLUG)]


def test_build_settings_env_shows_plain_all_vars(netlify: httpx.Client) -> None:
    create(netlify, plain("TEAM", ("all", "t")), site=False)
    create(
        netlify,
        plain("SHOWN", ("all", "1")),
        plain("NARROW", ("all", "2"), scopes=["runtime"]),
        plain("PROD", ("production", "3")),
        plain("SECRET", ("production", "4"), is_secret=True),
    )

    env = netlify.get(f"/sites/{SITE_ID}").json()["build_settings"]["env"]

    assert env == {"TEAM": "t", "SHOWN": "1"}


def test_site_patch_cannot_set_build_settings_env(netlify: httpx.Client) -> None:
    netlify.patch(f"/sites/{SITE_ID}", json={"build_settings": {"env": {"X": "1"}, "cmd": "make"}})

    settings = netlify.get(f"/sites/{SITE_ID}").json()["build_settings"]

    assert settings["env"] == {}
    assert settings["cmd"] == "make"


def test_build_trigger_answers_a_build(netlify: httpx.Client) -> None:
    response = netlify.post(f"/sites/{SITE_ID}/builds", json={})

    assert response.status_code == 200
    assert len(response.json()["id"]) == 24


def test_sites_pages_with_link_header(emulators: EmulatorSet, netlify: httpx.Client) -> None:
    state = emulators.state("netlify")
    state["sites"].append({"name": "docs", "account_slug": SLUG})
    emulators.seed({"netlify": state})

    first = netlify.get("/sites", params={"per_page": 1})
    team = netlify.get(f"/{SLUG}/sites", params={"name": "doc"}).json()

    assert [site["name"] for site in first.json()] == ["web"]
    assert 'rel="next"' in first.headers["link"]
    assert [site["name"] for site in team] == ["docs"]


def test_unknown_route_is_plain_text_404(netlify: httpx.Client) -> None:
    response = netlify.get("/no/such/route")

    assert response.status_code == 404
    assert response.text == "Not Found"
    assert response.headers["content-type"].startswith("text/plain")


def test_unknown_token_gets_401(emulators: EmulatorSet) -> None:
    response = httpx.get(f"{emulators.netlify_url}/accounts", headers={"Authorization": "Bearer x"})

    assert response.status_code == 401
    assert response.json()["code"] == 401


# Rate limits.


def test_rate_limit_headers(netlify: httpx.Client) -> None:
    response = netlify.get("/accounts")

    assert response.headers["x-ratelimit-limit"] == "500"
    assert response.headers["x-ratelimit-remaining"] == "499"
    assert int(response.headers["x-ratelimit-reset"]) > time.time()


def test_exhausted_limit_answers_429(netlify: httpx.Client) -> None:
    statuses = [netlify.get("/accounts").status_code for _ in range(501)]

    assert statuses[:500] == [200] * 500
    assert statuses[500] == 429


# Shapes against Netlify's controller-generated OpenAPI spec.


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        shared_path("specs", "netlify", "openapi.json").read_text()
    )
    return document


def check_schema(
    openapi: dict[str, Any], schema_name: str, instance: Any, many: bool = False
) -> None:
    reference = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"type": "array", "items": reference} if many else reference
    jsonschema.validate(instance, {**schema, "components": openapi["components"]})


def test_responses_match_openapi_schemas(netlify: httpx.Client, openapi: dict[str, Any]) -> None:
    created = create(
        netlify,
        plain("K", ("production", "p"), ("dev", "d")),
        plain("S", ("production", "s"), is_secret=True),
    )

    check_schema(openapi, "EnvVar", created.json(), many=True)
    check_schema(
        openapi, "EnvVar", netlify.get(f"{SITE_ENV}/S", params={"site_id": SITE_ID}).json()
    )
    check_schema(openapi, "Site", netlify.get(f"/sites/{SITE_ID}").json())
    check_schema(openapi, "Site", netlify.get("/sites").json(), many=True)
    check_schema(openapi, "Account", netlify.get("/accounts").json(), many=True)
    check_schema(openapi, "Build", netlify.post(f"/sites/{SITE_ID}/builds").json())
