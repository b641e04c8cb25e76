"""The Render provider against the Render emulator, over real loopback sockets.

Request counts come from the emulator's request log. Waits go to a fake clock, so a test
that meets a 429 records the wait instead of spending it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from envsync.config import Settings, TargetSpec
from envsync.emulators import EmulatorSet
from envsync.errors import (
    AuthError,
    IncompleteReadError,
    ProviderError,
    ProviderUnavailableError,
    ResolutionError,
)
from envsync.filters import KeyFilter
from envsync.http import CallRecord, call_observers
from envsync.ledger import LedgerHasher
from envsync.model import Change, Op, Plan, RemoteState, SecretValue, TargetRef
from envsync.planner import PlanInput, plan_target
from envsync.providers.render import RenderProvider
from tests.providers.render.mock_api import (
    FakeClock,
    ProgressLog,
    change,
    group_spec,
    numbered,
    service_spec,
)

Result = TypeVar("Result")

OWNER = "tea-d0it0team000000000a"
OTHER_OWNER = "tea-d0it0team000000000b"
SERVICE = "srv-d0it0api0000000000a"
GROUP = "evg-d0it0shared00000000a"
WRITES = ("PUT", "POST", "DELETE", "PATCH")


def seed_render(
    emulators: EmulatorSet,
    env_vars: Sequence[tuple[str, str]] = (),
    *,
    services: Sequence[Mapping[str, Any]] = (),
    groups: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Seed one team with service `api` holding `env_vars`, plus any extra services."""
    api = {
        "id": SERVICE,
        "name": "api",
        "ownerId": OWNER,
        "type": "web_service",
        "envVars": [{"key": key, "value": value} for key, value in env_vars],
    }
    emulators.seed(
        {
            "render": {
                "tokens": [emulators.render_token],
                "owners": [
                    {"id": OWNER, "name": "Team A", "type": "team"},
                    {"id": OTHER_OWNER, "name": "Team B", "type": "team"},
                ],
                "services": [api, *services],
                "envGroups": list(groups),
            }
        }
    )


def other_service(service_id: str, name: str, owner: str = OWNER) -> dict[str, Any]:
    return {"id": service_id, "name": name, "ownerId": owner, "type": "web_service", "envVars": []}


def shared_group(env_vars: Sequence[tuple[str, str]], service_ids: Sequence[str]) -> dict[str, Any]:
    return {
        "id": GROUP,
        "name": "shared",
        "ownerId": OWNER,
        "envVars": [{"key": key, "value": value} for key, value in env_vars],
        "serviceIds": list(service_ids),
    }


def make_provider(
    emulators: EmulatorSet, clock: FakeClock, token: str | None = None, **settings: Any
) -> RenderProvider:
    values: dict[str, Any] = {
        "RENDER_API_URL": emulators.render_url,
        "ENVSYNC_MAX_RETRIES": 2,
        "ENVSYNC_RETRY_BASE_S": 0,
        "ENVSYNC_RETRY_MAX_S": 0,
    }
    values.update(settings)
    return RenderProvider(
        Settings(**values),
        SecretValue(token or emulators.render_token),
        sleep=clock.sleep,
        clock=clock.time,
    )


