"""Render writer: the bulk PUT body, the response check, per-key writes and the ledger variable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from envsync.config import OWNERSHIP_KEY
from envsync.errors import (
    ProviderError,
    RateLimitedError,
    UnexpectedResponseError,
    WriteOutcomeUnknownError,
)
from envsync.model import Change, Op, RemoteState, RemoteValue, RemoteVariable, SecretValue
from envsync.providers.base import LedgerDocument
from envsync.providers.render import RenderProvider
from tests.providers.render.mock_api import (
    GROUP_ID,
    SERVICE_ID,
    MockRender,
    ProgressLog,
    bulk_echo,
    change,
    group_document,
    group_spec,
    group_target,
    key_echo,
    numbered,
    run_with,
    service_spec,
    service_target,
)

ENV_VARS_PATH = f"/services/{SERVICE_ID}/env-vars"


def remote_state(env_vars: Sequence[tuple[str, str]], *, group: bool = False) -> RemoteState:
    variables = {
        key: RemoteVariable(key=key, values=(RemoteValue(None, SecretValue(value)),))
        for key, value in env_vars
    }
    target = group_target() if group else service_target()
    return RemoteState(target=target, variables=variables)


def write(
    mock: MockRender,
    remote: RemoteState,
    changes: Sequence[Change],
    *,
    write_mode: str = "bulk",
    ledger_document: LedgerDocument | None = None,
    **settings: Any,
) -> ProgressLog:
    progress = ProgressLog()
    if remote.target.kind == "env_group":
        spec = group_spec(write_mode=write_mode)
    else:
        spec = service_spec(write_mode=write_mode)

    async def action(provider: RenderProvider) -> None:
        await provider.write(remote.target, spec, remote, changes, progress, ledger_document)

    run_with(mock, action, **settings)
    return progress


def sent_body(mock: MockRender) -> list[dict[str, str]]:
    (put,) = mock.calls("PUT")
    body: list[dict[str, str]] = put.body
    return body


READ = [("DATABASE_URL", "postgres://db"), ("BRIDGE_VERSION", "1"), ("BRIDGE_OLD", "x"), ("Z", "z")]


def test_bulk_put_keeps_unmanaged_keys_in_read_order() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, bulk_echo)
    changes = [
        change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1"),
        change("BRIDGE_OLD", Op.DELETE, old="x"),
        change("BRIDGE_NEW", Op.CREATE, new="n"),
    ]

    write(mock, remote_state(READ), changes)

    assert sent_body(mock) == [
        {"key": "DATABASE_URL", "value": "postgres://db"},
        {"key": "BRIDGE_VERSION", "value": "2"},
        {"key": "Z", "value": "z"},
        {"key": "BRIDGE_NEW", "value": "n"},
    ]


def test_bulk_write_is_one_request() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, bulk_echo)
    changes = [change(f"BRIDGE_{index}", Op.CREATE, new="v") for index in range(30)]

    write(mock, remote_state(numbered(130)), changes)

    assert [(sent.method, sent.path) for sent in mock.calls()] == [("PUT", ENV_VARS_PATH)]
    assert len(sent_body(mock)) == 160


def test_bulk_write_reports_progress_for_every_change() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, bulk_echo)
    changes = [
        change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1"),
        change("BRIDGE_OLD", Op.DELETE, old="x"),
    ]

    progress = write(mock, remote_state(READ), changes)

    assert progress.confirmed == [
        ("BRIDGE_VERSION", Op.UPDATE, None),
        ("BRIDGE_OLD", Op.DELETE, None),
    ]


def test_bulk_write_carries_ledger_in_same_put() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, bulk_echo)
    remote = remote_state([*READ, (OWNERSHIP_KEY, '{"old": true}')])

    write(
        mock,
        remote,
        [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")],
        ledger_document=lambda: '{"new": true}',
    )

    body = sent_body(mock)
    assert len(mock.calls()) == 1
    assert {"key": OWNERSHIP_KEY, "value": '{"new": true}'} in body
    assert [item["key"] for item in body].count(OWNERSHIP_KEY) == 1


def test_bulk_write_appends_ledger_when_absent() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, bulk_echo)

    write(
        mock,
        remote_state(READ),
        [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")],
        ledger_document=lambda: "{}",
    )

    assert sent_body(mock)[-1] == {"key": OWNERSHIP_KEY, "value": "{}"}


def dropping(key: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        body = [item for item in json.loads(request.content) if item["key"] != key]
        return httpx.Response(200, json=[{"envVar": item, "cursor": "c"} for item in body])

    return handle


def altering(key: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        for item in body:
            if item["key"] == key:
                item["value"] = "something-else"
        return httpx.Response(200, json=[{"envVar": item, "cursor": "c"} for item in body])

    return handle


def adding(key: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        body = [*json.loads(request.content), {"key": key, "value": "extra"}]
        return httpx.Response(200, json=[{"envVar": item, "cursor": "c"} for item in body])

    return handle


@pytest.mark.parametrize(
    ("case", "handler", "named_key"),
    [
        ("unmanaged key dropped", dropping("DATABASE_URL"), "DATABASE_URL"),
        ("changed key dropped", dropping("BRIDGE_VERSION"), "BRIDGE_VERSION"),
        ("value altered", altering("Z"), "Z"),
        ("key added", adding("SURPRISE"), "SURPRISE"),
    ],
)
def test_bulk_response_mismatch_names_keys(case: str, handler: Any, named_key: str) -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, handler)

    with pytest.raises(UnexpectedResponseError) as raised:
        write(mock, remote_state(READ), [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")])

    assert named_key in raised.value.message


def test_bulk_response_mismatch_shows_no_value() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, altering("DATABASE_URL"))

    with pytest.raises(UnexpectedResponseError) as raised:
        write(mock, remote_state(READ), [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")])

    for text in (str(raised.value), repr(raised.value)):
        assert "postgres://db" not in text
        assert "something-else" not in text


def test_bulk_response_mismatch_confirms_only_matching_changes() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, dropping("BRIDGE_NEW"))
    changes = [
        change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1"),
        change("BRIDGE_NEW", Op.CREATE, new="n"),
    ]
    progress = ProgressLog()

    async def action(provider: RenderProvider) -> None:
        remote = remote_state(READ)
        await provider.write(remote.target, service_spec(), remote, changes, progress, None)

    with pytest.raises(UnexpectedResponseError):
        run_with(mock, action)

    assert progress.keys == ["BRIDGE_VERSION"]


def test_bulk_response_of_wrong_shape_is_unexpected() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, httpx.Response(200, json={"ok": True}))

    with pytest.raises(UnexpectedResponseError):
        write(mock, remote_state(READ), [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")])


def test_bulk_server_error_leaves_outcome_unknown() -> None:
    mock = MockRender()
    mock.reply("PUT", ENV_VARS_PATH, httpx.Response(500, json={"message": "internal"}))

    with pytest.raises(WriteOutcomeUnknownError):
        write(mock, remote_state(READ), [change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1")])

    assert len(mock.calls()) == 1


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
@pytest.mark.parametrize("new", ["", None])
def test_empty_value_fails_before_sending(write_mode: str, new: str | None) -> None:
    mock = MockRender()
    changes = [
        change("BRIDGE_A", Op.CREATE, new="a"),
        Change(key="BRIDGE_EMPTY", op=Op.CREATE, new=SecretValue(new) if new is not None else None),
    ]

    with pytest.raises(ProviderError) as raised:
        write(mock, remote_state(READ), changes, write_mode=write_mode)

    assert "BRIDGE_EMPTY" in raised.value.message
    assert mock.calls() == []


def test_noops_are_never_written() -> None:
    mock = MockRender()

    progress = write(
        mock, remote_state(READ), [change("BRIDGE_VERSION", Op.NOOP, new="1", old="1")]
    )

    assert mock.calls() == []
    assert progress.confirmed == []


def test_unchanged_ledger_alone_is_not_written() -> None:
    mock = MockRender()
    remote = remote_state([*READ, (OWNERSHIP_KEY, '{"a": 1}')])

    write(mock, remote, [], ledger_document=lambda: '{"a": 1}')

    assert mock.calls() == []


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
def test_changed_ledger_alone_is_one_key_put(write_mode: str) -> None:
    mock = MockRender()
    mock.reply("PUT", f"{ENV_VARS_PATH}/{OWNERSHIP_KEY}", key_echo)
    remote = remote_state([*READ, (OWNERSHIP_KEY, '{"a": 1}')])

    write(mock, remote, [], write_mode=write_mode, ledger_document=lambda: '{"a": 2}')

    (put,) = mock.calls()
    assert put.path == f"{ENV_VARS_PATH}/{OWNERSHIP_KEY}"
    assert put.body == {"value": '{"a": 2}'}


def per_key_changes() -> list[Change]:
    return [
        change("BRIDGE_VERSION", Op.UPDATE, new="2", old="1"),
        change("BRIDGE_OLD", Op.DELETE, old="x"),
        change("BRIDGE_NEW", Op.CREATE, new="n"),
    ]


def test_per_key_sends_one_request_per_change() -> None:
    mock = MockRender()
    mock.reply("PUT", f"{ENV_VARS_PATH}/BRIDGE_VERSION", key_echo)
    mock.reply("PUT", f"{ENV_VARS_PATH}/BRIDGE_NEW", key_echo)
    mock.reply("DELETE", f"{ENV_VARS_PATH}/BRIDGE_OLD", httpx.Response(204))

    progress = write(mock, remote_state(READ), per_key_changes(), write_mode="per-key")

    assert [(sent.method, sent.path, sent.body) for sent in mock.calls()] == [
        ("PUT", f"{ENV_VARS_PATH}/BRIDGE_VERSION", {"value": "2"}),
        ("DELETE", f"{ENV_VARS_PATH}/BRIDGE_OLD", None),
        ("PUT", f"{ENV_VARS_PATH}/BRIDGE_NEW", {"value": "n"}),
    ]
    assert progress.keys == ["BRIDGE_VERSION", "BRIDGE_OLD", "BRIDGE_NEW"]


def test_per_key_writes_ledger_last() -> None:
    mock = MockRender()
    for key in ("BRIDGE_VERSION", "BRIDGE_NEW", OWNERSHIP_KEY):
        mock.reply("PUT", f"{ENV_VARS_PATH}/{key}", key_echo)
    mock.reply("DELETE", f"{ENV_VARS_PATH}/BRIDGE_OLD", httpx.Response(204))
    progress = ProgressLog()

    def ledger() -> str:
        return json.dumps(progress.keys)

    async def action(provider: RenderProvider) -> None:
        remote = remote_state(READ)
        spec = service_spec(write_mode="per-key")
        await provider.write(remote.target, spec, remote, per_key_changes(), progress, ledger)

    run_with(mock, action)

    last = mock.calls()[-1]
    assert last.path == f"{ENV_VARS_PATH}/{OWNERSHIP_KEY}"
    assert json.loads(last.body["value"]) == ["BRIDGE_VERSION", "BRIDGE_OLD", "BRIDGE_NEW"]


def test_per_key_stops_at_first_failure() -> None:
    mock = MockRender()
    mock.reply("PUT", f"{ENV_VARS_PATH}/BRIDGE_VERSION", key_echo)
    mock.reply("DELETE", f"{ENV_VARS_PATH}/BRIDGE_OLD", httpx.Response(500, json={}))
    progress = ProgressLog()

    async def action(provider: RenderProvider) -> None:
        remote = remote_state(READ)
        spec = service_spec(write_mode="per-key")
        await provider.write(remote.target, spec, remote, per_key_changes(), progress, None)

    with pytest.raises(WriteOutcomeUnknownError):
        run_with(mock, action)

    assert progress.keys == ["BRIDGE_VERSION"]
    assert len(mock.calls()) == 2


def test_per_key_response_mismatch_is_unexpected() -> None:
    mock = MockRender()
    mock.reply(
        "PUT",
        f"{ENV_VARS_PATH}/BRIDGE_NEW",
        httpx.Response(200, json={"key": "BRIDGE_NEW", "value": "other"}),
    )

    with pytest.raises(UnexpectedResponseError):
        write(
            mock,
            remote_state(READ),
            [change("BRIDGE_NEW", Op.CREATE, new="n")],
            write_mode="per-key",
        )


def group_put(request: httpx.Request) -> httpx.Response:
    key = request.url.path.rsplit("/", 1)[-1]
    value = json.loads(request.content)["value"]
    return httpx.Response(200, json=group_document([("OTHER", "o"), (key, value)]))


@pytest.mark.parametrize("write_mode", ["bulk", "per-key"])
def test_group_is_always_written_per_key(write_mode: str) -> None:
    mock = MockRender()
    group_path = f"/env-groups/{GROUP_ID}/env-vars"
    mock.reply("PUT", f"{group_path}/BRIDGE_VERSION", group_put)
    mock.reply("PUT", f"{group_path}/BRIDGE_NEW", group_put)
    mock.reply("DELETE", f"{group_path}/BRIDGE_OLD", httpx.Response(204))

    progress = write(mock, remote_state(READ, group=True), per_key_changes(), write_mode=write_mode)

    assert [(sent.method, sent.path) for sent in mock.calls()] == [
        ("PUT", f"{group_path}/BRIDGE_VERSION"),
        ("DELETE", f"{group_path}/BRIDGE_OLD"),
        ("PUT", f"{group_path}/BRIDGE_NEW"),
    ]
    assert progress.keys == ["BRIDGE_VERSION", "BRIDGE_OLD", "BRIDGE_NEW"]


def test_group_delete_of_vanished_key_is_confirmed() -> None:
    mock = MockRender()

    progress = write(
        mock, remote_state(READ, group=True), [change("BRIDGE_OLD", Op.DELETE, old="x")]
    )

    assert [sent.method for sent in mock.calls()] == ["DELETE"]
    assert progress.keys == ["BRIDGE_OLD"]


def test_group_put_response_without_value_is_unexpected() -> None:
    mock = MockRender()
    stale = httpx.Response(200, json=group_document([("OTHER", "o")]))
    mock.reply("PUT", f"/env-groups/{GROUP_ID}/env-vars/BRIDGE_NEW", stale)

    with pytest.raises(UnexpectedResponseError):
        write(mock, remote_state(READ, group=True), [change("BRIDGE_NEW", Op.CREATE, new="n")])


def test_write_waits_for_retry_after_and_finishes() -> None:
    mock = MockRender()
    limited = httpx.Response(
        429,
        json={"message": "rate limit exceeded"},
        headers={"Retry-After": "17", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "17"},
    )
    mock.reply("PUT", f"{ENV_VARS_PATH}/BRIDGE_NEW", limited, key_echo)

    progress = write(
        mock,
        remote_state(READ),
        [change("BRIDGE_NEW", Op.CREATE, new="n")],
        write_mode="per-key",
        ENVSYNC_RETRY_BASE_S=0,
    )

    assert progress.keys == ["BRIDGE_NEW"]
    assert len(mock.calls("PUT")) == 2
    assert sum(mock.sleeps) >= 17


def test_write_gives_up_when_rate_limit_persists() -> None:
    mock = MockRender()
    limited = httpx.Response(
        429, json={"error": "rate limit exceeded"}, headers={"Retry-After": "1"}
    )
    mock.reply("PUT", f"{ENV_VARS_PATH}/BRIDGE_NEW", limited)

    with pytest.raises(RateLimitedError):
        write(
            mock,
            remote_state(READ),
            [change("BRIDGE_NEW", Op.CREATE, new="n")],
            write_mode="per-key",
            ENVSYNC_MAX_RETRIES=2,
        )

    assert len(mock.calls("PUT")) == 3
