"""Carry out a plan's changes on one Netlify site, recording each confirmed write.

The writes are chosen so that values of contexts envsync does not manage always survive:

- Keys the site does not have yet are created together in one batched POST, which the
  platform applies whole or not at all.
- A context value of an existing key is set with a PATCH of that one context. A PUT would
  replace every value of the variable, so it is used only for a secret in `all`, whose
  only values are the ones envsync expands `all` into.
- A delete removes the whole variable only when the contexts being deleted are all the
  values it has. Otherwise each value is deleted by its id.
- The ownership ledger variable is written last, in the `dev` context only. Netlify never
  injects `dev` values into builds or functions, so the ledger takes nothing from the
  4 KB that AWS Lambda allows a function's environment.

`plan_writes` turns the changes into these steps without I/O, so a change that cannot be
carried out safely raises before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from envsync.config import NETLIFY_ALL_SCOPES, OWNERSHIP_KEY, TargetSpec
from envsync.errors import ConfigError, EnvsyncError, UnexpectedResponseError
from envsync.model import ALL_CONTEXT, Change, Op, RemoteState, RemoteVariable, SecretValue
from envsync.providers.base import LedgerDocument, WriteProgress
from envsync.providers.parallel import report_together, run_grouped

from .client import PROVIDER, ContextValue, EnvScope, NetlifyClient, NewVariable
from .reader import DEV_CONTEXT, SECRET_ALL_CONTEXTS

logger = logging.getLogger(__name__)

# Netlify forbids the post_processing scope on secrets (Netlify docs, secrets controller).
SECRET_FORBIDDEN_SCOPE = "post_processing"


@dataclass(frozen=True, slots=True)
class CreateVariables:
    """One batched POST of every key the site does not have yet."""

    variables: tuple[NewVariable, ...]
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class SetValue:
    """A PATCH of one context's value of an existing key."""

    key: str
    value: ContextValue
    is_secret: bool
    change: Change


@dataclass(frozen=True, slots=True)
class ReplaceVariable:
    """A PUT of a whole secret variable in `all`, with its expanded contexts."""

    variable: NewVariable
    change: Change


@dataclass(frozen=True, slots=True)
class DeleteVariable:
    """A DELETE of a whole key whose every value is being deleted."""

    key: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class DeleteValue:
    """A DELETE of one value by its id; the key's other values stay."""

    key: str
    value_id: str
    change: Change


WriteStep = CreateVariables | SetValue | ReplaceVariable | DeleteVariable | DeleteValue


async def write_changes(
    client: NetlifyClient,
    scope: EnvScope,
    spec: TargetSpec,
    remote: RemoteState,
    changes: Sequence[Change],
    progress: WriteProgress,
    ledger_document: LedgerDocument | None,
) -> None:
    """Write every change, then the ownership ledger when `ledger_document` is given.

    When a write fails after others were confirmed, the ledger is still written so that
    it records them. The original error is raised either way.
    """
    steps = plan_writes(spec, remote, changes)
    confirmed = 0

    async def run(step: WriteStep) -> None:
        nonlocal confirmed
        await _run_step(client, scope, step, progress)
        confirmed += 1

    try:
        # The batched create goes first; the other steps touch only keys that exist, and
        # run a key at a time, different keys at once.
        for step in steps:
            if isinstance(step, CreateVariables):
                await run(step)
        await run_grouped(_by_key(steps), run)
    except EnvsyncError:
        if confirmed and ledger_document is not None:
            await _write_ledger_after_failure(client, scope, remote, ledger_document)
        raise

    if ledger_document is not None:
        await write_ledger(client, scope, remote, ledger_document())


def _by_key(steps: Sequence[WriteStep]) -> list[list[WriteStep]]:
    """Group the steps other than the batched create by key, in plan order."""
    groups: dict[str, list[WriteStep]] = {}
    for step in steps:
        if isinstance(step, CreateVariables):
            continue
        key = step.variable.key if isinstance(step, ReplaceVariable) else step.key
        groups.setdefault(key, []).append(step)
    return list(groups.values())