def run_with(
    emulators: EmulatorSet,
    action: Callable[[RenderProvider], Awaitable[Result]],
    *,
    clock: FakeClock | None = None,
    token: str | None = None,
    **settings: Any,
) -> Result:
    async def go() -> Result:
        provider = make_provider(emulators, clock or FakeClock(), token, **settings)
        try:
            return await action(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def logged(emulators: EmulatorSet, *methods: str) -> list[dict[str, Any]]:
    return [entry for entry in emulators.requests("render") if entry["method"] in methods]


def stored_env_vars(emulators: EmulatorSet, service_id: str = SERVICE) -> list[tuple[str, str]]:
    (service,) = [s for s in emulators.state("render")["services"] if s["id"] == service_id]
    return [(item["key"], item["value"]) for item in service["envVars"]]


def stored_group_vars(emulators: EmulatorSet) -> dict[str, str]:
    (group,) = [g for g in emulators.state("render")["envGroups"] if g["id"] == GROUP]
    return {item["key"]: item["value"] for item in group["envVars"]}


def service_ref() -> TargetRef:
    return TargetRef(provider="render", kind="service", id=SERVICE, name=f"render/{SERVICE}")


def group_ref() -> TargetRef:
    return TargetRef(provider="render", kind="env_group", id=GROUP, name=f"render-group/{GROUP}")


def read(emulators: EmulatorSet, target: TargetRef, **settings: Any) -> RemoteState:
    async def action(provider: RenderProvider) -> RemoteState:
        return await provider.read(target)

    return run_with(emulators, action, **settings)


def plan_for(
    spec: TargetSpec, remote: RemoteState, canonical: Mapping[str, str], provider: RenderProvider
) -> Plan:
    return plan_target(
        PlanInput(
            target=remote.target,
            spec=spec,
            canonical={key: SecretValue(value) for key, value in canonical.items()},
            remote=remote,
            ledger={},
            rules=provider.rules,
            hasher=LedgerHasher(b"k" * 32),
        )
    )


def sync(
    emulators: EmulatorSet,
    spec: TargetSpec,
    target: TargetRef,
    canonical: Mapping[str, str],
    **settings: Any,
) -> Plan:
    """Read, plan and write one target the way an apply does, and return the plan."""

    async def action(provider: RenderProvider) -> Plan:
        remote = await provider.read(target)
        plan = plan_for(spec, remote, canonical, provider)
        progress = ProgressLog()
        await provider.write(remote.target, spec, remote, plan.pending, progress, None)
        return plan

    return run_with(emulators, action, **settings)


BRIDGE_ONLY = KeyFilter(("BRIDGE_",), ())


@pytest.mark.parametrize(
    ("count", "expected_requests"),
    [(0, 1), (1, 1), (99, 1), (100, 2), (101, 2), (130, 2), (250, 3)],
)
def test_read_page_count_at_boundaries(
    emulators: EmulatorSet, count: int, expected_requests: int
) -> None:
    env_vars = numbered(count)
    seed_render(emulators, env_vars)

    state = read(emulators, service_ref())

    assert len(logged(emulators, "GET")) == expected_requests
    assert sorted(state.variables) == sorted(key for key, _ in env_vars)
    values = {key: state.variables[key].values[0].value for key, _ in env_vars}
    assert values == {key: SecretValue(value) for key, value in env_vars}


def test_bulk_sync_keeps_all_130_variables(emulators: EmulatorSet) -> None:
    before = [*numbered(129, prefix="APP_"), ("BRIDGE_VERSION", "1.0.0")]
    seed_render(emulators, before)
    spec = service_spec(key_filter=BRIDGE_ONLY)

    plan = sync(emulators, spec, service_ref(), {"BRIDGE_VERSION": "1.0.1"})

    assert [(c.key, c.op) for c in plan.pending] == [("BRIDGE_VERSION", Op.UPDATE)]
    after = dict(stored_env_vars(emulators))
    assert len(after) == 130
    assert after == {**dict(before), "BRIDGE_VERSION": "1.0.1"}
    assert len(logged(emulators, *WRITES)) == 1


def test_bulk_sync_keeps_unmanaged_database_url(emulators: EmulatorSet) -> None:
    seed_render(emulators, [("DATABASE_URL", "postgres://db/prod"), ("BRIDGE_VERSION", "1")])
    spec = service_spec(key_filter=BRIDGE_ONLY)

    sync(emulators, spec, service_ref(), {"BRIDGE_VERSION": "2"})

    after = dict(stored_env_vars(emulators))
    assert after["DATABASE_URL"] == "postgres://db/prod"
    assert after["BRIDGE_VERSION"] == "2"


def test_second_sync_writes_nothing(emulators: EmulatorSet) -> None:
    seed_render(emulators, [*numbered(130, prefix="APP_"), ("BRIDGE_VERSION", "1")])
    spec = service_spec(key_filter=BRIDGE_ONLY)
    sync(emulators, spec, service_ref(), {"BRIDGE_VERSION": "2", "BRIDGE_NEW": "n"})
    writes_before = len(logged(emulators, *WRITES))

    plan = sync(emulators, spec, service_ref(), {"BRIDGE_VERSION": "2", "BRIDGE_NEW": "n"})

    assert plan.pending == ()
    assert len(logged(emulators, *WRITES)) == writes_before


def test_bulk_write_carries_ledger_in_one_put(emulators: EmulatorSet) -> None:
    seed_render(emulators, [*numbered(130, prefix="APP_"), ("BRIDGE_A", "1")])

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        changes = [change("BRIDGE_A", Op.UPDATE, new="2", old="1")]
        await provider.write(
            remote.target, service_spec(), remote, changes, ProgressLog(), lambda: '{"v": 1}'
        )

    run_with(emulators, action)

    assert len(logged(emulators, *WRITES)) == 1
    after = dict(stored_env_vars(emulators))
    assert len(after) == 132
    assert (after["BRIDGE_A"], after["ENVSYNC_OWNERSHIP"]) == ("2", '{"v": 1}')


def test_per_key_sync_sends_one_request_per_change(emulators: EmulatorSet) -> None:
    seed_render(emulators, [*numbered(130, prefix="APP_"), ("BRIDGE_A", "1"), ("BRIDGE_B", "1")])
    spec = service_spec(key_filter=BRIDGE_ONLY, write_mode="per-key")

    plan = sync(emulators, spec, service_ref(), {"BRIDGE_A": "2", "BRIDGE_B": "1", "BRIDGE_C": "3"})

    writes = logged(emulators, *WRITES)
    assert len(writes) == len(plan.pending) == 2
    assert [entry["keys"] for entry in writes] == [["BRIDGE_A"], ["BRIDGE_C"]]
    after = dict(stored_env_vars(emulators))
    assert len(after) == 133
    assert (after["BRIDGE_A"], after["BRIDGE_C"]) == ("2", "3")


def test_per_key_delete_removes_only_that_key(emulators: EmulatorSet) -> None:
    seed_render(emulators, [("APP_KEEP", "k"), ("BRIDGE_OLD", "x")])

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        changes = [change("BRIDGE_OLD", Op.DELETE, old="x")]
        spec = service_spec(write_mode="per-key")
        await provider.write(remote.target, spec, remote, changes, ProgressLog(), None)

    run_with(emulators, action)

    assert stored_env_vars(emulators) == [("APP_KEEP", "k")]
    assert [entry["method"] for entry in logged(emulators, *WRITES)] == ["DELETE"]


def test_group_read_is_one_call(emulators: EmulatorSet) -> None:
    seed_render(emulators, groups=[shared_group(numbered(150), [SERVICE])])

    state = read(emulators, group_ref())

    assert len(emulators.requests("render")) == 1
    assert len(state.variables) == 150
    assert state.target.name == "render-group/shared"
    assert state.target.extra["service_ids"] == SERVICE


def test_group_sync_writes_per_key(emulators: EmulatorSet) -> None:
    group = shared_group([("APP_KEEP", "k"), ("BRIDGE_A", "1")], [SERVICE])
    seed_render(emulators, groups=[group])
    spec = group_spec(key_filter=BRIDGE_ONLY)

    sync(emulators, spec, group_ref(), {"BRIDGE_A": "2", "BRIDGE_B": "3"})

    writes = logged(emulators, *WRITES)
    assert [(entry["method"], entry["keys"]) for entry in writes] == [
        ("PUT", ["BRIDGE_A"]),
        ("PUT", ["BRIDGE_B"]),
    ]
    assert stored_group_vars(emulators) == {"APP_KEEP": "k", "BRIDGE_A": "2", "BRIDGE_B": "3"}


def test_group_ledger_written_last(emulators: EmulatorSet) -> None:
    seed_render(emulators, groups=[shared_group([("BRIDGE_A", "1")], [SERVICE])])

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(group_ref())
        changes = [change("BRIDGE_A", Op.UPDATE, new="2", old="1")]
        await provider.write(
            remote.target, group_spec(), remote, changes, ProgressLog(), lambda: '{"v": 1}'
        )

    run_with(emulators, action)

    writes = logged(emulators, *WRITES)
    assert [entry["keys"] for entry in writes] == [["BRIDGE_A"], ["ENVSYNC_OWNERSHIP"]]
    assert stored_group_vars(emulators)["ENVSYNC_OWNERSHIP"] == '{"v": 1}'


def fail_read_then_write(emulators: EmulatorSet, **options: Any) -> ProviderError:
    """Run an apply's read and, only if it succeeds, its write; return the error raised."""

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        changes = [change("BRIDGE_NEW", Op.CREATE, new="n")]
        await provider.write(remote.target, service_spec(), remote, changes, ProgressLog(), None)

    with pytest.raises(ProviderError) as raised:
        run_with(emulators, action, **options)
    return raised.value


def test_read_401_stops_before_any_write(emulators: EmulatorSet) -> None:
    seed_render(emulators, numbered(130))

    error = fail_read_then_write(emulators, token="rnd_notAKnownToken000000000000")

    assert isinstance(error, AuthError)
    assert error.status == 401
    assert logged(emulators, *WRITES) == []
    assert len(stored_env_vars(emulators)) == 130


def test_read_500_stops_before_any_write(emulators: EmulatorSet) -> None:
    seed_render(emulators, numbered(130))
    emulators.add_fault(
        "render",
        {
            "match": {"method": "GET", "path": "/env-vars"},
            "times": 10,
            "fault": {"status": 500, "body": {"message": "internal error"}},
        },
    )

    error = fail_read_then_write(emulators)

    assert isinstance(error, ProviderUnavailableError)
    assert error.status == 500
    assert logged(emulators, *WRITES) == []


def test_read_timeout_stops_before_any_write(emulators: EmulatorSet) -> None:
    seed_render(emulators, numbered(10))
    emulators.add_fault(
        "render",
        {
            "match": {"method": "GET", "path": "/env-vars"},
            "times": 3,
            "fault": {"latency_ms": 1500},
        },
    )

    error = fail_read_then_write(emulators, ENVSYNC_HTTP_TIMEOUT_S=0.2)

    assert isinstance(error, ProviderUnavailableError)
    assert "timed out" in error.message
    assert logged(emulators, *WRITES) == []


@contextmanager
def fault_after_first_call(emulators: EmulatorSet, rule: Mapping[str, Any]) -> Iterator[None]:
    """Add a fault rule as soon as the first provider call finishes, so it hits the second."""

    def observe(record: CallRecord) -> None:
        call_observers.remove(observe)
        emulators.add_fault("render", rule)

    call_observers.append(observe)
    try:
        yield
    finally:
        if observe in call_observers:
            call_observers.remove(observe)


@pytest.mark.parametrize(
    "fault",
    [
        {"repeat_cursor": True},
        {"truncate": True},
        {"drop": True},
        {"status": 200, "raw_body": '[{"envVar": '},
        {"status": 200, "body": {"envVars": []}},
        {"status": 200, "body": [{"envVar": {"key": "K"}, "cursor": "c"}]},
    ],
    ids=["repeated cursor", "truncated", "dropped", "malformed json", "object", "no value"],
)
def test_bad_second_page_gives_no_partial_state(
    emulators: EmulatorSet, fault: dict[str, Any]
) -> None:
    seed_render(emulators, numbered(250))
    rule = {"match": {"method": "GET", "path": "/env-vars"}, "times": 10, "fault": fault}

    with fault_after_first_call(emulators, rule):
        error = fail_read_then_write(emulators)

    assert len(logged(emulators, "GET")) >= 2
    assert logged(emulators, *WRITES) == []
    # A body cut short or a dropped connection fails in transport, before any parsing.
    in_transport = fault.get("drop") or fault.get("truncate")
    expected = ProviderUnavailableError if in_transport else IncompleteReadError
    assert isinstance(error, expected)


def test_error_text_holds_no_token_or_query(emulators: EmulatorSet) -> None:
    seed_render(emulators, numbered(130))
    bad_token = "rnd_wrongTokenForThisTest00000001"

    error = fail_read_then_write(emulators, token=bad_token)

    for text in (str(error), repr(error), error.path, error.detail):
        assert bad_token not in text
        assert emulators.render_token not in text
        assert "?" not in text
        assert "limit=" not in text


def write_sixty_with_429_on_22nd(
    emulators: EmulatorSet, limited: dict[str, Any], clock: FakeClock
) -> ProgressLog:
    seed_render(emulators, [("APP_KEEP", "k")])
    progress = ProgressLog()
    changes = [change(f"BRIDGE_{index:02d}", Op.CREATE, new=f"v{index}") for index in range(60)]

    async def on_write(done: Change, updated_at: str | None) -> None:
        await progress(done, updated_at)
        if len(progress.keys) == 21:
            rule = {"match": {"method": "PUT", "path": "/env-vars/"}, "times": 1, "fault": limited}
            emulators.add_fault("render", rule)

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        spec = service_spec(write_mode="per-key")
        await provider.write(remote.target, spec, remote, changes, on_write, None)

    run_with(emulators, action, clock=clock)
    return progress


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Ratelimit-Limit": "100", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "9"}, 9.0),
    ],
    ids=["Retry-After", "Ratelimit-Reset"],
)
def test_429_on_22nd_write_waits_and_finishes(
    emulators: EmulatorSet, headers: dict[str, str], expected_wait: float
) -> None:
    clock = FakeClock()
    limited = {"status": 429, "headers": headers, "body": {"message": "rate limit exceeded"}}

    progress = write_sixty_with_429_on_22nd(emulators, limited, clock)

    assert len(progress.keys) == 60
    statuses = [entry["status"] for entry in logged(emulators, "PUT")]
    assert statuses.count(429) == 1
    # The fault is set once 21 writes are confirmed; writes of other keys already in flight
    # (per-key writes of a service run at once) may reach the platform before it.
    assert statuses.index(429) >= 21
    assert len(stored_env_vars(emulators)) == 61
    assert max(clock.sleeps) >= expected_wait


