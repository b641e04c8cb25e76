"""Drive the Render emulator with Render's official generated client, `render.public_api`.

The client (PyPI package `render` 1.5.0) is generated from Render's public OpenAPI spec.
Every call below must parse into the client's typed models, and what it returns must be
what the emulator holds. The last tests record how the client behaves when a read fails
part way, which decides whether envsync could use it in place of its own client.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from envsync.emulators import EmulatorSet
from tests.conftest import shared_path

public_api = pytest.importorskip("render.public_api")

# The generated client is imported after the skip above, so the module is optional.
from render.public_api import AuthenticatedClient, errors  # noqa: E402
from render.public_api.api.deploys import create_deploy  # noqa: E402
from render.public_api.api.environment_groups import (  # noqa: E402
    create_env_group,
    delete_env_group,
    delete_env_group_env_var,
    list_env_groups,
    retrieve_env_group,
    retrieve_env_group_env_var,
    update_env_group,
    update_env_group_env_var,
)
from render.public_api.api.services import (  # noqa: E402
    delete_env_var,
    get_env_vars_for_service,
    list_services,
    retrieve_env_var,
    update_env_var,
    update_env_vars_for_service,
)
from render.public_api.api.workspaces import list_owners  # noqa: E402
from render.public_api.models import (  # noqa: E402
    CreateDeployBody,
    Deploy,
    EnvGroup,
    EnvGroupMeta,
    EnvGroupPATCHInput,
    EnvGroupPOSTInput,
    EnvVar,
    EnvVarKeyGenerateValue,
    EnvVarKeyValue,
    EnvVarValue,
    EnvVarWithCursor,
    Error,
    Owner,
    OwnerType,
    OwnerWithCursor,
    ServiceType,
    ServiceWithCursor,
)
from render.public_api.types import UNSET  # noqa: E402

TOKEN = "rnd_sdkConformance00000000000000000"
TEAM_ID = "tea-d0sdk0team0000000000"
USER_ID = "usr-d0sdk0user0000000000"
SERVICE_ID = "srv-d0sdk0api00000000000"
WORKER_ID = "srv-d0sdk0worker00000000"
VARIABLE_COUNT = 45


def sdk_seed() -> dict[str, Any]:
    return {
        "tokens": [TOKEN],
        "owners": [
            {"id": TEAM_ID, "name": "SDK Team", "type": "team"},
            {"id": USER_ID, "name": "SDK User", "type": "user", "email": "user@example.com"},
        ],
        "services": [
            {
                "id": SERVICE_ID,
                "name": "api",
                "ownerId": TEAM_ID,
                "type": "web_service",
                "envVars": [
                    {"key": f"KEY_{n:02d}", "value": f"value-{n}"} for n in range(VARIABLE_COUNT)
                ],
            },
            {"id": WORKER_ID, "name": "worker", "ownerId": TEAM_ID, "type": "background_worker"},
        ],
        "envGroups": [],
    }


@pytest.fixture
def sdk(emulators: EmulatorSet) -> Iterator[AuthenticatedClient]:
    emulators.seed({"render": sdk_seed()})
    with AuthenticatedClient(base_url=emulators.render_url, token=TOKEN) as client:
        yield client


def state_vars(emulators: EmulatorSet, service_id: str) -> dict[str, str]:
    service = next(s for s in emulators.state("render")["services"] if s["id"] == service_id)
    return {pair["key"]: pair["value"] for pair in service["envVars"]}


def state_group(emulators: EmulatorSet, group_id: str) -> dict[str, Any] | None:
    groups = emulators.state("render")["envGroups"]
    return next((group for group in groups if group["id"] == group_id), None)


def read_all_pages(sdk: AuthenticatedClient, limit: int) -> tuple[list[EnvVarWithCursor], int]:
    """Read every page the way Render's docs describe: follow the last cursor to `[]`."""
    items: list[EnvVarWithCursor] = []
    cursor: Any = UNSET
    pages = 0
    while True:
        page = get_env_vars_for_service.sync(SERVICE_ID, client=sdk, cursor=cursor, limit=limit)
        pages += 1
        assert isinstance(page, list)
        if not page:
            return items, pages
        items.extend(page)
        cursor = page[-1].cursor


# Service variables.


