"""The suite-wide check of Netlify emulator responses against Netlify's OpenAPI spec.

The check itself runs on every test (see `tests/fixtures/netlify_openapi.py`). These tests
show that it finds violations without printing values, that it exempts only what it should,
and that every endpoint the Netlify emulator serves is validated against a schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from envsync.emulators import EmulatorSet, ObservedResponse
from tests.fixtures.netlify_openapi import NetlifySpecCheck, Verdict, netlify_spec_check

SLUG = "team"
ACCOUNT_ID = "65e0c0ffee00000000000001"
SITE_ID = "5f1c0de0-0000-4000-8000-000000000001"
SECRET_TEXT = "s3cr3t-value-never-printed"
JSON_TYPE = {"content-type": "application/json; charset=utf-8"}


@pytest.fixture
def check(request: pytest.FixtureRequest) -> NetlifySpecCheck:
    session_check = netlify_spec_check(request.config)
    if session_check is None:
        pytest.skip("the Netlify OpenAPI spec is absent, so responses are not checked")
    return session_check


@pytest.fixture
def netlify(emulators: EmulatorSet) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulators.netlify_token}"}
    with httpx.Client(base_url=emulators.netlify_url, headers=headers) as client:
        yield client


def observed(
    method: str,
    path: str,
    status: int,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    fault: str | None = None,
) -> ObservedResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ObservedResponse(
        api="netlify",
        method=method,
        path=path,
        query="",
        status=status,
        headers=JSON_TYPE if headers is None else headers,
        body=raw,
        fault=fault,
    )


def env_var(**changes: Any) -> dict[str, Any]:
    var: dict[str, Any] = {
        "key": "API_URL",
        "scopes": ["builds"],
        "values": [{"id": "v1", "context": "production", "value": SECRET_TEXT}],
        "is_secret": False,
        "updated_at": "2026-01-01T00:00:00.000Z",
        "updated_by": {"id": "u", "full_name": "U", "email": "u@example.com", "avatar_url": ""},
    }
    var.update(changes)
    return var


ENV_PATH = f"/api/v1/accounts/{SLUG}/env"


# Finding violations.


def test_valid_env_list_passes(check: NetlifySpecCheck) -> None:
    verdict = check.check(observed("GET", ENV_PATH, 200, [env_var()]))

    assert verdict == Verdict("validated")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            [env_var(values=[{"id": "v1", "context": "staging", "value": SECRET_TEXT}])],
            "$[0].values[0].context: not one of",
        ),
        ([env_var(scopes=["everything"])], "$[0].scopes[0]: not one of"),
        ([env_var(is_secret="no")], "$[0].is_secret: not of type 'boolean'"),
        (
            [{"key": "API_URL", "values": []}],
            "$[0]: missing required properties ['updated_at', 'updated_by']",
        ),
        ({"key": "API_URL"}, "$: not of type 'array'"),
    ],
)
def test_bad_env_list_is_a_violation(check: NetlifySpecCheck, body: Any, expected: str) -> None:
    verdict = check.check(observed("GET", ENV_PATH, 200, body))

    assert len(verdict.problems) == 1
    assert verdict.problems[0].startswith(expected)


def test_violation_message_leaves_out_values(check: NetlifySpecCheck) -> None:
    body = [env_var(values=[{"id": "v1", "context": SECRET_TEXT, "value": SECRET_TEXT}])]

    verdict = check.check(observed("GET", ENV_PATH, 200, body))

    assert verdict.problems
    assert SECRET_TEXT not in " ".join(verdict.problems)


def test_error_body_follows_the_error_definition(check: NetlifySpecCheck) -> None:
    good = check.check(observed("GET", ENV_PATH, 404, {"code": 404, "message": "Not Found"}))
    bad = check.check(observed("GET", ENV_PATH, 404, {"error": "not found"}))

    assert good.problems == []
    assert bad.problems == ["$: missing required properties ['message']"]


def test_no_content_must_be_empty(check: NetlifySpecCheck) -> None:
    path = f"{ENV_PATH}/API_URL"

    assert check.check(observed("DELETE", path, 204, b"", headers={})).problems == []
    assert check.check(observed("DELETE", path, 204, {"deleted": True})).problems == [
        "a 204 response must have no body"
    ]


def test_json_body_needs_a_json_content_type(check: NetlifySpecCheck) -> None:
    verdict = check.check(
        observed("GET", ENV_PATH, 200, [env_var()], headers={"content-type": "text/html"})
    )

    assert verdict.problems == ["the content type is not application/json"]


def test_unknown_operation_is_a_violation(check: NetlifySpecCheck) -> None:
    verdict = check.check(observed("GET", "/api/v1/sites/x/secrets", 200, []))

    assert verdict.outcome == "violation"


# Exemptions and path mapping.


@pytest.mark.parametrize("fault", ["status", "truncate"])
def test_injected_faults_are_exempt(check: NetlifySpecCheck, fault: str) -> None:
    verdict = check.check(observed("GET", ENV_PATH, 200, b"{not json", fault=fault))

    assert verdict == Verdict("exempt: injected fault")


def test_latency_fault_is_still_validated(check: NetlifySpecCheck) -> None:
    verdict = check.check(observed("GET", ENV_PATH, 200, {"key": 1}, fault="latency_ms"))

    assert verdict.outcome == "validated"
    assert verdict.problems


def test_plain_not_found_is_exempt(check: NetlifySpecCheck) -> None:
    response = observed(
        "GET", "/api/v1/nothing", 404, b"Not Found", headers={"content-type": "text/plain"}
    )

    assert check.check(response) == Verdict("exempt: plain-text 404 for an unknown route")


def test_build_list_path_gets_the_api_prefix(check: NetlifySpecCheck) -> None:
    operation = check.operation("GET", f"/api/v1/sites/{SITE_ID}/builds")

    assert operation is not None
    assert operation.template == "/api/v1/sites/{site_id}/builds"


def test_literal_segments_win_over_parameters(check: NetlifySpecCheck) -> None:
    site = check.operation("GET", f"/api/v1/sites/{SITE_ID}")
    team_sites = check.operation("GET", f"/api/v1/{SLUG}/sites")

    assert site is not None and site.template == "/api/v1/sites/{site_id}"
    assert team_sites is not None and team_sites.template == "/api/v1/{account_slug}/sites"


# Every endpoint of the emulator, live.


def call_every_endpoint(netlify: httpx.Client) -> None:
    site = {"site_id": SITE_ID}
    item = {"key": "API_URL", "values": [{"context": "production", "value": "a"}]}
    secret = {
        "key": "API_KEY",
        "is_secret": True,
        "values": [{"context": "production", "value": "k"}],
    }

    netlify.get("/accounts", params={"minimal": "true"})
    netlify.get(f"/accounts/{ACCOUNT_ID}")
    netlify.get("/sites", params={"filter": "all", "per_page": "100"})
    netlify.get(f"/sites/{SITE_ID}", params={"feature_flags": "cli"})
    netlify.patch(f"/sites/{SITE_ID}", json={"name": "web"})
    netlify.get(f"/{SLUG}/sites")
    netlify.post(f"/sites/{SITE_ID}/builds", json={})
    netlify.get(f"/sites/{SITE_ID}/builds")

    netlify.post(f"/accounts/{SLUG}/env", params=site, json=[item, secret])
    netlify.post(f"/accounts/{SLUG}/env", json=[item])
    netlify.get(f"/accounts/{SLUG}/env", params={**site, "context_name": "dev"})
    netlify.get(f"/accounts/{ACCOUNT_ID}/env")
    netlify.get(f"/sites/{SITE_ID}/env")
    netlify.get(f"/accounts/{SLUG}/env/API_KEY", params=site)
    patched = netlify.patch(
        f"/accounts/{SLUG}/env/API_URL",
        params=site,
        json={"context": "deploy-preview", "value": "b"},
    ).json()
    value_id = patched["values"][0]["id"]
    netlify.put(f"/accounts/{SLUG}/env/API_URL", params=site, json={**item, "scopes": ["builds"]})
    netlify.delete(f"/accounts/{SLUG}/env/API_KEY", params=site)
    netlify.delete(f"/accounts/{SLUG}/env/API_URL/value/{value_id}")
    netlify.delete(f"/accounts/{SLUG}/env/API_URL", params=site)

    # Errors: conflict, not found, reserved key, unknown token.
    netlify.post(f"/accounts/{SLUG}/env", json=[item])
    netlify.get(f"/accounts/{SLUG}/env/ABSENT", params=site)
    netlify.post(f"/accounts/{SLUG}/env", params=site, json=[{**item, "key": "SITE_NAME"}])
    netlify.get("/accounts", headers={"Authorization": "Bearer nfp_unknown"})


def test_every_endpoint_follows_the_spec(check: NetlifySpecCheck, netlify: httpx.Client) -> None:
    check.check_pending()

    call_every_endpoint(netlify)
    results = check.check_pending()

    outcomes = {f"{r.method} {r.path} {r.status}": v.outcome for r, v in results}
    problems = {f"{r.method} {r.path} {r.status}": v.problems for r, v in results if v.problems}
    assert problems == {}
    assert len(results) == 23
    assert {outcome for outcome in outcomes.values() if not outcome.startswith("undeclared")} == {
        "validated"
    }