def test_bulk_put_429_waits_and_finishes(emulators: EmulatorSet) -> None:
    seed_render(emulators, numbered(130))
    clock = FakeClock()
    limited = {"status": 429, "headers": {"Retry-After": "5"}, "body": {"error": "rate limit"}}
    emulators.add_fault("render", {"match": {"method": "PUT"}, "times": 1, "fault": limited})

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        changes = [change("BRIDGE_NEW", Op.CREATE, new="n")]
        await provider.write(remote.target, service_spec(), remote, changes, ProgressLog(), None)

    run_with(emulators, action, clock=clock)

    assert [entry["status"] for entry in logged(emulators, "PUT")] == [429, 200]
    assert len(stored_env_vars(emulators)) == 131
    assert max(clock.sleeps) >= 5


def test_empty_value_is_never_sent(emulators: EmulatorSet) -> None:
    seed_render(emulators, [("APP_KEEP", "k")])

    async def action(provider: RenderProvider) -> None:
        remote = await provider.read(service_ref())
        changes = [Change(key="BRIDGE_EMPTY", op=Op.CREATE, new=SecretValue(""))]
        await provider.write(remote.target, service_spec(), remote, changes, ProgressLog(), None)

    with pytest.raises(ProviderError) as raised:
        run_with(emulators, action)

    assert "BRIDGE_EMPTY" in raised.value.message
    assert logged(emulators, *WRITES) == []