def test_sdk_lists_vars_page_by_page(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    items, pages = read_all_pages(sdk, limit=20)

    assert all(isinstance(item, EnvVarWithCursor) for item in items)
    assert pages == 4
    assert {item.env_var.key: item.env_var.value for item in items} == state_vars(
        emulators, SERVICE_ID
    )
    assert len({item.cursor for item in items}) == VARIABLE_COUNT


def test_sdk_bulk_update_replaces_vars(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    body: list[EnvVarKeyGenerateValue | EnvVarKeyValue] = [
        EnvVarKeyValue(key="KEPT", value="kept-value"),
        EnvVarKeyGenerateValue(key="GENERATED", generate_value=True),
    ]

    result = update_env_vars_for_service.sync(SERVICE_ID, client=sdk, body=body)

    assert isinstance(result, list)
    assert [item.env_var.key for item in result] == ["KEPT", "GENERATED"]
    stored = state_vars(emulators, SERVICE_ID)
    assert stored["KEPT"] == "kept-value"
    assert len(stored["GENERATED"]) == 44
    assert sorted(stored) == ["GENERATED", "KEPT"]
    assert result[1].env_var.value == stored["GENERATED"]


def test_sdk_single_var_round_trip(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    written = update_env_var.sync(SERVICE_ID, "NEW_KEY", client=sdk, body=EnvVarValue("v1"))
    read = retrieve_env_var.sync(SERVICE_ID, "NEW_KEY", client=sdk)
    deleted = delete_env_var.sync_detailed(SERVICE_ID, "NEW_KEY", client=sdk)
    missing = retrieve_env_var.sync(SERVICE_ID, "NEW_KEY", client=sdk)

    assert written == EnvVar(key="NEW_KEY", value="v1")
    assert read == EnvVar(key="NEW_KEY", value="v1")
    assert deleted.status_code == 204
    assert "NEW_KEY" not in state_vars(emulators, SERVICE_ID)
    assert isinstance(missing, Error)
    assert missing.message == "not found: NEW_KEY"


def test_sdk_update_keeps_other_vars(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    before = state_vars(emulators, SERVICE_ID)

    update_env_var.sync(SERVICE_ID, "KEY_00", client=sdk, body=EnvVarValue("changed"))

    after = state_vars(emulators, SERVICE_ID)
    assert after["KEY_00"] == "changed"
    assert {k: v for k, v in after.items() if k != "KEY_00"} == {
        k: v for k, v in before.items() if k != "KEY_00"
    }


# Environment groups.


def test_sdk_env_group_life_cycle(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    created = create_env_group.sync(
        client=sdk,
        body=EnvGroupPOSTInput(
            name="shared",
            owner_id=TEAM_ID,
            env_vars=[EnvVarKeyValue(key="A", value="1")],
            service_ids=[SERVICE_ID],
        ),
    )
    assert isinstance(created, EnvGroup)
    group_id = created.id
    assert [link.id for link in created.service_links] == [SERVICE_ID]

    renamed = update_env_group.sync(group_id, client=sdk, body=EnvGroupPATCHInput(name="common"))
    with_b = update_env_group_env_var.sync(group_id, "B", client=sdk, body=EnvVarValue("2"))
    read_b = retrieve_env_group_env_var.sync(group_id, "B", client=sdk)
    removed_a = delete_env_group_env_var.sync_detailed(group_id, "A", client=sdk)
    fetched = retrieve_env_group.sync(group_id, client=sdk)
    listed = list_env_groups.sync(client=sdk, owner_id=[TEAM_ID])

    assert isinstance(renamed, EnvGroup) and renamed.name == "common"
    assert isinstance(with_b, EnvGroup)
    assert [(v.key, v.value) for v in with_b.env_vars] == [("B", "2"), ("A", "1")]
    assert read_b == EnvVar(key="B", value="2")
    assert removed_a.status_code == 204
    assert isinstance(fetched, EnvGroup)
    assert [(v.key, v.value) for v in fetched.env_vars] == [("B", "2")]
    stored = state_group(emulators, group_id)
    assert stored is not None
    assert stored["name"] == "common"
    assert stored["envVars"] == [{"key": "B", "value": "2"}]
    assert isinstance(listed, list)
    assert all(isinstance(meta, EnvGroupMeta) for meta in listed)
    assert [meta.id for meta in listed] == [group_id]

    deleted = delete_env_group.sync_detailed(group_id, client=sdk)

    assert deleted.status_code == 204
    assert state_group(emulators, group_id) is None


# Services, owners and deploys.


def test_sdk_lists_services(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    everything = list_services.sync(client=sdk)
    workers = list_services.sync(client=sdk, type_=[ServiceType.BACKGROUND_WORKER])

    assert isinstance(everything, list)
    assert all(isinstance(item, ServiceWithCursor) for item in everything)
    assert {item.service.id for item in everything} == {
        service["id"] for service in emulators.state("render")["services"]
    }
    assert isinstance(workers, list)
    assert [item.service.id for item in workers] == [WORKER_ID]
    assert workers[0].service.type_ is ServiceType.BACKGROUND_WORKER


def test_sdk_lists_owners(emulators: EmulatorSet, sdk: AuthenticatedClient) -> None:
    owners = list_owners.sync(client=sdk)

    assert isinstance(owners, list)
    assert all(isinstance(item, OwnerWithCursor) for item in owners)
    by_id = {item.owner.id: item.owner for item in owners if isinstance(item.owner, Owner)}
    assert set(by_id) == {owner["id"] for owner in emulators.state("render")["owners"]}
    assert by_id[TEAM_ID].type_ is OwnerType.TEAM
    assert by_id[USER_ID].type_ is OwnerType.USER
    assert by_id[USER_ID].email == "user@example.com"
    assert by_id[USER_ID].two_factor_auth_enabled is False
    assert by_id[TEAM_ID].two_factor_auth_enabled is UNSET


@functools.cache
def recorded_deploy_text() -> str:
    cassette = shared_path("specs", "render", "cassettes", "webservice_env_var_cassette.yaml")
    for interaction in yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"]:
        request = interaction["request"]
        if request["method"] == "POST" and request["url"].endswith("/deploys"):
            return str(interaction["response"]["body"])
    raise AssertionError("the cassette has no deploy")


def recorded_deploy() -> dict[str, Any]:
    deploy: dict[str, Any] = json.loads(recorded_deploy_text())
    return deploy


def test_sdk_deploy_model_rejects_new_deploys(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    # A deploy that has just started has `"commit": null` (an image deploy) and
    # `"finishedAt": null` in Render's recorded response. The generated Deploy model passes
    # both to parsers that cannot take None, so it fails on Render's own response.
    with pytest.raises(TypeError):
        Deploy.from_dict(recorded_deploy())

    with pytest.raises(TypeError):
        create_deploy.sync(SERVICE_ID, client=sdk, body=CreateDeployBody())

    deploys = emulators.state("render")["services"][0]["deploys"]
    assert len(deploys) == 1
    assert deploys[0]["finishedAt"] is None


def test_sdk_parses_a_finished_deploy(emulators: EmulatorSet) -> None:
    deploy = {**recorded_deploy(), "finishedAt": "2024-12-02T18:26:00.000000Z"}
    deploy.pop("commit")

    parsed = Deploy.from_dict(deploy)

    assert parsed.id == deploy["id"]


# Failed and partial reads.


def add_fault(emulators: EmulatorSet, fault: dict[str, Any]) -> None:
    rule = {"match": {"method": "GET", "path": "/env-vars$"}, "times": 1, "fault": fault}
    emulators.add_fault("render", rule)


def test_sdk_truncated_page_raises_httpx_error(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    add_fault(emulators, {"truncate": True})

    with pytest.raises(httpx.RemoteProtocolError):
        get_env_vars_for_service.sync(SERVICE_ID, client=sdk, limit=100)


def test_sdk_malformed_page_raises_decode_error(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    add_fault(emulators, {"status": 200, "raw_body": "[{not json"})

    with pytest.raises(json.JSONDecodeError):
        get_env_vars_for_service.sync(SERVICE_ID, client=sdk, limit=100)


def test_sdk_item_without_cursor_raises_key_error(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    add_fault(emulators, {"status": 200, "body": [{"envVar": {"key": "A", "value": "1"}}]})

    with pytest.raises(KeyError):
        get_env_vars_for_service.sync(SERVICE_ID, client=sdk, limit=100)


def test_sdk_returns_rate_limit_error_without_retry(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    add_fault(
        emulators,
        {"status": 429, "headers": {"Retry-After": "1"}, "body": {"message": "rate limit"}},
    )

    result = get_env_vars_for_service.sync(SERVICE_ID, client=sdk, limit=100)

    assert isinstance(result, Error)
    assert result.message == "rate limit"
    assert len(emulators.requests("render")) == 1


def test_sdk_undeclared_status_is_none_by_default(
    emulators: EmulatorSet, sdk: AuthenticatedClient
) -> None:
    add_fault(emulators, {"status": 502, "body": {"message": "bad gateway"}})
    add_fault(emulators, {"status": 502, "body": {"message": "bad gateway"}})
    strict = AuthenticatedClient(
        base_url=emulators.render_url, token=TOKEN, raise_on_unexpected_status=True
    )

    lenient_result = get_env_vars_for_service.sync(SERVICE_ID, client=sdk, limit=100)

    assert lenient_result is None
    with strict, pytest.raises(errors.UnexpectedStatus):
        get_env_vars_for_service.sync(SERVICE_ID, client=strict, limit=100)