def plan_writes(
    spec: TargetSpec, remote: RemoteState, changes: Sequence[Change]
) -> list[WriteStep]:
    """Choose the calls for `changes`: the batched create first, then updates, then deletes."""
    new_keys: dict[str, list[Change]] = {}
    deletes: dict[str, list[Change]] = {}
    updates: list[WriteStep] = []

    for change in changes:
        if change.op is Op.NOOP:
            continue
        _context_of(change)
        if change.op is Op.DELETE:
            deletes.setdefault(change.key, []).append(change)
            continue
        variable = remote.variables.get(change.key)
        if variable is None:
            new_keys.setdefault(change.key, []).append(change)
            continue
        updates.append(_update_step(spec, variable, change))

    steps: list[WriteStep] = []
    if new_keys:
        steps.append(_create_step(spec, new_keys))
    steps.extend(updates)
    for key, group in deletes.items():
        steps.extend(_delete_steps(remote, key, group))
    return steps


async def write_ledger(
    client: NetlifyClient, scope: EnvScope, remote: RemoteState, document: str
) -> None:
    """Write the ownership ledger to the `dev` context, unless it already contains `document`."""
    value = SecretValue(document)
    current = remote.variables.get(OWNERSHIP_KEY)
    ledger_value = ContextValue(DEV_CONTEXT, value)

    if current is None:
        variable = NewVariable(OWNERSHIP_KEY, (ledger_value,), scopes=None, is_secret=False)
        await client.create_env(scope, [variable])
        return

    stored = current.value_for(DEV_CONTEXT)
    if stored is not None and stored.value == value:
        logger.debug("ownership ledger of %s unchanged, not written", scope.target)
        return
    await client.set_value(scope, OWNERSHIP_KEY, ledger_value, is_secret=False)


async def _write_ledger_after_failure(
    client: NetlifyClient, scope: EnvScope, remote: RemoteState, ledger_document: LedgerDocument
) -> None:
    try:
        await write_ledger(client, scope, remote, ledger_document())
    except EnvsyncError as error:
        # The write that failed first is what the caller must see; this one only adds to it.
        logger.warning(
            "ownership ledger of %s not written after a failed write: %s", scope.target, error
        )


async def _run_step(
    client: NetlifyClient, scope: EnvScope, step: WriteStep, progress: WriteProgress
) -> None:
    if isinstance(step, CreateVariables):
        updated = await client.create_env(scope, step.variables)
        await report_together(progress, [(c, updated.get(c.key)) for c in step.changes])
        return

    if isinstance(step, SetValue):
        updated_at = await client.set_value(scope, step.key, step.value, is_secret=step.is_secret)
        await progress(step.change, updated_at)
        return

    if isinstance(step, ReplaceVariable):
        updated_at = await client.replace_variable(scope, step.variable)
        await progress(step.change, updated_at)
        return

    if isinstance(step, DeleteVariable):
        await client.delete_variable(scope, step.key)
        await report_together(progress, [(change, None) for change in step.changes])
        return

    await client.delete_value(scope, step.key, step.value_id)
    await progress(step.change, None)


def _create_step(spec: TargetSpec, new_keys: dict[str, list[Change]]) -> CreateVariables:
    variables = []
    changes = []
    for key, group in new_keys.items():
        secret = any(change.secret for change in group)
        values = tuple(value for change in group for value in _context_values(change, secret))
        variables.append(NewVariable(key, values, scopes=_scopes(spec, secret), is_secret=secret))
        changes.extend(group)

    logger.debug("creating %d new keys in one batch", len(variables))
    return CreateVariables(tuple(variables), tuple(changes))