def resolve(emulators: EmulatorSet, spec: TargetSpec) -> list[TargetRef]:
    async def action(provider: RenderProvider) -> list[TargetRef]:
        return await provider.resolve(spec)

    return run_with(emulators, action)


def test_resolve_by_id_makes_no_call(emulators: EmulatorSet) -> None:
    seed_render(emulators)

    (target,) = resolve(emulators, service_spec(SERVICE, "id"))

    assert target.name == f"render/{SERVICE}"
    assert emulators.requests("render") == []


def test_resolve_by_name(emulators: EmulatorSet) -> None:
    seed_render(emulators, services=[other_service("srv-d0it0web0000000000a", "web")])

    (target,) = resolve(emulators, service_spec("api", "name"))

    assert (target.id, target.name) == (SERVICE, "render/api")


def test_resolve_by_name_scoped_to_owner(emulators: EmulatorSet) -> None:
    twin = other_service("srv-d0it0api0000000000b", "api", owner=OTHER_OWNER)
    seed_render(emulators, services=[twin])

    (target,) = resolve(emulators, service_spec("api", "name", account_id=OTHER_OWNER))

    assert target.id == "srv-d0it0api0000000000b"


def test_ambiguous_name_lists_both_services(emulators: EmulatorSet) -> None:
    twin = other_service("srv-d0it0api0000000000b", "api", owner=OTHER_OWNER)
    seed_render(emulators, services=[twin])

    with pytest.raises(ResolutionError) as raised:
        resolve(emulators, service_spec("api", "name"))

    assert sorted(raised.value.candidates) == [f"api ({SERVICE})", "api (srv-d0it0api0000000000b)"]


