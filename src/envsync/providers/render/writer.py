"""Carrying out planned changes on a Render service or environment group.

Render has two ways to write a service's variables, and both are used:

- Bulk: one `PUT /services/{id}/env-vars` replaces the whole set, and any key left out
  is deleted. The body is built from the complete read the engine passed in: every
  variable the changes do not touch goes back with the value just read, in read order.
  Render has no conditional write, so a dashboard edit made between that read and the
  PUT is overwritten.
- Per key: one `PUT` or `DELETE /services/{id}/env-vars/{key}` per change, which leaves
  every other variable alone at the cost of one write each. Environment groups have no
  bulk endpoint, so they are always written this way.

Render env vars carry no `updated_at`, so progress is reported with None.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from envsync.config import OWNERSHIP_KEY
from envsync.errors import ProviderError, UnexpectedResponseError
from envsync.model import Change, Op, RemoteState, SecretValue, TargetRef
from envsync.providers.base import LedgerDocument, WriteProgress
from envsync.providers.parallel import report_together, run_grouped
from envsync.providers.render.client import PROVIDER, EnvVar, RenderClient
from envsync.providers.render.reader import ENV_GROUP_KIND, SERVICE_KIND

logger = logging.getLogger(__name__)


async def write_bulk(
    client: RenderClient,
    target: TargetRef,
    remote: RemoteState,
    changes: Sequence[Change],
    progress: WriteProgress,
    ledger_document: LedgerDocument | None,
) -> None:
    """Write a service's changes, and the ledger variable if given, in one bulk PUT.

    `ledger_document` is called once, before the PUT, so the document it returns must
    already describe the state after every change in `changes`.
    """
    changes = _pending(changes)
    check_values(target, changes)
    if not changes:
        await write_ledger_only(client, target, remote, ledger_document)
        return

    ledger_value = _ledger_value(ledger_document)
    merged = merge_env_vars(target, remote, changes, ledger_value)
    logger.debug(
        "render: bulk PUT of %d variables to %s for %d changes",
        len(merged),
        target.name,
        len(changes),
    )
    stored = await client.replace_env_vars(target.id, merged, target=target.name)

    differing = differing_keys(merged, stored)
    confirmed = [(change, None) for change in changes if change.key not in differing]
    await report_together(progress, confirmed)
    if differing:
        raise _answer_mismatch(target, "PUT", _env_vars_path(target), sorted(differing))


async def write_per_key(
    client: RenderClient,
    target: TargetRef,
    remote: RemoteState,
    changes: Sequence[Change],
    progress: WriteProgress,
    ledger_document: LedgerDocument | None,
) -> None:
    """Write each change with its own call, then the ledger variable last. A service's
    keys are written at once, a group's one at a time."""
    changes = _pending(changes)
    check_values(target, changes)

    async def write(change: Change) -> None:
        await _write_one(client, target, change)
        await progress(change, None)

    # A service's variables are separate resources, one per key, so different keys are
    # written at once. A group's per-key PUT answers with the whole group, as if the group
    # were one document; whether Render merges concurrent writes to it is undocumented, so
    # a group's keys are written one at a time.
    groups = [[change] for change in changes] if target.kind == SERVICE_KIND else [changes]
    await run_grouped(groups, write)

    if changes and ledger_document is not None:
        await _put_one(client, target, OWNERSHIP_KEY, SecretValue(ledger_document()))
        return
    await write_ledger_only(client, target, remote, ledger_document)


async def write_ledger_only(
    client: RenderClient,
    target: TargetRef,
    remote: RemoteState,
    ledger_document: LedgerDocument | None,
) -> None:
    """Write the ledger variable alone, with one per-key PUT, unless it is unchanged."""
    if ledger_document is None:
        return

    document = SecretValue(ledger_document())
    if document == _read_value(remote, OWNERSHIP_KEY):
        logger.debug("render: the ownership ledger of %s is unchanged", target.name)
        return
    await _put_one(client, target, OWNERSHIP_KEY, document)


def merge_env_vars(
    target: TargetRef,
    remote: RemoteState,
    changes: Sequence[Change],
    ledger_value: SecretValue | None,
) -> list[EnvVar]:
    """The full set a bulk PUT must send: the read set with the changes applied.

    Variables keep their read order and updates keep their place, but deletes drop out. New
    keys follow in the order of the changes, and the ledger variable is set last.
    """
    by_key = {change.key: change for change in changes}
    merged: dict[str, SecretValue] = {}

    for variable in remote:
        change = by_key.get(variable.key)
        if change is None:
            merged[variable.key] = _carried_value(target, remote, variable.key)
        elif change.op is not Op.DELETE:
            merged[variable.key] = _new_value(target, change)

    for change in changes:
        if change.op is not Op.DELETE and change.key not in merged:
            merged[change.key] = _new_value(target, change)

    if ledger_value is not None:
        merged[OWNERSHIP_KEY] = ledger_value
    return [EnvVar(key=key, value=value) for key, value in merged.items()]


