"""The planner's rules, one behaviour per test, on hand-built remote states."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import pytest

from envsync.config import OWNERSHIP_KEY, TargetSpec
from envsync.filters import KeyFilter
from envsync.model import (
    Change,
    LedgerEntry,
    LedgerSlot,
    Op,
    Plan,
    RemoteState,
    RemoteValue,
    RemoteVariable,
    SecretValue,
    TargetRef,
)
from envsync.planner import WHOLE_TARGET, PlanInput, PlanOptions, plan_target
from envsync.providers.netlify.rules import NetlifyRules
from envsync.providers.render.rules import RenderRules


class Hasher:
    def hash(self, value: SecretValue) -> str:
        return hmac.new(b"test-key", value.reveal().encode(), hashlib.sha256).hexdigest()


HASHER = Hasher()
RENDER = TargetRef("render", "service", "srv-test", "render/srv-test")
NETLIFY = TargetRef("netlify", "site", "site-1", "netlify/web")
ALL_KEYS = KeyFilter((), ())


def values(**pairs: str) -> dict[str, SecretValue]:
    return {key: SecretValue(value) for key, value in pairs.items()}


def render_state(**pairs: str) -> RemoteState:
    variables = {
        key: RemoteVariable(key, (RemoteValue(None, SecretValue(value)),))
        for key, value in pairs.items()
    }
    return RemoteState(RENDER, variables)


def owned(
    *slots: tuple[str, str | None, str], updated_at: str | None = None
) -> dict[LedgerSlot, LedgerEntry]:
    """Ledger entries for (key, context, value) triples, as if envsync wrote them."""
    return {
        (key, context): LedgerEntry(
            key, context, HASHER.hash(SecretValue(value)), updated_at, "2026-01-01T00:00:00Z"
        )
        for key, context, value in slots
    }


def render_plan(
    canonical: Mapping[str, SecretValue],
    remote: RemoteState,
    ledger: Mapping[LedgerSlot, LedgerEntry] | None = None,
    *,
    key_filter: KeyFilter = ALL_KEYS,
    options: PlanOptions | None = None,
    credentials: Mapping[str, SecretValue] | None = None,
) -> Plan:
    spec = TargetSpec("render", "service", "srv-test", "id", key_filter=key_filter)
    return plan_target(
        PlanInput(
            target=RENDER,
            spec=spec,
            canonical=canonical,
            remote=remote,
            ledger=ledger or {},
            rules=RenderRules(),
            hasher=HASHER,
            options=options or PlanOptions(),
            credentials=credentials or {},
        )
    )


def ops(plan: Plan) -> dict[tuple[str, str | None], Op]:
    return {(change.key, change.context): change.op for change in plan.changes}


def pending(plan: Plan) -> dict[tuple[str, str | None], Op]:
    return {(change.key, change.context): change.op for change in plan.pending}


# Render: no contexts.


def test_plain_create_update_noop() -> None:
    plan = render_plan(values(A="1", B="2", C="3"), render_state(A="1", B="old"))
    assert ops(plan) == {("A", None): Op.NOOP, ("B", None): Op.UPDATE, ("C", None): Op.CREATE}


def test_update_carries_old_and_new_values() -> None:
    plan = render_plan(values(B="new"), render_state(B="old"))
    change = plan.pending[0]
    assert change.old == SecretValue("old")
    assert change.new == SecretValue("new")


def test_no_drift_has_no_pending_changes() -> None:
    plan = render_plan(values(A="1", B="2"), render_state(A="1", B="2"))
    assert not plan.has_changes
    assert plan.pending == ()


def test_filters_exclude_wins_over_include() -> None:
    key_filter = KeyFilter(("BRIDGE_",), ("BRIDGE_SECRET_",))
    plan = render_plan(
        values(BRIDGE_A="1", BRIDGE_SECRET_B="2", OTHER="3"), render_state(), key_filter=key_filter
    )
    assert pending(plan) == {("BRIDGE_A", None): Op.CREATE}
    assert plan.skipped_by_filters == 2


def test_filters_apply_to_remote_keys() -> None:
    key_filter = KeyFilter(("BRIDGE_",), ())
    ledger = owned(("DATABASE_URL", None, "postgres://x"))
    plan = render_plan(
        values(BRIDGE_A="1"),
        render_state(DATABASE_URL="postgres://x", BRIDGE_A="1"),
        ledger,
        key_filter=key_filter,
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {}
    assert plan.unmanaged == 1


def test_first_sync_leaves_unowned_keys() -> None:
    # A target that already holds A and B set by hand, a canonical set holding only C:
    # deletions are allowed, yet A and B are not envsync's to delete.
    plan = render_plan(
        values(C="3"), render_state(A="1", B="2"), options=PlanOptions(allow_deletions=True)
    )
    assert pending(plan) == {("C", None): Op.CREATE}
    assert plan.unmanaged == 2


def test_owned_key_deleted_when_allowed() -> None:
    plan = render_plan(
        values(A="1"),
        render_state(A="1", B="2"),
        owned(("B", None, "2")),
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {("B", None): Op.DELETE}


def test_owned_key_kept_when_deletions_off() -> None:
    plan = render_plan(values(A="1"), render_state(A="1", B="2"), owned(("B", None, "2")))
    assert pending(plan) == {}
    assert any("ENVSYNC_ALLOW_DELETIONS" in warning.message for warning in plan.warnings)


def test_owned_key_edited_on_platform_is_conflict() -> None:
    plan = render_plan(
        values(A="1"),
        render_state(A="1", B="edited"),
        owned(("B", None, "2")),
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {}
    assert [conflict.key for conflict in plan.conflicts] == ["B"]


def test_owned_key_edited_on_platform_is_repaired() -> None:
    plan = render_plan(values(B="2"), render_state(B="edited"), owned(("B", None, "2")))
    assert pending(plan) == {("B", None): Op.UPDATE}
    assert plan.conflicts == ()


def test_empty_canonical_set_deletes_nothing() -> None:
    plan = render_plan(
        {},
        render_state(A="1"),
        owned(("A", None, "1")),
        options=PlanOptions(allow_deletions=True, force=True),
    )
    assert pending(plan) == {}
    assert [conflict.key for conflict in plan.conflicts] == [WHOLE_TARGET]


def test_deletions_over_limit_are_held_back() -> None:
    remote = render_state(KEEP="k", D1="1", D2="2", D3="3")
    ledger = owned(("D1", None, "1"), ("D2", None, "2"), ("D3", None, "3"))
    plan = render_plan(
        values(KEEP="k"), remote, ledger, options=PlanOptions(allow_deletions=True, max_deletions=2)
    )
    assert pending(plan) == {}
    assert "ENVSYNC_MAX_DELETIONS=2" in plan.conflicts[0].reason


def test_deletions_over_limit_made_with_force() -> None:
    remote = render_state(KEEP="k", D1="1", D2="2", D3="3")
    ledger = owned(("D1", None, "1"), ("D2", None, "2"), ("D3", None, "3"))
    options = PlanOptions(allow_deletions=True, max_deletions=2, force=True)
    plan = render_plan(values(KEEP="k"), remote, ledger, options=options)
    assert set(pending(plan).values()) == {Op.DELETE}
    assert len(plan.pending) == 3
    assert plan.conflicts == ()


def test_render_empty_value_skipped_with_warning() -> None:
    plan = render_plan(values(A="1", EMPTY=""), render_state())
    assert pending(plan) == {("A", None): Op.CREATE}
    assert [warning.key for warning in plan.warnings] == ["EMPTY"]


def test_render_empty_value_never_deletes_remote() -> None:
    plan = render_plan(
        values(EMPTY=""),
        render_state(EMPTY="was-set"),
        owned(("EMPTY", None, "was-set")),
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {}


def test_credential_value_is_rejected() -> None:
    token = SecretValue("rnd_secret_token_value")
    plan = render_plan(
        {"BRIDGE_COPY": token, "BRIDGE_OK": SecretValue("x")},
        render_state(),
        credentials={"RENDER_API_TOKEN": token},
    )
    assert pending(plan) == {("BRIDGE_OK", None): Op.CREATE}
    assert plan.rejected[0].key == "BRIDGE_COPY"
    assert "RENDER_API_TOKEN" in plan.rejected[0].reason
    assert "rnd_secret_token_value" not in plan.rejected[0].reason


def test_reserved_credential_names_never_planned() -> None:
    plan = render_plan(
        values(RENDER_API_TOKEN="t", ENVSYNC_API_TOKEN="u", A="1"),
        render_state(**{OWNERSHIP_KEY: "{}"}),
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {("A", None): Op.CREATE}
    assert plan.unmanaged == 0


def test_equal_value_without_ledger_is_adopted() -> None:
    plan = render_plan(values(A="1", B="2"), render_state(A="1", B="2"), owned(("A", None, "1")))
    assert plan.adopted == (("B", None),)


def test_ledger_entry_of_vanished_key_is_stale() -> None:
    plan = render_plan(
        values(A="1"), render_state(A="1"), owned(("A", None, "1"), ("GONE", None, "x"))
    )
    assert plan.ledger_stale == (("GONE", None),)


# Netlify: values per context.


def netlify_variable(
    key: str,
    contexts: Mapping[str, str | None],
    *,
    secret: bool = False,
    updated_at: str = "2026-01-01T00:00:00Z",
    scopes: tuple[str, ...] | None = ("builds", "functions", "runtime", "post_processing"),
) -> RemoteVariable:
    remote_values = tuple(
        RemoteValue(context, None if value is None else SecretValue(value), f"id-{context}")
        for context, value in contexts.items()
    )
    return RemoteVariable(key, remote_values, secret, scopes, updated_at)


def netlify_plan(
    canonical: Mapping[str, SecretValue],
    variables: list[RemoteVariable],
    ledger: Mapping[LedgerSlot, LedgerEntry] | None = None,
    *,
    contexts: tuple[str, ...] = ("production",),
    secret_keys: tuple[str, ...] = (),
    options: PlanOptions | None = None,
) -> Plan:
    spec = TargetSpec(
        "netlify",
        "site",
        "site-1",
        "id",
        key_filter=ALL_KEYS,
        contexts=contexts,
        secret_keys=secret_keys,
    )
    remote = RemoteState(NETLIFY, {variable.key: variable for variable in variables})
    return plan_target(
        PlanInput(
            target=NETLIFY,
            spec=spec,
            canonical=canonical,
            remote=remote,
            ledger=ledger or {},
            rules=NetlifyRules(),
            hasher=HASHER,
            options=options or PlanOptions(),
        )
    )


def test_netlify_update_touches_only_managed_context() -> None:
    variable = netlify_variable("ENVIRONMENT", {"production": "prod", "branch-deploy": "beta"})
    plan = netlify_plan(values(ENVIRONMENT="live"), [variable])
    assert pending(plan) == {("ENVIRONMENT", "production"): Op.UPDATE}


def test_netlify_delete_touches_only_managed_context() -> None:
    variable = netlify_variable("ENVIRONMENT", {"production": "prod", "branch-deploy": "beta"})
    plan = netlify_plan(
        values(OTHER="x"),
        [variable],
        owned(("ENVIRONMENT", "production", "prod")),
        options=PlanOptions(allow_deletions=True),
    )
    assert pending(plan) == {
        ("OTHER", "production"): Op.CREATE,
        ("ENVIRONMENT", "production"): Op.DELETE,
    }


def test_netlify_branch_context_is_kept() -> None:
    variable = netlify_variable("API", {"production": "a", "branch:staging": "s"})
    plan = netlify_plan(values(API="b"), [variable])
    assert pending(plan) == {("API", "production"): Op.UPDATE}


def test_netlify_branch_context_can_be_managed() -> None:
    variable = netlify_variable("API", {"production": "a", "branch:staging": "s"})
    plan = netlify_plan(values(API="a"), [variable], contexts=("production", "branch:staging"))
    assert pending(plan) == {("API", "branch:staging"): Op.UPDATE}


def test_netlify_missing_context_value_is_created() -> None:
    variable = netlify_variable("API", {"branch-deploy": "b"})
    plan = netlify_plan(values(API="a"), [variable])
    assert pending(plan) == {("API", "production"): Op.CREATE}


@pytest.mark.parametrize(
    ("managed", "remote_contexts"),
    [
        (("all",), {"production": "a"}),
        (("production",), {"all": "a"}),
    ],
    ids=["all-over-specific", "specific-over-all"],
)
def test_netlify_never_mixes_all_and_specific(
    managed: tuple[str, ...], remote_contexts: dict[str, str]
) -> None:
    plan = netlify_plan(
        values(API="new"), [netlify_variable("API", remote_contexts)], contexts=managed
    )
    assert pending(plan) == {}
    assert [conflict.key for conflict in plan.conflicts] == ["API"]


@pytest.mark.parametrize("key", ["SITE_NAME", "URL", "site_id", "1ABC", "HAS-DASH"])
def test_netlify_rejects_forbidden_keys(key: str) -> None:
    plan = netlify_plan({key: SecretValue("v"), "GOOD": SecretValue("g")}, [])
    assert pending(plan) == {("GOOD", "production"): Op.CREATE}
    assert [rejection.key for rejection in plan.rejected] == [key]


def test_netlify_secret_unchanged_is_noop() -> None:
    variable = netlify_variable("API_TOKEN", {"all": None}, secret=True)
    ledger = owned(("API_TOKEN", "all", "tok"), updated_at="2026-01-01T00:00:00Z")
    plan = netlify_plan(
        values(API_TOKEN="tok"), [variable], ledger, contexts=("all",), secret_keys=("*_TOKEN",)
    )
    assert pending(plan) == {}
    assert plan.warnings == ()


def test_netlify_secret_changed_canonical_is_update() -> None:
    variable = netlify_variable("API_TOKEN", {"all": None}, secret=True)
    ledger = owned(("API_TOKEN", "all", "old"), updated_at="2026-01-01T00:00:00Z")
    plan = netlify_plan(
        values(API_TOKEN="new"), [variable], ledger, contexts=("all",), secret_keys=("*_TOKEN",)
    )
    assert pending(plan) == {("API_TOKEN", "all"): Op.UPDATE}
    assert plan.pending[0].old_hidden


def test_netlify_secret_edited_elsewhere_warns() -> None:
    variable = netlify_variable(
        "API_TOKEN", {"all": None}, secret=True, updated_at="2026-02-01T00:00:00Z"
    )
    ledger = owned(("API_TOKEN", "all", "tok"), updated_at="2026-01-01T00:00:00Z")
    plan = netlify_plan(
        values(API_TOKEN="tok"), [variable], ledger, contexts=("all",), secret_keys=("*_TOKEN",)
    )
    assert pending(plan) == {}
    assert "--rewrite-secrets" in plan.warnings[0].message


def test_netlify_secret_edited_elsewhere_rewritten_on_request() -> None:
    variable = netlify_variable(
        "API_TOKEN", {"all": None}, secret=True, updated_at="2026-02-01T00:00:00Z"
    )
    ledger = owned(("API_TOKEN", "all", "tok"), updated_at="2026-01-01T00:00:00Z")
    plan = netlify_plan(
        values(API_TOKEN="tok"),
        [variable],
        ledger,
        contexts=("all",),
        secret_keys=("*_TOKEN",),
        options=PlanOptions(rewrite_secrets=True),
    )
    assert pending(plan) == {("API_TOKEN", "all"): Op.UPDATE}


def test_netlify_secret_without_ledger_is_written() -> None:
    variable = netlify_variable("API_TOKEN", {"all": None}, secret=True)
    plan = netlify_plan(
        values(API_TOKEN="tok"), [variable], contexts=("all",), secret_keys=("*_TOKEN",)
    )
    assert pending(plan) == {("API_TOKEN", "all"): Op.UPDATE}


def test_netlify_plain_to_secret_is_conflict() -> None:
    variable = netlify_variable("API_TOKEN", {"production": "tok"})
    plan = netlify_plan(values(API_TOKEN="tok"), [variable], secret_keys=("*_TOKEN",))
    assert pending(plan) == {}
    assert "--convert-secrets" in plan.conflicts[0].reason


def test_netlify_plain_to_secret_with_flag_is_update() -> None:
    variable = netlify_variable("API_TOKEN", {"production": "tok"})
    plan = netlify_plan(
        values(API_TOKEN="tok"),
        [variable],
        secret_keys=("*_TOKEN",),
        options=PlanOptions(convert_secrets=True),
    )
    assert pending(plan) == {("API_TOKEN", "production"): Op.UPDATE}
    assert plan.pending[0].secret


def test_netlify_secret_flag_stays() -> None:
    variable = netlify_variable("API_KEY", {"production": None}, secret=True)
    plan = netlify_plan(values(API_KEY="k"), [variable])
    changes: list[Change] = list(plan.pending)
    assert changes[0].secret
    assert "flag cannot be removed" in plan.warnings[0].message


def test_netlify_new_secret_key_is_created_as_secret() -> None:
    plan = netlify_plan(values(API_TOKEN="tok"), [], contexts=("all",), secret_keys=("*_TOKEN",))
    assert plan.pending[0].secret
    assert plan.pending[0].op is Op.CREATE


def test_netlify_secret_cannot_hold_dev_value() -> None:
    plan = netlify_plan(
        values(API_TOKEN="tok"), [], contexts=("production", "dev"), secret_keys=("*_TOKEN",)
    )
    assert pending(plan) == {("API_TOKEN", "production"): Op.CREATE}
    assert plan.conflicts[0].context == "dev"


def test_netlify_owned_secret_edited_is_not_deleted() -> None:
    variable = netlify_variable(
        "API_TOKEN", {"all": None}, secret=True, updated_at="2026-02-01T00:00:00Z"
    )
    ledger = owned(("API_TOKEN", "all", "tok"), updated_at="2026-01-01T00:00:00Z")
    plan = netlify_plan(
        values(OTHER="x"),
        [variable],
        ledger,
        contexts=("all",),
        options=PlanOptions(allow_deletions=True),
    )
    assert ("API_TOKEN", "all") not in pending(plan)
    assert plan.conflicts[0].key == "API_TOKEN"


def test_netlify_function_size_warning_names_largest() -> None:
    canonical = values(BIG_PEM="x" * 3000, BIG_JSON="y" * 2000, SMALL="z")
    plan = netlify_plan(canonical, [])
    assert len(plan.warnings) == 1
    message = plan.warnings[0].message
    assert "BIG_PEM" in message
    assert "4096" in message


def test_netlify_function_size_ignores_other_scopes() -> None:
    variable = netlify_variable("BIG_PEM", {"production": "x" * 5000}, scopes=("builds",))
    plan = netlify_plan(values(BIG_PEM="x" * 5000), [variable])
    assert plan.warnings == ()
