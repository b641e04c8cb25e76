"""How the Netlify writer turns changes into calls: pure step choice, then the bodies it sends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from envsync.config import OWNERSHIP_KEY, TargetSpec
from envsync.errors import ConfigError, EnvsyncError, NotFoundError, UnexpectedResponseError
from envsync.model import (
    Change,
    Op,
    RemoteState,
    RemoteValue,
    RemoteVariable,
    SecretValue,
    TargetRef,
)
from envsync.providers.netlify.client import ContextValue, EnvScope, NewVariable
from envsync.providers.netlify.writer import (
    CreateVariables,
    DeleteValue,
    DeleteVariable,
    ReplaceVariable,
    SetValue,
    plan_writes,
)

from .mock_api import ACCOUNT_ID, SITE_ID, MockNetlify, run, variable

ENV_PATH = f"/accounts/{ACCOUNT_ID}/env"
TARGET = TargetRef("netlify", "site", SITE_ID, "netlify/web", account_id=ACCOUNT_ID)
ALL_SPEC = TargetSpec("netlify", "site", SITE_ID, "id")
SECRET_SCOPES = ("builds", "functions", "runtime")


def secret(text: str) -> SecretValue:
    return SecretValue(text)


def remote(*variables: RemoteVariable) -> RemoteState:
    return RemoteState(TARGET, {item.key: item for item in variables})


def plain(key: str, *values: tuple[str, str, str]) -> RemoteVariable:
    """A plain variable from (context, value, value id) triples."""
    return RemoteVariable(
        key,
        tuple(RemoteValue(context, secret(text), value_id) for context, text, value_id in values),
    )


def create(key: str, context: str, text: str, *, is_secret: bool = False) -> Change:
    return Change(key, Op.CREATE, context, None, secret(text), is_secret)


def update(key: str, context: str, text: str, *, is_secret: bool = False) -> Change:
    return Change(key, Op.UPDATE, context, secret("old"), secret(text), is_secret)


def delete(key: str, context: str) -> Change:
    return Change(key, Op.DELETE, context, secret("old"), None)


def test_new_keys_share_one_batch() -> None:
    changes = [create("BRIDGE_A", "production", "a"), create("BRIDGE_B", "all", "b")]

    (step,) = plan_writes(ALL_SPEC, remote(), changes)

    assert isinstance(step, CreateVariables)
    assert [item.key for item in step.variables] == ["BRIDGE_A", "BRIDGE_B"]
    assert step.changes == tuple(changes)


def test_new_key_with_several_contexts_is_one_variable() -> None:
    changes = [create("BRIDGE_A", "production", "p"), create("BRIDGE_A", "branch:staging", "s")]

    (step,) = plan_writes(ALL_SPEC, remote(), changes)

    assert isinstance(step, CreateVariables)
    (created,) = step.variables
    assert [item.context for item in created.values] == ["production", "branch:staging"]


def test_all_four_scopes_are_left_out() -> None:
    (step,) = plan_writes(ALL_SPEC, remote(), [create("BRIDGE_A", "all", "a")])

    assert isinstance(step, CreateVariables)
    assert step.variables[0].scopes is None


def test_fewer_scopes_are_sent() -> None:
    spec = TargetSpec("netlify", "site", SITE_ID, "id", scopes=("builds", "runtime"))

    (step,) = plan_writes(spec, remote(), [create("BRIDGE_A", "all", "a")])

    assert isinstance(step, CreateVariables)
    assert step.variables[0].scopes == ("builds", "runtime")


def test_new_secret_in_all_expands_contexts() -> None:
    (step,) = plan_writes(ALL_SPEC, remote(), [create("BRIDGE_TOKEN", "all", "t", is_secret=True)])

    assert isinstance(step, CreateVariables)
    (created,) = step.variables
    assert created.is_secret
    assert created.scopes == SECRET_SCOPES
    assert created.values == (
        ContextValue("production", secret("t")),
        ContextValue("deploy-preview", secret("t")),
        ContextValue("branch-deploy", secret("t")),
        ContextValue("dev", secret("")),
    )


def test_secret_with_only_post_processing_scope_fails() -> None:
    spec = TargetSpec("netlify", "site", SITE_ID, "id", scopes=("post_processing",))

    with pytest.raises(ConfigError, match="NETLIFY_SCOPES"):
        plan_writes(spec, remote(), [create("BRIDGE_TOKEN", "production", "t", is_secret=True)])


def test_existing_key_gets_one_patch_per_context() -> None:
    current = remote(plain("BRIDGE_A", ("production", "p", "v1"), ("branch-deploy", "b", "v2")))
    changes = [update("BRIDGE_A", "production", "p2"), create("BRIDGE_A", "dev", "d")]

    steps = plan_writes(ALL_SPEC, current, changes)

    assert steps == [
        SetValue("BRIDGE_A", ContextValue("production", secret("p2")), False, changes[0]),
        SetValue("BRIDGE_A", ContextValue("dev", secret("d")), False, changes[1]),
    ]


def test_key_with_no_values_is_patched_not_created() -> None:
    change = create("BRIDGE_A", "production", "p")

    (step,) = plan_writes(ALL_SPEC, remote(RemoteVariable("BRIDGE_A", ())), [change])

    assert isinstance(step, SetValue)


def test_secret_in_all_update_replaces_the_variable() -> None:
    current = remote(RemoteVariable("BRIDGE_TOKEN", (RemoteValue("all", None),), is_secret=True))
    change = update("BRIDGE_TOKEN", "all", "t2", is_secret=True)

    (step,) = plan_writes(ALL_SPEC, current, [change])

    assert isinstance(step, ReplaceVariable)
    assert step.variable.is_secret
    assert step.variable.scopes == SECRET_SCOPES
    assert [item.context for item in step.variable.values] == [
        "production",
        "deploy-preview",
        "branch-deploy",
        "dev",
    ]


def test_secret_replacement_keeps_other_contexts_safe() -> None:
    hidden = (RemoteValue("production", None, "v1"), RemoteValue("branch:beta", None, "v2"))
    current = remote(RemoteVariable("BRIDGE_TOKEN", hidden, is_secret=True))

    with pytest.raises(EnvsyncError, match="branch:beta"):
        plan_writes(ALL_SPEC, current, [update("BRIDGE_TOKEN", "all", "t2", is_secret=True)])


def test_secret_specific_context_is_patched() -> None:
    hidden = (RemoteValue("production", None, "v1"),)
    current = remote(RemoteVariable("BRIDGE_TOKEN", hidden, is_secret=True))
    change = update("BRIDGE_TOKEN", "production", "t2", is_secret=True)

    (step,) = plan_writes(ALL_SPEC, current, [change])

    assert step == SetValue("BRIDGE_TOKEN", ContextValue("production", secret("t2")), True, change)


def test_deleting_the_last_values_deletes_the_key() -> None:
    current = remote(plain("BRIDGE_A", ("production", "p", "v1"), ("dev", "d", "v2")))
    changes = [delete("BRIDGE_A", "production"), delete("BRIDGE_A", "dev")]

    (step,) = plan_writes(ALL_SPEC, current, changes)

    assert step == DeleteVariable("BRIDGE_A", tuple(changes))


def test_deleting_some_values_deletes_them_by_id() -> None:
    current = remote(
        plain(
            "BRIDGE_A",
            ("production", "p", "v1"),
            ("branch-deploy", "beta", "v2"),
            ("branch:staging", "s", "v3"),
        )
    )
    change = delete("BRIDGE_A", "production")

    (step,) = plan_writes(ALL_SPEC, current, [change])

    assert step == DeleteValue("BRIDGE_A", "v1", change)


def test_deleting_a_value_without_id_fails_before_writing() -> None:
    values = (RemoteValue("production", secret("p")), RemoteValue("dev", secret("d"), "v2"))
    current = remote(RemoteVariable("BRIDGE_A", values))

    with pytest.raises(UnexpectedResponseError, match="without an id"):
        plan_writes(ALL_SPEC, current, [delete("BRIDGE_A", "production")])


def test_deleting_an_absent_value_sends_nothing() -> None:
    current = remote(plain("BRIDGE_A", ("dev", "d", "v2")))

    assert plan_writes(ALL_SPEC, current, [delete("BRIDGE_A", "production")]) == []
    assert plan_writes(ALL_SPEC, remote(), [delete("BRIDGE_B", "production")]) == []


def test_steps_run_creates_then_updates_then_deletes() -> None:
    current = remote(plain("BRIDGE_OLD", ("all", "o", "v1")), plain("BRIDGE_A", ("all", "a", "v2")))
    changes = [
        delete("BRIDGE_OLD", "all"),
        update("BRIDGE_A", "all", "a2"),
        create("BRIDGE_NEW", "all", "n"),
    ]

    steps = plan_writes(ALL_SPEC, current, changes)

    assert [type(step) for step in steps] == [CreateVariables, SetValue, DeleteVariable]


def test_noop_changes_are_skipped() -> None:
    noop = Change("BRIDGE_A", Op.NOOP, "all", secret("a"), secret("a"))

    assert plan_writes(ALL_SPEC, remote(plain("BRIDGE_A", ("all", "a", "v1"))), [noop]) == []


def test_change_without_context_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="context"):
        plan_writes(ALL_SPEC, remote(), [Change("BRIDGE_A", Op.CREATE, None, None, secret("a"))])


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def __call__(self, change: Change, updated_at: str | None) -> None:
        self.calls.append((change.key, change.context, updated_at))


def write(
    api: MockNetlify,
    state: RemoteState,
    changes: list[Change],
    ledger: str | None = None,
    spec: TargetSpec = ALL_SPEC,
) -> Progress:
    progress = Progress()
    document = (lambda: ledger) if ledger is not None else None
    run(api.provider().write(TARGET, spec, state, changes, progress, document))
    return progress


def created_reply(*variables: dict[str, Any]) -> httpx.Response:
    return httpx.Response(201, json=list(variables))


def test_batch_body_carries_branch_contexts_and_no_scopes() -> None:
    api = MockNetlify()
    api.reply("POST", ENV_PATH, created_reply(variable("BRIDGE_A", updated_at="T1")))
    changes = [create("BRIDGE_A", "production", "p"), create("BRIDGE_A", "branch:staging", "s")]

    progress = write(api, remote(), changes)

    (sent,) = api.calls()
    assert sent.query == {"site_id": SITE_ID}
    assert sent.body == [
        {
            "key": "BRIDGE_A",
            "values": [
                {"context": "production", "value": "p"},
                {"context": "branch", "context_parameter": "staging", "value": "s"},
            ],
            "is_secret": False,
        }
    ]
    assert progress.calls == [
        ("BRIDGE_A", "production", "T1"),
        ("BRIDGE_A", "branch:staging", "T1"),
    ]


def test_secret_replacement_body_has_values_scopes_and_flag() -> None:
    api = MockNetlify()
    api.reply("PUT", f"{ENV_PATH}/BRIDGE_TOKEN", httpx.Response(200, json=variable("BRIDGE_TOKEN")))
    current = remote(RemoteVariable("BRIDGE_TOKEN", (RemoteValue("all", None),), is_secret=True))

    write(api, current, [update("BRIDGE_TOKEN", "all", "t2", is_secret=True)])

    (sent,) = api.calls()
    assert sent.query == {"site_id": SITE_ID}
    assert sent.body == {
        "values": [
            {"context": "production", "value": "t2"},
            {"context": "deploy-preview", "value": "t2"},
            {"context": "branch-deploy", "value": "t2"},
            {"context": "dev", "value": ""},
        ],
        "is_secret": True,
        "scopes": list(SECRET_SCOPES),
    }


def test_ledger_is_written_last_in_dev_when_absent() -> None:
    api = MockNetlify()
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(200, json=variable("BRIDGE_A")))
    api.reply("POST", ENV_PATH, created_reply(variable(OWNERSHIP_KEY)))
    current = remote(plain("BRIDGE_A", ("all", "a", "v1")))

    write(api, current, [update("BRIDGE_A", "all", "a2")], ledger='{"v":1}')

    assert [sent.method for sent in api.calls()] == ["PATCH", "POST"]
    assert api.calls()[1].body == [
        {
            "key": OWNERSHIP_KEY,
            "values": [{"context": "dev", "value": '{"v":1}'}],
            "is_secret": False,
        }
    ]


def test_ledger_is_patched_in_dev_when_present() -> None:
    api = MockNetlify()
    api.reply("PATCH", f"{ENV_PATH}/{OWNERSHIP_KEY}", httpx.Response(200, json=variable("X")))
    current = remote(plain(OWNERSHIP_KEY, ("dev", '{"v":1}', "v1")))

    write(api, current, [], ledger='{"v":2}')

    (sent,) = api.calls()
    assert sent.path == f"{ENV_PATH}/{OWNERSHIP_KEY}"
    assert sent.body == {"context": "dev", "value": '{"v":2}'}


def test_unchanged_ledger_alone_is_not_written() -> None:
    api = MockNetlify()
    current = remote(plain(OWNERSHIP_KEY, ("dev", '{"v":1}', "v1")))

    write(api, current, [], ledger='{"v":1}')

    assert api.calls() == []


def test_ledger_document_is_built_after_the_writes() -> None:
    api = MockNetlify()
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(200, json=variable("BRIDGE_A")))
    api.reply("POST", ENV_PATH, created_reply(variable(OWNERSHIP_KEY)))
    progress = Progress()
    seen: list[int] = []

    def document() -> str:
        seen.append(len(progress.calls))
        return "{}"

    current = remote(plain("BRIDGE_A", ("all", "a", "v1")))
    run(
        api.provider().write(
            TARGET, ALL_SPEC, current, [update("BRIDGE_A", "all", "b")], progress, document
        )
    )

    assert seen == [1]


def test_ledger_is_still_written_after_a_later_failure() -> None:
    api = MockNetlify()
    api.reply("PATCH", f"{ENV_PATH}/BRIDGE_A", httpx.Response(200, json=variable("BRIDGE_A")))
    api.reply("POST", ENV_PATH, created_reply(variable(OWNERSHIP_KEY)))
    current = remote(plain("BRIDGE_A", ("all", "a", "v1")), plain("BRIDGE_B", ("all", "b", "v2")))
    changes = [update("BRIDGE_A", "all", "a2"), update("BRIDGE_B", "all", "b2")]

    with pytest.raises(NotFoundError):
        write(api, current, changes, ledger="{}")

    assert [(sent.method, sent.path) for sent in api.calls()] == [
        ("PATCH", f"{ENV_PATH}/BRIDGE_A"),
        ("PATCH", f"{ENV_PATH}/BRIDGE_B"),
        ("POST", ENV_PATH),
    ]


def test_failed_first_write_leaves_the_ledger_alone() -> None:
    api = MockNetlify()
    current = remote(plain("BRIDGE_A", ("all", "a", "v1")))

    with pytest.raises(NotFoundError):
        write(api, current, [update("BRIDGE_A", "all", "a2")], ledger="{}")

    assert len(api.calls()) == 1


def test_new_variable_scopes_none_leaves_field_out() -> None:
    api = MockNetlify()
    api.reply("POST", ENV_PATH, created_reply())
    scope_less = NewVariable("BRIDGE_A", (ContextValue("dev", secret("d")),), None, False)

    run(api.provider().client.create_env(EnvScope(ACCOUNT_ID, SITE_ID), [scope_less]))

    assert "scopes" not in api.calls()[0].body[0]


def test_write_response_of_wrong_shape_is_unexpected() -> None:
    api = MockNetlify()
    api.reply("POST", ENV_PATH, httpx.Response(201, json={"key": "BRIDGE_A"}))

    with pytest.raises(UnexpectedResponseError):
        write(api, remote(), [create("BRIDGE_A", "all", "a")])


def test_delete_by_value_id_keeps_site_id() -> None:
    api = MockNetlify()
    api.reply("DELETE", f"{ENV_PATH}/BRIDGE_A/value/v1", httpx.Response(204))
    current = remote(plain("BRIDGE_A", ("production", "p", "v1"), ("branch-deploy", "b", "v2")))

    progress = write(api, current, [delete("BRIDGE_A", "production")])

    (sent,) = api.calls()
    assert sent.query == {"site_id": SITE_ID}
    assert progress.calls == [("BRIDGE_A", "production", None)]