def differing_keys(sent: Sequence[EnvVar], stored: Sequence[EnvVar]) -> set[str]:
    """Keys whose presence or value differs between a bulk PUT body and Render's response.

    Values are compared as SecretValues (in constant time), never printed.
    """
    sent_values = {env_var.key: env_var.value for env_var in sent}
    stored_values: dict[str, SecretValue] = {}
    differing: set[str] = set()

    for env_var in stored:
        if env_var.key in stored_values:
            differing.add(env_var.key)
        stored_values[env_var.key] = env_var.value

    for key in sent_values.keys() | stored_values.keys():
        if sent_values.get(key) != stored_values.get(key):
            differing.add(key)
    return differing


def check_values(target: TargetRef, changes: Sequence[Change]) -> None:
    """Raise before anything is sent when a create or update carries no value.

    Render does not store empty values, and the planner skips them with a warning, so an
    empty value here is a mistake upstream that must not cost a half-done write.
    """
    for change in changes:
        if change.op is Op.DELETE:
            continue
        _new_value(target, change)


async def _write_one(client: RenderClient, target: TargetRef, change: Change) -> None:
    if change.op is Op.DELETE:
        await _delete_one(client, target, change.key)
        return
    await _put_one(client, target, change.key, _new_value(target, change))


async def _put_one(client: RenderClient, target: TargetRef, key: str, value: SecretValue) -> None:
    if target.kind == SERVICE_KIND:
        stored = await client.put_env_var(target.id, key, value, target=target.name)
        if stored.key != key or stored.value != value:
            raise _answer_mismatch(target, "PUT", _env_var_path(target, key), [key])
        return

    if target.kind == ENV_GROUP_KIND:
        group = await client.put_env_group_var(target.id, key, value, target=target.name)
        stored_values = {env_var.key: env_var.value for env_var in group.env_vars}
        if stored_values.get(key) != value:
            raise _answer_mismatch(target, "PUT", _env_var_path(target, key), [key])
        return

    raise ValueError(f"Render has no target kind {target.kind!r}")


async def _delete_one(client: RenderClient, target: TargetRef, key: str) -> None:
    if target.kind == SERVICE_KIND:
        await client.delete_env_var(target.id, key, target=target.name)
        return
    if target.kind == ENV_GROUP_KIND:
        await client.delete_env_group_var(target.id, key, target=target.name)
        return
    raise ValueError(f"Render has no target kind {target.kind!r}")


def _pending(changes: Sequence[Change]) -> list[Change]:
    return [change for change in changes if change.op is not Op.NOOP]


def _ledger_value(ledger_document: LedgerDocument | None) -> SecretValue | None:
    if ledger_document is None:
        return None
    return SecretValue(ledger_document())


def _new_value(target: TargetRef, change: Change) -> SecretValue:
    if change.new is None or not change.new:
        raise ProviderError(
            f"{change.key} has an empty value, which Render does not store",
            provider=PROVIDER,
            target=target.name,
            hint="nothing was written; the plan should have skipped this key",
        )
    return change.new


def _read_value(remote: RemoteState, key: str) -> SecretValue | None:
    variable = remote.variables.get(key)
    if variable is None:
        return None
    remote_value = variable.value_for(None)
    return remote_value.value if remote_value is not None else None


def _carried_value(target: TargetRef, remote: RemoteState, key: str) -> SecretValue:
    """The value just read for a variable the changes leave alone; a bulk PUT must resend it."""
    value = _read_value(remote, key)
    if value is None:
        raise ProviderError(
            f"the read returned no value for {key}, so a bulk write would delete it",
            provider=PROVIDER,
            target=target.name,
            hint="nothing was written; read the target again",
        )
    return value


def _answer_mismatch(
    target: TargetRef, method: str, path: str, keys: Sequence[str]
) -> UnexpectedResponseError:
    listed = ", ".join(keys[:20])
    if len(keys) > 20:
        listed += f" and {len(keys) - 20} more"
    return UnexpectedResponseError(
        f"Render stored something other than what was sent for {listed}",
        provider=PROVIDER,
        method=method,
        path=path,
        target=target.name,
        hint="read the target again and compare before writing more",
    )


def _env_vars_path(target: TargetRef) -> str:
    return f"/services/{target.id}/env-vars"


def _env_var_path(target: TargetRef, key: str) -> str:
    collection = "services" if target.kind == SERVICE_KIND else "env-groups"
    return f"/{collection}/{target.id}/env-vars/{key}"
