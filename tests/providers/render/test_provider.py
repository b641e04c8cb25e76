"""RenderProvider: resolving configured targets and starting deploys, on MockTransport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from envsync.config import TargetSpec
from envsync.errors import ResolutionError
from envsync.model import TargetRef
from envsync.providers.base import load_provider_factory
from envsync.providers.render import RenderProvider
from tests.providers.render.mock_api import (
    GROUP_ID,
    OWNER_ID,
    SERVICE_ID,
    MockRender,
    group_document,
    group_spec,
    group_target,
    run_with,
    service_item,
    service_spec,
    service_target,
)


def resolve(mock: MockRender, spec: TargetSpec) -> list[TargetRef]:
    async def action(provider: RenderProvider) -> list[TargetRef]:
        return await provider.resolve(spec)

    return run_with(mock, action)


def test_provider_is_registered() -> None:
    factory: object = load_provider_factory("render")

    assert factory is RenderProvider


def test_service_by_id_needs_no_call() -> None:
    mock = MockRender()

    (target,) = resolve(mock, service_spec(SERVICE_ID, "id"))

    assert mock.calls() == []
    assert (target.kind, target.id, target.name) == ("service", SERVICE_ID, f"render/{SERVICE_ID}")


def test_service_by_id_keeps_configured_name() -> None:
    mock = MockRender()

    (target,) = resolve(mock, service_spec(SERVICE_ID, "id", name="api"))

    assert target.name == "api"


def test_service_by_name_resolves_exact_match() -> None:
    mock = MockRender()
    items = [service_item("srv-aaaaaaaaaaaaaaaaaaaa", "api-old"), service_item(SERVICE_ID, "api")]
    mock.reply("GET", "/services", httpx.Response(200, json=items))

    (target,) = resolve(mock, service_spec("api", "name", account_id=OWNER_ID))

    assert (target.id, target.name, target.account_id) == (SERVICE_ID, "render/api", OWNER_ID)
    assert mock.calls()[0].query["name"] == "api"
    assert mock.calls()[0].query["ownerId"] == OWNER_ID


def test_service_by_name_without_owner_sends_no_owner() -> None:
    mock = MockRender()
    mock.reply("GET", "/services", httpx.Response(200, json=[service_item(SERVICE_ID, "api")]))

    resolve(mock, service_spec("api", "name"))

    assert "ownerId" not in mock.calls()[0].query


def test_ambiguous_name_lists_candidates() -> None:
    mock = MockRender()
    items = [
        service_item("srv-aaaaaaaaaaaaaaaaaaaa", "api"),
        service_item("srv-bbbbbbbbbbbbbbbbbbbb", "api"),
    ]
    mock.reply("GET", "/services", httpx.Response(200, json=items))

    with pytest.raises(ResolutionError) as raised:
        resolve(mock, service_spec("api", "name"))

    assert raised.value.candidates == [
        "api (srv-aaaaaaaaaaaaaaaaaaaa)",
        "api (srv-bbbbbbbbbbbbbbbbbbbb)",
    ]
    assert "api (srv-aaaaaaaaaaaaaaaaaaaa)" in str(raised.value)


def test_unknown_name_is_resolution_error() -> None:
    mock = MockRender()
    mock.reply("GET", "/services", httpx.Response(200, json=[]))

    with pytest.raises(ResolutionError) as raised:
        resolve(mock, service_spec("nope", "name"))

    assert "nope" in raised.value.message
    assert raised.value.candidates == []


def test_auto_picks_the_only_service() -> None:
    mock = MockRender()
    mock.reply("GET", "/services", httpx.Response(200, json=[service_item(SERVICE_ID, "api")]))

    (target,) = resolve(mock, service_spec("auto", "auto"))

    assert (target.id, target.name) == (SERVICE_ID, "render/api")
    assert "name" not in mock.calls()[0].query


def test_auto_is_scoped_to_owner() -> None:
    mock = MockRender()
    mock.reply("GET", "/services", httpx.Response(200, json=[service_item(SERVICE_ID, "api")]))

    resolve(mock, service_spec("auto", "auto", account_id=OWNER_ID))

    assert mock.calls()[0].query["ownerId"] == OWNER_ID


@pytest.mark.parametrize("count", [0, 2])
def test_auto_without_single_service_says_what_to_set(count: int) -> None:
    mock = MockRender()
    items = [service_item(f"srv-{index:020d}", f"svc{index}") for index in range(count)]
    mock.reply("GET", "/services", httpx.Response(200, json=items))

    with pytest.raises(ResolutionError) as raised:
        resolve(mock, service_spec("auto", "auto"))

    assert raised.value.candidates == [f"svc{i} (srv-{i:020d})" for i in range(count)]
    assert "RENDER_SERVICE_ID" in str(raised.value)
    assert "RENDER_SERVICE_NAME" in str(raised.value)


def test_env_group_by_id_needs_no_call() -> None:
    mock = MockRender()

    (target,) = resolve(mock, group_spec())

    assert mock.calls() == []
    assert (target.kind, target.id, target.name) == (
        "env_group",
        GROUP_ID,
        f"render-group/{GROUP_ID}",
    )


def redeploy(mock: MockRender, target: TargetRef) -> None:
    async def action(provider: RenderProvider) -> None:
        await provider.redeploy(target)

    run_with(mock, action)


def deploy_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "dep-d0unittest00000000a", "status": "created"})


def test_service_redeploy_posts_empty_object() -> None:
    mock = MockRender()
    mock.reply("POST", f"/services/{SERVICE_ID}/deploys", deploy_reply)

    redeploy(mock, service_target())

    assert [(sent.method, sent.path, sent.body) for sent in mock.calls()] == [
        ("POST", f"/services/{SERVICE_ID}/deploys", {}),
    ]


def test_group_redeploy_uses_services_from_read() -> None:
    mock = MockRender()
    document = group_document([("K", "v")], service_ids=["srv-a", "srv-b"])
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))
    mock.reply("POST", "/services/srv-a/deploys", deploy_reply)
    mock.reply("POST", "/services/srv-b/deploys", deploy_reply)

    async def action(provider: RenderProvider) -> None:
        state = await provider.read(group_target())
        await provider.redeploy(state.target)

    run_with(mock, action)

    assert [(sent.method, sent.path) for sent in mock.calls()] == [
        ("GET", f"/env-groups/{GROUP_ID}"),
        ("POST", "/services/srv-a/deploys"),
        ("POST", "/services/srv-b/deploys"),
    ]


def test_group_redeploy_before_read_fetches_links() -> None:
    mock = MockRender()
    document = group_document([("K", "v")], service_ids=["srv-a"])
    mock.reply("GET", f"/env-groups/{GROUP_ID}", httpx.Response(200, json=document))
    mock.reply("POST", "/services/srv-a/deploys", deploy_reply)

    redeploy(mock, group_target())

    assert [sent.method for sent in mock.calls()] == ["GET", "POST"]


def test_group_without_services_deploys_nothing() -> None:
    mock = MockRender()
    target = TargetRef("render", "env_group", GROUP_ID, "render-group/g", extra={"service_ids": ""})

    redeploy(mock, target)

    assert mock.calls() == []


def test_deploys_have_their_own_rate_bucket() -> None:
    mock = MockRender()
    spent: dict[str, Any] = {"Ratelimit-Remaining": "0", "Ratelimit-Reset": "60"}
    mock.reply(
        "POST", f"/services/{SERVICE_ID}/deploys", httpx.Response(201, json={}, headers=spent)
    )
    mock.reply("GET", f"/services/{SERVICE_ID}/env-vars", httpx.Response(200, json=[]))

    async def action(provider: RenderProvider) -> None:
        await provider.redeploy(service_target())
        await provider.read(service_target())

    run_with(mock, action)

    assert mock.sleeps == []
