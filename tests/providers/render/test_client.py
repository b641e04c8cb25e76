"""Render client and reader: request shapes, pagination, parsing and errors, on MockTransport."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from envsync.errors import AuthError, IncompleteReadError, ProviderUnavailableError
from envsync.model import RemoteState, SecretValue
from envsync.providers.render import RenderProvider
from envsync.providers.render.client import PAGE_LIMIT
from tests.providers.render.mock_api import (
    GROUP_ID,
    OWNER_ID,
    SERVICE_ID,
    TOKEN,
    MockRender,
    group_document,
    group_target,
    numbered,
    run_with,
    service_item,
    service_target,
)

ENV_VARS_PATH = f"/services/{SERVICE_ID}/env-vars"


def read_service(mock: MockRender, **settings: Any) -> RemoteState:
    async def action(provider: RenderProvider) -> RemoteState:
        return await provider.read(service_target())

    return run_with(mock, action, **settings)


@pytest.mark.parametrize(
    ("count", "expected_requests"),
    [(0, 1), (1, 1), (99, 1), (100, 2), (101, 2), (130, 2), (250, 3)],
)
def test_read_pages_through_every_variable(count: int, expected_requests: int) -> None:
    mock = MockRender()
    env_vars = numbered(count)
    mock.serve_env_vars(env_vars)

    state = read_service(mock)

    assert len(mock.calls()) == expected_requests
    assert state.requests == expected_requests
    assert list(state.variables) == [key for key, _ in env_vars]
    assert [state.variables[key].values[0].value for key, _ in env_vars] == [
        SecretValue(value) for _, value in env_vars
    ]


def test_read_follows_last_cursor() -> None:
    mock = MockRender()
    mock.serve_env_vars(numbered(250))

    read_service(mock)

    queries = [sent.query for sent in mock.calls()]
    assert all(query["limit"] == str(PAGE_LIMIT) for query in queries)
    assert "cursor" not in queries[0]
    assert queries[1]["cursor"] == "cur00099"
    assert queries[2]["cursor"] == "cur00199"


def test_read_values_have_no_context() -> None:
    mock = MockRender()
    mock.serve_env_vars([("BRIDGE_VERSION", "1.2.3")])

    state = read_service(mock)

    (remote_value,) = state.variables["BRIDGE_VERSION"].values
    assert remote_value.context is None
    assert remote_value.value == SecretValue("1.2.3")


def full_page(start: int, cursor_of_last: str) -> list[dict[str, Any]]:
    items = [
        {"envVar": {"key": f"K{start + index}", "value": "v"}, "cursor": f"c{start + index}"}
        for index in range(PAGE_LIMIT)
    ]
    items[-1]["cursor"] = cursor_of_last
    return items


def test_read_rejects_repeated_cursor() -> None:
    mock = MockRender()
    mock.reply(
        "GET",
        ENV_VARS_PATH,
        httpx.Response(200, json=full_page(0, "same")),
        httpx.Response(200, json=full_page(100, "same")),
    )

    with pytest.raises(IncompleteReadError) as raised:
        read_service(mock)

    assert "cursor" in raised.value.message
    assert len(mock.calls()) == 2


def valid_item(key: str = "K") -> dict[str, Any]:
    return {"envVar": {"key": key, "value": "v"}, "cursor": "c1"}


MALFORMED_PAGES: list[tuple[str, Any]] = [
    ("object instead of array", {"envVars": []}),
    ("null page", None),
    ("item not an object", ["K=v"]),
    ("item without cursor", [{"envVar": {"key": "K", "value": "v"}}]),
    ("item without envVar", [{"cursor": "c1", "key": "K", "value": "v"}]),
    ("key not a string", [{"envVar": {"key": 7, "value": "v"}, "cursor": "c1"}]),
    ("empty key", [{"envVar": {"key": "", "value": "v"}, "cursor": "c1"}]),
    ("value not a string", [{"envVar": {"key": "K", "value": None}, "cursor": "c1"}]),
    ("key listed twice", [valid_item("K"), valid_item("K")]),
]


@pytest.mark.parametrize(
    ("case", "page"), MALFORMED_PAGES, ids=[case for case, _ in MALFORMED_PAGES]
)
def test_read_rejects_malformed_page(case: str, page: Any) -> None:
    mock = MockRender()
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(200, json=page))

    with pytest.raises(IncompleteReadError):
        read_service(mock)


def test_read_rejects_malformed_second_page() -> None:
    mock = MockRender()
    mock.reply(
        "GET",
        ENV_VARS_PATH,
        httpx.Response(200, json=full_page(0, "next")),
        httpx.Response(200, json=[{"envVar": {"key": "K"}, "cursor": "c"}]),
    )

    with pytest.raises(IncompleteReadError):
        read_service(mock)

    assert len(mock.calls()) == 2


def test_read_rejects_key_repeated_across_pages() -> None:
    mock = MockRender()
    second = [{"envVar": {"key": "K0", "value": "v"}, "cursor": "x"}]
    mock.reply(
        "GET",
        ENV_VARS_PATH,
        httpx.Response(200, json=full_page(0, "next")),
        httpx.Response(200, json=second),
    )

    with pytest.raises(IncompleteReadError) as raised:
        read_service(mock)

    assert "K0" in raised.value.message


def test_read_rejects_body_cut_short() -> None:
    mock = MockRender()
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(200, content=b'[{"envVar": {"key"'))

    with pytest.raises(IncompleteReadError):
        read_service(mock)


def test_read_error_names_no_value() -> None:
    mock = MockRender()
    page = [{"envVar": {"key": "K", "value": "hunter2-secret"}, "cursor": 5}]
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(200, json=page))

    with pytest.raises(IncompleteReadError) as raised:
        read_service(mock)

    assert "hunter2-secret" not in str(raised.value)
    assert "hunter2-secret" not in repr(raised.value)


@pytest.mark.parametrize("status", [401, 403])
def test_read_rejected_token_is_auth_error(status: int) -> None:
    mock = MockRender()
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(status, json={"message": "unauthorized"}))

    with pytest.raises(AuthError):
        read_service(mock)


def test_read_server_error_is_raised_after_retries() -> None:
    mock = MockRender()
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(500, json={"message": "internal error"}))

    with pytest.raises(ProviderUnavailableError):
        read_service(mock, ENVSYNC_MAX_RETRIES=2)

    assert len(mock.calls()) == 3


def test_read_error_hides_token_and_query(caplog: pytest.LogCaptureFixture) -> None:
    mock = MockRender()
    mock.reply(
        "GET",
        ENV_VARS_PATH,
        httpx.Response(200, json=full_page(0, "cursor-token-xyz")),
        httpx.Response(401, json={"message": f"invalid key {TOKEN.reveal()}"}),
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthError) as raised:
        read_service(mock)

    envsync_lines = [r.getMessage() for r in caplog.records if r.name.startswith("envsync")]
    texts = [str(raised.value), repr(raised.value), raised.value.path, *envsync_lines]
    for text in texts:
        assert TOKEN.reveal() not in text
        assert "cursor-token-xyz" not in text
        assert "?" not in text


def test_read_sends_token_only_in_header() -> None:
    mock = MockRender()
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    mock.reply("GET", ENV_VARS_PATH, capture)

    read_service(mock)

    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN.reveal()}"
    assert TOKEN.reveal() not in str(seen[0].url)
    assert seen[0].headers["Accept"] == "application/json"


def read_group(mock: MockRender, name: str | None = None) -> RemoteState:
    async def action(provider: RenderProvider) -> RemoteState:
        return await provider.read(group_target(name=name))

    return run_with(mock, action)


def test_group_read_takes_one_call() -> None:
    mock = MockRender()
    document = group_document(numbered(150), name="shared", service_ids=["srv-a", "srv-b"])
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))

    state = read_group(mock)

    assert len(mock.calls()) == 1
    assert state.requests == 1
    assert len(state.variables) == 150


def test_group_read_fills_in_name_and_services() -> None:
    mock = MockRender()
    document = group_document([("K", "v")], name="shared", service_ids=["srv-a", "srv-b"])
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))

    state = read_group(mock)

    assert state.target.name == "render-group/shared"
    assert state.target.extra["service_ids"] == "srv-a,srv-b"


def test_group_read_keeps_configured_name() -> None:
    mock = MockRender()
    document = group_document([("K", "v")], name="shared")
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))

    state = read_group(mock, name="team-settings")

    assert state.target.name == "team-settings"


MALFORMED_GROUPS: list[tuple[str, Any]] = [
    ("array instead of object", []),
    ("no envVars", {"id": GROUP_ID, "name": "g", "serviceLinks": []}),
    ("envVars not a list", {"id": GROUP_ID, "name": "g", "envVars": {"K": "v"}}),
    ("link without id", {"id": GROUP_ID, "name": "g", "envVars": [], "serviceLinks": [{}]}),
    (
        "key listed twice",
        {"id": GROUP_ID, "name": "g", "envVars": [{"key": "K", "value": "a"}] * 2},
    ),
]


@pytest.mark.parametrize(
    ("case", "document"), MALFORMED_GROUPS, ids=[case for case, _ in MALFORMED_GROUPS]
)
def test_group_read_rejects_malformed_group(case: str, document: Any) -> None:
    mock = MockRender()
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))

    with pytest.raises(IncompleteReadError):
        read_group(mock)


def test_list_services_sends_filters_and_pages() -> None:
    mock = MockRender()
    first = [service_item(f"srv-{index:020d}", f"svc{index}") for index in range(PAGE_LIMIT)]
    mock.reply(
        "GET",
        "/services",
        httpx.Response(200, json=first),
        httpx.Response(200, json=[service_item("srv-last0000000000000000", "api")]),
    )

    async def action(provider: RenderProvider) -> int:
        services = await provider.client.list_services(name="api", owner_id=OWNER_ID)
        return len(services)

    assert run_with(mock, action) == PAGE_LIMIT + 1
    first_query, second_query = (sent.query for sent in mock.calls())
    assert first_query == {"name": "api", "ownerId": OWNER_ID, "limit": str(PAGE_LIMIT)}
    assert second_query["cursor"] == f"c-srv-{PAGE_LIMIT - 1:020d}"


def test_list_owners_parses_owners() -> None:
    mock = MockRender()
    owner = {"id": OWNER_ID, "name": "Team", "email": "t@example.com", "type": "team"}
    mock.reply("GET", "/owners", httpx.Response(200, json=[{"cursor": "c", "owner": owner}]))

    async def action(provider: RenderProvider) -> list[tuple[str, str, str | None]]:
        return [(o.id, o.name, o.type) for o in await provider.client.list_owners()]

    assert run_with(mock, action) == [(OWNER_ID, "Team", "team")]


def test_get_service_parses_service() -> None:
    mock = MockRender()
    document = service_item(SERVICE_ID, "api")["service"]
    mock.reply("GET", f"/services/{SERVICE_ID}", httpx.Response(200, json=document))

    async def action(provider: RenderProvider) -> str:
        return (await provider.client.get_service(SERVICE_ID)).label

    assert run_with(mock, action) == f"api ({SERVICE_ID})"


def test_key_is_quoted_as_one_path_segment() -> None:
    mock = MockRender()
    mock.reply(
        "PUT",
        f"/services/{SERVICE_ID}/env-vars/odd/key?#%",
        httpx.Response(200, json={"key": "odd/key?#%", "value": "v"}),
    )

    async def action(provider: RenderProvider) -> str:
        stored = await provider.client.put_env_var(SERVICE_ID, "odd/key?#%", SecretValue("v"))
        return stored.key

    assert run_with(mock, action) == "odd/key?#%"
    assert mock.calls()[0].raw_path == f"/services/{SERVICE_ID}/env-vars/odd%2Fkey%3F%23%25"


def test_group_delete_of_missing_key_succeeds() -> None:
    mock = MockRender()

    async def action(provider: RenderProvider) -> bool:
        return await provider.client.delete_env_group_var(GROUP_ID, "GONE")

    assert run_with(mock, action) is False
    assert [sent.method for sent in mock.calls()] == ["DELETE"]


def test_read_window_spares_writes() -> None:
    mock = MockRender()
    spent = {"Ratelimit-Limit": "400", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "30"}
    mock.reply("GET", ENV_VARS_PATH, httpx.Response(200, json=[], headers=spent))
    mock.reply(
        "PUT",
        f"{ENV_VARS_PATH}/K",
        httpx.Response(200, json={"key": "K", "value": "v"}),
    )

    async def action(provider: RenderProvider) -> None:
        await provider.read(service_target())
        await provider.client.put_env_var(SERVICE_ID, "K", SecretValue("v"))
        assert mock.sleeps == []
        await provider.read(service_target())

    run_with(mock, action)

    assert mock.sleeps == [30.0]