def _update_step(spec: TargetSpec, variable: RemoteVariable, change: Change) -> WriteStep:
    context = _context_of(change)
    if not (change.secret and context == ALL_CONTEXT):
        # NOTE: a plain variable turned into a secret in one context keeps its scopes, and
        # Netlify does not document what it does when they include post_processing.
        value = ContextValue(context, _new_value(change))
        return SetValue(change.key, value, is_secret=change.secret, change=change)

    # A secret cannot hold an `all` value, so its expanded values are replaced together.
    # The PUT deletes every context it leaves out, so it is sent only when the variable
    # has values for no other context.
    others = [
        str(context)
        for context in variable.contexts
        if context not in (ALL_CONTEXT, *SECRET_ALL_CONTEXTS)
    ]
    if others:
        raise EnvsyncError(
            f"secret {change.key} was not written: replacing it in `all` would delete its "
            f"values for {', '.join(others)}",
            hint="remove those values on Netlify or manage those contexts explicitly",
        )
    values = _context_values(change, secret=True)
    replacement = NewVariable(change.key, values, scopes=_scopes(spec, True), is_secret=True)
    return ReplaceVariable(replacement, change)


def _delete_steps(remote: RemoteState, key: str, changes: list[Change]) -> list[WriteStep]:
    variable = remote.variables.get(key)
    present = [] if variable is None else _present(variable, changes)
    if variable is None or not present:
        logger.debug("%s has none of the values to delete; nothing sent", key)
        return []

    deleting = {change.context for change in present}
    if set(variable.contexts) <= deleting:
        logger.debug("deleting %s whole: its last values are being deleted", key)
        return [DeleteVariable(key, tuple(present))]

    steps: list[WriteStep] = []
    for change in present:
        remote_value = variable.value_for(change.context)
        if remote_value is None or remote_value.value_id is None:
            raise UnexpectedResponseError(
                f"the {change.context} value of {key} came without an id, so it cannot be "
                "deleted alone",
                provider=PROVIDER,
                hint="delete that value on Netlify by hand, or run plan again",
            )
        steps.append(DeleteValue(key, remote_value.value_id, change))
    return steps


def _present(variable: RemoteVariable, changes: list[Change]) -> list[Change]:
    return [change for change in changes if variable.value_for(change.context) is not None]


def _context_values(change: Change, secret: bool) -> tuple[ContextValue, ...]:
    """Build the values to send for one change, expanding `all` on a secret.

    Netlify requires explicit contexts for secrets, and netlify-cli expands `all` to
    `production`, `deploy-preview` and `branch-deploy` with `dev` set to "".
    """
    context = _context_of(change)
    value = _new_value(change)
    if not (secret and context == ALL_CONTEXT):
        return (ContextValue(context, value),)

    expanded = tuple(ContextValue(name, value) for name in SECRET_ALL_CONTEXTS)
    return (*expanded, ContextValue(DEV_CONTEXT, SecretValue("")))


def _scopes(spec: TargetSpec, secret: bool) -> tuple[str, ...] | None:
    """Choose the `scopes` to send, or None to leave them out.

    Free plans reject explicit scopes with 403 ("Upgrade your Netlify account to set
    specific scopes"), so all four are sent by leaving the field out. A secret always
    sends its scopes, because it must not have post_processing.
    """
    if not secret:
        if set(spec.scopes) == set(NETLIFY_ALL_SCOPES):
            return None
        return tuple(spec.scopes)

    scopes = tuple(scope for scope in spec.scopes if scope != SECRET_FORBIDDEN_SCOPE)
    if not scopes:
        raise ConfigError(
            "NETLIFY_SCOPES",
            "a secret needs a scope other than post_processing, which Netlify forbids for secrets",
            hint="add builds, functions or runtime",
        )
    return scopes


def _context_of(change: Change) -> str:
    if not change.context:
        raise ValueError(f"change of {change.key} has no Netlify context")
    return change.context


def _new_value(change: Change) -> SecretValue:
    if change.new is None:
        raise ValueError(f"{change.op} change of {change.key} has no new value")
    return change.new
