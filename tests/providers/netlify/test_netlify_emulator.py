"""The Netlify provider against the Netlify emulator, over real loopback HTTP.

Request counts come from the emulator's request log, so they count what reached the
server, retries included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from envsync.config import OWNERSHIP_KEY, Settings, TargetSpec
from envsync.emulators import EmulatorSet
from envsync.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailableError,
    ResolutionError,
    WriteOutcomeUnknownError,
)
from envsync.model import (
    Change,
    LedgerEntry,
    LedgerSlot,
    Op,
    Plan,
    RemoteState,
    RemoteValue,
    SecretValue,
    TargetRef,
)
from envsync.planner import PlanInput, PlanOptions, plan_target
from envsync.providers.netlify import NetlifyProvider
from envsync.providers.netlify.rules import NetlifyRules

from .mock_api import run

ACCOUNT_ID = "5f1e2d3c4b5a69788796a5b4"
SITE_ID = "3f2a9c81-be07-4d5e-8f9a-0b1c2d3e4f50"
OTHER_SITE_ID = "9d8c7b6a-5f4e-4d3c-8b2a-190817263544"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]


class Hasher:
    def hash(self, value: SecretValue) -> str:
        return hmac.new(b"test-ledger-key", value.reveal().encode(), hashlib.sha256).hexdigest()


class Progress:
    def __init__(self) -> None:
        self.written: list[tuple[str, str | None, str | None]] = []

    async def __call__(self, change: Change, updated_at: str | None) -> None:
        self.written.append((change.key, change.context, updated_at))


def env(
    key: str, *values: dict[str, Any], is_secret: bool = False, scopes: Any = None
) -> dict[str, Any]:
    return {
        "key": key,
        "scopes": ALL_SCOPES if scopes is None else scopes,
        "is_secret": is_secret,
        "values": list(values),
    }


def val(context: str, text: str) -> dict[str, Any]:
    if context.startswith("branch:"):
        return {
            "context": "branch",
            "context_parameter": context.removeprefix("branch:"),
            "value": text,
        }
    return {"context": context, "value": text}


def site(
    site_id: str, name: str, *variables: dict[str, Any], account: str = ACCOUNT_ID
) -> dict[str, Any]:
    return {
        "id": site_id,
        "name": name,
        "account_id": account,
        "account_slug": "team" if account == ACCOUNT_ID else "other",
        "env": list(variables),
    }


class Netlify:
    """The emulator seen from a test: seeding, faults, the request log and the provider."""

    def __init__(self, emulators: EmulatorSet) -> None:
        self.emulators = emulators
        self.url: str = emulators.netlify_url
        self.token: str = emulators.netlify_token

    def seed(
        self, *variables: dict[str, Any], sites: Sequence[dict[str, Any]] | None = None
    ) -> None:
        accounts = [
            {"id": ACCOUNT_ID, "slug": "team", "name": "Team"},
            {"id": "0" * 24, "slug": "other", "name": "Other"},
        ]
        document = {
            "tokens": [self.token],
            "accounts": accounts,
            "sites": list(sites) if sites is not None else [site(SITE_ID, "web", *variables)],
        }
        self.emulators.seed({"netlify": document})

    def fault(self, method: str, path: str, fault: dict[str, Any], times: int = 50) -> None:
        rule = {"match": {"method": method, "path": path}, "times": times, "fault": fault}
        self.emulators.add_fault("netlify", rule)

    def configure(self, **options: Any) -> None:
        self.emulators.configure("netlify", **options)

    async def patch_as_a_person(self, key: str, context: str, text: str) -> None:
        """Change one value the way the Netlify UI would, outside envsync."""
        async with httpx.AsyncClient() as client:
            response = await client.patch(
                f"{self.url}/accounts/{ACCOUNT_ID}/env/{key}",
                params={"site_id": SITE_ID},
                headers={"Authorization": f"Bearer {self.token}"},
                json={"context": context, "value": text},
            )
        response.raise_for_status()

    async def create_as_a_person(self, key: str, text: str) -> None:
        """Create a variable outside envsync, as a person in the Netlify UI would."""
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.url}/accounts/{ACCOUNT_ID}/env",
                params={"site_id": SITE_ID},
                headers={"Authorization": f"Bearer {self.token}"},
                json=[{"key": key, "values": [{"context": "all", "value": text}]}],
            )
        response.raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return list(self.emulators.requests("netlify"))

    def writes(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log() if entry["method"] != "GET"]

    def variables(self, site_id: str = SITE_ID) -> dict[str, dict[str, Any]]:
        state = self.emulators.state("netlify")
        (found,) = [item for item in state["sites"] if item["id"] == site_id]
        return {item["key"]: item for item in found["env"]}

    def values(self, key: str) -> dict[str, str]:
        """The stored values of a key by envsync context, secret values in full."""
        result = {}
        for item in self.variables()[key]["values"]:
            context = item["context"]
            if context == "branch":
                context = f"branch:{item['context_parameter']}"
            result[context] = item.get("value", "")
        return result

    def provider(self, token: str | None = None, **settings: Any) -> NetlifyProvider:
        values: dict[str, Any] = {
            "NETLIFY_API_URL": self.url,
            "ENVSYNC_MAX_RETRIES": 2,
            "ENVSYNC_RETRY_BASE_S": 0,
            "ENVSYNC_RETRY_MAX_S": 0,
        }
        values.update(settings)
        return NetlifyProvider(
            Settings(**values), SecretValue(token or self.token), sleep=_no_sleep
        )


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def netlify(emulators: EmulatorSet) -> Netlify:
    return Netlify(emulators)


def spec(
    contexts: tuple[str, ...] = ("all",),
    *,
    secret_keys: tuple[str, ...] = (),
    scopes: tuple[str, ...] = tuple(ALL_SCOPES),
    selector: str = SITE_ID,
) -> TargetSpec:
    kind = "auto" if selector == "auto" else "id"
    return TargetSpec(
        "netlify",
        "site",
        selector,
        kind,  # type: ignore[arg-type]
        contexts=contexts,
        secret_keys=secret_keys,
        scopes=scopes,
    )


async def resolve_and_read(
    provider: NetlifyProvider, target_spec: TargetSpec
) -> tuple[TargetRef, RemoteState]:
    (target,) = await provider.resolve(target_spec)
    return target, await provider.read(target)


def plan(
    target: TargetRef,
    target_spec: TargetSpec,
    remote: RemoteState,
    canonical: dict[str, str],
    ledger: dict[LedgerSlot, LedgerEntry],
    allow_deletions: bool = False,
) -> Plan:
    return plan_target(
        PlanInput(
            target=target,
            spec=target_spec,
            canonical={key: SecretValue(text) for key, text in canonical.items()},
            remote=remote,
            ledger=ledger,
            rules=NetlifyRules(),
            hasher=Hasher(),
            options=PlanOptions(allow_deletions=allow_deletions),
        )
    )


async def sync(
    provider: NetlifyProvider,
    target_spec: TargetSpec,
    canonical: dict[str, str],
    *,
    ledger: dict[LedgerSlot, LedgerEntry] | None = None,
    allow_deletions: bool = False,
    ledger_document: str | None = None,
) -> tuple[list[Change], Progress]:
    """Resolve, read, plan and write as the engine does; return the pending changes."""
    target, remote = await resolve_and_read(provider, target_spec)
    planned = plan(target, target_spec, remote, canonical, ledger or {}, allow_deletions)
    progress = Progress()
    document = (lambda: ledger_document) if ledger_document is not None else None
    pending = list(planned.pending)
    await provider.write(target, target_spec, remote, pending, progress, document)
    return pending, progress


def owned(
    *slots: tuple[str, str | None, str], updated_at: str | None = None
) -> dict[LedgerSlot, LedgerEntry]:
    """Ledger entries saying envsync wrote each (key, context, value)."""
    entries: dict[LedgerSlot, LedgerEntry] = {}
    for key, context, text in slots:
        value_hash = Hasher().hash(SecretValue(text))
        entries[(key, context)] = LedgerEntry(key, context, value_hash, updated_at, "2026-01-01")
    return entries


def query_of(entry: dict[str, Any]) -> dict[str, list[str]]:
    query = entry.get("query") or {}
    if isinstance(query, str):
        return parse_qs(query)
    return {key: value if isinstance(value, list) else [value] for key, value in query.items()}


def test_read_by_site_id_costs_two_calls(netlify: Netlify) -> None:
    netlify.seed(env("BRIDGE_A", val("all", "a")))

    async def scenario() -> RemoteState:
        provider = netlify.provider()
        try:
            return (await resolve_and_read(provider, spec()))[1]
        finally:
            await provider.aclose()

    state = run(scenario())

    paths = [(entry["method"], entry["path"]) for entry in netlify.log()]
    assert paths == [
        ("GET", f"/api/v1/sites/{SITE_ID}"),
        ("GET", f"/api/v1/accounts/{ACCOUNT_ID}/env"),
    ]
    assert state.variables["BRIDGE_A"].value_for("all") is not None


@pytest.mark.parametrize("patch_status", [200, 201])
def test_creates_and_updates_cost_one_post_plus_patches(
    netlify: Netlify, patch_status: int
) -> None:
    netlify.configure(patch_status=patch_status)
    netlify.seed(
        env("BRIDGE_A", val("production", "a"), val("branch-deploy", "beta")),
        env("BRIDGE_B", val("production", "b")),
    )
    canonical = {
        "BRIDGE_A": "a2",
        "BRIDGE_B": "b2",
        "BRIDGE_C": "c",
        "BRIDGE_D": "d",
        "BRIDGE_E": "e",
    }

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(provider, spec(("production",)), canonical)
        finally:
            await provider.aclose()

    run(scenario())

    writes = netlify.writes()
    assert [entry["method"] for entry in writes] == ["POST", "PATCH", "PATCH"]
    assert sorted(writes[0]["keys"]) == ["BRIDGE_C", "BRIDGE_D", "BRIDGE_E"]
    assert netlify.values("BRIDGE_A") == {"production": "a2", "branch-deploy": "beta"}


def test_every_env_call_carries_site_id(netlify: Netlify) -> None:
    netlify.seed(
        env("BRIDGE_A", val("production", "a"), val("branch-deploy", "beta")),
        env("BRIDGE_GONE", val("production", "g")),
        env("BRIDGE_PART", val("production", "p"), val("branch-deploy", "beta")),
    )
    ledger = owned(
        ("BRIDGE_A", "production", "a"),
        ("BRIDGE_GONE", "production", "g"),
        ("BRIDGE_PART", "production", "p"),
    )

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(
                provider,
                spec(("production",)),
                {"BRIDGE_A": "a2", "BRIDGE_NEW": "n"},
                ledger=ledger,
                allow_deletions=True,
                ledger_document='{"entries":[]}',
            )
        finally:
            await provider.aclose()

    run(scenario())

    env_calls = [entry for entry in netlify.log() if "/env" in entry["path"]]
    assert {entry["method"] for entry in env_calls} == {"GET", "POST", "PATCH", "DELETE"}
    assert any("/value/" in entry["path"] for entry in env_calls)
    for entry in env_calls:
        assert query_of(entry).get("site_id") == [SITE_ID], entry["path"]


def test_update_and_delete_keep_other_contexts(netlify: Netlify) -> None:
    netlify.seed(
        env("BRIDGE_ENV", val("production", "prod"), val("branch-deploy", "beta")),
        env("BRIDGE_OLD", val("production", "old"), val("branch:staging", "stage")),
    )
    ledger = owned(("BRIDGE_ENV", "production", "prod"), ("BRIDGE_OLD", "production", "old"))

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(
                provider,
                spec(("production",)),
                {"BRIDGE_ENV": "prod2"},
                ledger=ledger,
                allow_deletions=True,
            )
        finally:
            await provider.aclose()

    run(scenario())

    assert netlify.values("BRIDGE_ENV") == {"production": "prod2", "branch-deploy": "beta"}
    assert netlify.values("BRIDGE_OLD") == {"branch:staging": "stage"}
    assert [entry["method"] for entry in netlify.writes()] == ["PATCH", "DELETE"]
    assert "/value/" in netlify.writes()[1]["path"]


def test_last_value_delete_removes_the_key(netlify: Netlify) -> None:
    netlify.seed(
        env("BRIDGE_OLD", val("production", "old")), env("BRIDGE_KEEP", val("production", "k"))
    )
    ledger = owned(("BRIDGE_OLD", "production", "old"))

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(
                provider,
                spec(("production",)),
                {"BRIDGE_KEEP": "k"},
                ledger=ledger,
                allow_deletions=True,
            )
        finally:
            await provider.aclose()

    run(scenario())

    (delete,) = netlify.writes()
    assert delete["method"] == "DELETE"
    assert "/value/" not in delete["path"]
    assert "BRIDGE_OLD" not in netlify.variables()


@pytest.mark.parametrize("hidden_as", ["absent", "empty"])
def test_secret_round_trips_as_all(netlify: Netlify, hidden_as: str) -> None:
    netlify.configure(secret_value=hidden_as)
    netlify.seed()
    secret_spec = spec(secret_keys=("*_TOKEN",))

    async def scenario() -> RemoteState:
        provider = netlify.provider()
        try:
            await sync(provider, secret_spec, {"BRIDGE_TOKEN": "t0k3n"})
            return (await resolve_and_read(provider, secret_spec))[1]
        finally:
            await provider.aclose()

    state = run(scenario())

    stored = netlify.variables()["BRIDGE_TOKEN"]
    assert stored["is_secret"] is True
    assert sorted(stored["scopes"]) == ["builds", "functions", "runtime"]
    assert netlify.values("BRIDGE_TOKEN") == {
        "production": "t0k3n",
        "deploy-preview": "t0k3n",
        "branch-deploy": "t0k3n",
        "dev": "",
    }
    assert state.variables["BRIDGE_TOKEN"].values == (RemoteValue("all", None, None),)


def test_unchanged_secret_is_not_rewritten(netlify: Netlify) -> None:
    netlify.seed()
    secret_spec = spec(secret_keys=("*_TOKEN",))

    async def scenario() -> list[Change]:
        provider = netlify.provider()
        try:
            _, progress = await sync(provider, secret_spec, {"BRIDGE_TOKEN": "t0k3n"})
            ((key, context, updated_at),) = progress.written
            ledger = owned((key, context, "t0k3n"), updated_at=updated_at)
            pending, _ = await sync(provider, secret_spec, {"BRIDGE_TOKEN": "t0k3n"}, ledger=ledger)
            return pending
        finally:
            await provider.aclose()

    assert run(scenario()) == []
    assert [entry["method"] for entry in netlify.writes()] == ["POST"]


def test_secret_edited_on_netlify_is_reported_not_rewritten(netlify: Netlify) -> None:
    netlify.seed()
    secret_spec = spec(secret_keys=("*_TOKEN",))

    async def scenario() -> Plan:
        provider = netlify.provider()
        try:
            _, progress = await sync(provider, secret_spec, {"BRIDGE_TOKEN": "t0k3n"})
            ((key, context, updated_at),) = progress.written
            await netlify.patch_as_a_person("BRIDGE_TOKEN", "production", "edited")
            ledger = owned((key, context, "t0k3n"), updated_at=updated_at)
            target, remote = await resolve_and_read(provider, secret_spec)
            return plan(target, secret_spec, remote, {"BRIDGE_TOKEN": "t0k3n"}, ledger)
        finally:
            await provider.aclose()

    second = run(scenario())

    assert second.pending == ()
    assert any(warning.key == "BRIDGE_TOKEN" for warning in second.warnings)


def test_secret_update_in_all_puts_the_variable(netlify: Netlify) -> None:
    netlify.seed()
    secret_spec = spec(secret_keys=("*_TOKEN",))

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(provider, secret_spec, {"BRIDGE_TOKEN": "first"})
            ledger = owned(("BRIDGE_TOKEN", "all", "first"))
            await sync(provider, secret_spec, {"BRIDGE_TOKEN": "second"}, ledger=ledger)
        finally:
            await provider.aclose()

    run(scenario())

    assert [entry["method"] for entry in netlify.writes()] == ["POST", "PUT"]
    assert set(netlify.values("BRIDGE_TOKEN").values()) == {"second", ""}


def test_all_scopes_left_out_for_free_plan(netlify: Netlify) -> None:
    netlify.seed()
    netlify.configure(free_plan=True)

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(provider, spec(), {"BRIDGE_A": "a"})
        finally:
            await provider.aclose()

    run(scenario())

    assert netlify.values("BRIDGE_A") == {"all": "a"}


def test_fewer_scopes_are_sent_explicitly(netlify: Netlify) -> None:
    netlify.seed()

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(provider, spec(scopes=("builds", "runtime")), {"BRIDGE_A": "a"})
        finally:
            await provider.aclose()

    run(scenario())

    assert sorted(netlify.variables()["BRIDGE_A"]["scopes"]) == ["builds", "runtime"]


def test_rejected_key_never_reaches_the_batch(netlify: Netlify) -> None:
    netlify.seed()

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await sync(provider, spec(), {"SITE_NAME": "x", "URL": "y", "BRIDGE_A": "a"})
        finally:
            await provider.aclose()

    run(scenario())

    (post,) = netlify.writes()
    assert post["keys"] == ["BRIDGE_A"]
    assert set(netlify.variables()) == {"BRIDGE_A"}


def test_batch_conflict_raises_and_creates_nothing(netlify: Netlify) -> None:
    netlify.seed()

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            target, remote = await resolve_and_read(provider, spec())
            # Someone creates BRIDGE_B between the read and the write.
            await netlify.create_as_a_person("BRIDGE_B", "theirs")
            changes = [
                Change("BRIDGE_A", Op.CREATE, "all", None, SecretValue("a")),
                Change("BRIDGE_B", Op.CREATE, "all", None, SecretValue("b")),
            ]
            await provider.write(target, spec(), remote, changes, Progress(), None)
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as raised:
        run(scenario())

    assert raised.value.status == 409
    assert set(netlify.variables()) == {"BRIDGE_B"}
    assert netlify.values("BRIDGE_B") == {"all": "theirs"}


READ_FAULTS = [
    (
        "status-500",
        {"status": 500, "body": {"code": 500, "message": "boom"}},
        ProviderUnavailableError,
    ),
    ("timeout", {"latency_ms": 3000}, ProviderUnavailableError),
]


@pytest.mark.parametrize(
    ("case", "fault", "error"), READ_FAULTS, ids=[case for case, _, _ in READ_FAULTS]
)
def test_failed_read_raises_before_any_write(
    netlify: Netlify, case: str, fault: dict[str, Any], error: type[Exception]
) -> None:
    netlify.seed(env("BRIDGE_A", val("all", "a")))
    netlify.fault("GET", r"/env$", fault)

    async def scenario() -> None:
        provider = netlify.provider(ENVSYNC_HTTP_TIMEOUT_S=0.5)
        try:
            await sync(provider, spec(), {"BRIDGE_A": "changed", "BRIDGE_B": "new"})
        finally:
            await provider.aclose()

    with pytest.raises(error):
        run(scenario())

    assert netlify.writes() == []


def test_dropped_write_is_an_unknown_outcome(netlify: Netlify) -> None:
    netlify.seed(env("BRIDGE_A", val("all", "a")), env("BRIDGE_B", val("all", "b")))
    netlify.fault("PATCH", r"/env/BRIDGE_B$", {"drop": True})

    async def scenario() -> Progress:
        provider = netlify.provider()
        progress = Progress()
        try:
            target, remote = await resolve_and_read(provider, spec())
            changes = [
                Change("BRIDGE_A", Op.UPDATE, "all", None, SecretValue("a2")),
                Change("BRIDGE_B", Op.UPDATE, "all", None, SecretValue("b2")),
            ]
            with pytest.raises(WriteOutcomeUnknownError):
                await provider.write(target, spec(), remote, changes, progress, None)
            return progress
        finally:
            await provider.aclose()

    progress = run(scenario())

    assert [key for key, _, _ in progress.written] == ["BRIDGE_A"]
    assert [entry["method"] for entry in netlify.writes()] == ["PATCH", "PATCH"]


def test_rejected_token_fails_the_read(netlify: Netlify) -> None:
    netlify.seed(env("BRIDGE_A", val("all", "a")))

    async def scenario() -> None:
        provider = netlify.provider(token="nfp_not_a_known_token")
        try:
            await provider.read(TargetRef("netlify", "site", SITE_ID, "netlify/web", ACCOUNT_ID))
        finally:
            await provider.aclose()

    with pytest.raises(AuthError) as raised:
        run(scenario())

    assert "nfp_not_a_known_token" not in str(raised.value)
    assert netlify.writes() == []


def test_ownership_variable_lives_in_dev_only(netlify: Netlify) -> None:
    netlify.seed(env("BRIDGE_A", val("all", "a")))

    async def scenario(document: str) -> None:
        provider = netlify.provider()
        try:
            await sync(provider, spec(), {"BRIDGE_A": "a2"}, ledger_document=document)
        finally:
            await provider.aclose()

    run(scenario('{"v":1}'))
    run(scenario('{"v":2}'))

    assert netlify.values(OWNERSHIP_KEY) == {"dev": '{"v":2}'}
    methods = [(entry["method"], entry["keys"]) for entry in netlify.writes()]
    assert methods[-1] == ("PATCH", [OWNERSHIP_KEY])
    assert methods[1] == ("POST", [OWNERSHIP_KEY])


def test_resolve_auto_picks_the_only_site(netlify: Netlify) -> None:
    netlify.seed(sites=[site(SITE_ID, "web")])

    async def scenario() -> list[TargetRef]:
        provider = netlify.provider()
        try:
            return await provider.resolve(spec(selector="auto"))
        finally:
            await provider.aclose()

    (target,) = run(scenario())

    assert target.id == SITE_ID
    assert target.name == "netlify/web"
    assert target.account_id == ACCOUNT_ID


def test_resolve_auto_lists_candidates(netlify: Netlify) -> None:
    netlify.seed(sites=[site(SITE_ID, "web"), site(OTHER_SITE_ID, "docs")])

    async def scenario() -> list[TargetRef]:
        provider = netlify.provider()
        try:
            return await provider.resolve(spec(selector="auto"))
        finally:
            await provider.aclose()

    with pytest.raises(ResolutionError) as raised:
        run(scenario())

    assert sorted(raised.value.candidates) == sorted(
        [f"web ({SITE_ID})", f"docs ({OTHER_SITE_ID})"]
    )
    assert "NETLIFY_SITE_ID" in str(raised.value)


def test_redeploy_starts_a_build(netlify: Netlify) -> None:
    netlify.seed()

    async def scenario() -> None:
        provider = netlify.provider()
        try:
            await provider.redeploy(
                TargetRef("netlify", "site", SITE_ID, "netlify/web", ACCOUNT_ID)
            )
        finally:
            await provider.aclose()

    run(scenario())

    (build,) = netlify.writes()
    assert build["method"] == "POST"
    assert build["path"].endswith(f"/sites/{SITE_ID}/builds")