def test_auto_resolves_the_only_service(emulators: EmulatorSet) -> None:
    seed_render(emulators)

    (target,) = resolve(emulators, service_spec("auto", "auto"))

    assert (target.id, target.name) == (SERVICE, "render/api")


def test_auto_with_several_services_lists_them(emulators: EmulatorSet) -> None:
    seed_render(emulators, services=[other_service("srv-d0it0web0000000000a", "web")])

    with pytest.raises(ResolutionError) as raised:
        resolve(emulators, service_spec("auto", "auto"))

    assert sorted(raised.value.candidates) == [f"api ({SERVICE})", "web (srv-d0it0web0000000000a)"]
    assert "RENDER_SERVICE_ID or RENDER_SERVICE_NAME" in str(raised.value)


def test_auto_scoped_to_owner_picks_its_service(emulators: EmulatorSet) -> None:
    web = other_service("srv-d0it0web0000000000a", "web", owner=OTHER_OWNER)
    seed_render(emulators, services=[web])

    (target,) = resolve(emulators, service_spec("auto", "auto", account_id=OTHER_OWNER))

    assert target.id == "srv-d0it0web0000000000a"


def test_service_redeploy_posts_one_deploy(emulators: EmulatorSet) -> None:
    seed_render(emulators)

    async def action(provider: RenderProvider) -> None:
        await provider.redeploy(service_ref())

    run_with(emulators, action)

    deploys = logged(emulators, "POST")
    assert [(entry["path"], entry["status"]) for entry in deploys] == [
        (f"/v1/services/{SERVICE}/deploys", 201)
    ]


def test_group_redeploy_deploys_each_linked_service(emulators: EmulatorSet) -> None:
    web = other_service("srv-d0it0web0000000000a", "web")
    seed_render(emulators, services=[web], groups=[shared_group([], [SERVICE, web["id"]])])

    async def action(provider: RenderProvider) -> None:
        state = await provider.read(group_ref())
        await provider.redeploy(state.target)

    run_with(emulators, action)

    assert sorted(entry["path"] for entry in logged(emulators, "POST")) == sorted(
        [f"/v1/services/{SERVICE}/deploys", "/v1/services/srv-d0it0web0000000000a/deploys"]
    )
    assert len(logged(emulators, "GET")) == 1
