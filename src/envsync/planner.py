"""The planner: canonical set + remote state + ledger + filters + options -> Plan.

It is pure: no I/O, no clock, no randomness. Everything it decides is a rule about what
envsync may change on its own:

- Keys outside the filters, and keys of other Netlify contexts, are never touched.
- A key the platform forbids is rejected; a value it cannot store is skipped with a warning.
- A remote key that is not in the canonical set is deleted only when deletions are
  allowed, the ledger records that envsync wrote it, and its value did not change since.
  A changed one is a conflict. Nothing is deleted when the canonical set is empty, and
  nothing when the deletions of one target exceed the limit, unless a person forces it.
- On Netlify, `all` and specific contexts never mix on one key, a plain key is not turned
  into a secret without `convert_secrets`, and a secret's hidden value is judged from the
  ledger's hash and the variable's `updated_at`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from envsync.config import OWNERSHIP_KEY, RESERVED_CANONICAL_KEYS
from envsync.filters import KeyFilter
from envsync.model import (
    ALL_CONTEXT,
    Change,
    Conflict,
    LedgerEntry,
    LedgerSlot,
    Op,
    Plan,
    PlanWarning,
    Rejection,
    RemoteState,
    RemoteValue,
    RemoteVariable,
    SecretValue,
    TargetRef,
)

if TYPE_CHECKING:
    from envsync.config import TargetSpec
    from envsync.providers.base import PlatformRules

# Used as the key of a conflict that concerns the whole target, not one key.
WHOLE_TARGET = "*"


class ValueHasher(Protocol):
    def hash(self, value: SecretValue) -> str: ...


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Choices a person made for this run, on top of the target's configuration."""

    allow_deletions: bool = False
    max_deletions: int = 10
    force: bool = False
    rewrite_secrets: bool = False
    convert_secrets: bool = False


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything the planner reads for one target."""

    target: TargetRef
    spec: TargetSpec
    canonical: Mapping[str, SecretValue]
    remote: RemoteState
    ledger: Mapping[LedgerSlot, LedgerEntry]
    rules: PlatformRules
    hasher: ValueHasher
    options: PlanOptions = field(default_factory=PlanOptions)
    credentials: Mapping[str, SecretValue] = field(default_factory=dict)


@dataclass(slots=True)
class _Draft:
    """The plan while it is being built."""

    changes: list[Change] = field(default_factory=list)
    deletions: list[Change] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)
    adopted: list[LedgerSlot] = field(default_factory=list)
    unmanaged_keys: set[str] = field(default_factory=set)
    kept_owned: set[str] = field(default_factory=set)


def plan_target(given: PlanInput) -> Plan:
    """Compute the plan for one target."""
    draft = _Draft()
    desired, held_back, filtered = _select_canonical(given, draft)

    if given.rules.uses_contexts:
        _plan_contexts(given, desired, held_back, draft)
    else:
        _plan_plain(given, desired, held_back, draft)

    _guard_deletions(given, desired, held_back, draft)
    if draft.kept_owned:
        draft.warnings.append(
            PlanWarning(
                f"{len(draft.kept_owned)} keys envsync wrote earlier are no longer in the "
                "canonical set and are kept, because ENVSYNC_ALLOW_DELETIONS is false"
            )
        )
    draft.warnings.extend(
        given.rules.size_warnings(_held_after(given, desired), given.remote, given.spec)
    )
    return Plan(
        target=given.target,
        changes=tuple(sorted(draft.changes, key=_change_order)),
        rejected=tuple(draft.rejected),
        conflicts=tuple(draft.conflicts),
        warnings=tuple(draft.warnings),
        unmanaged=len(draft.unmanaged_keys),
        skipped_by_filters=len(filtered),
        filtered_keys=tuple(filtered),
        adopted=tuple(draft.adopted),
        ledger_stale=_stale_ledger_slots(given),
    )


def _change_order(change: Change) -> tuple[str, str]:
    return (change.key, change.context or "")


def _select_canonical(
    given: PlanInput, draft: _Draft
) -> tuple[dict[str, SecretValue], set[str], list[str]]:
    """Split the canonical set into the keys to sync and the keys held back.

    Returns the desired values, the managed keys held back (rejected or skipped: they are
    never written and never deleted), and the keys the filters skipped.
    """
    key_filter: KeyFilter = given.spec.key_filter
    desired: dict[str, SecretValue] = {}
    held_back: set[str] = set()
    filtered: list[str] = []

    for key, value in given.canonical.items():
        if key in RESERVED_CANONICAL_KEYS:
            continue
        if not key_filter.manages(key):
            filtered.append(key)
            continue

        reason = given.rules.reject_key(key) or credential_reason(value, given.credentials)
        if reason:
            draft.rejected.append(Rejection(key, reason))
            held_back.add(key)
            continue

        skip = given.rules.skip_value(key, value)
        if skip:
            draft.warnings.append(PlanWarning(f"{key} skipped: {skip}", key=key))
            held_back.add(key)
            continue

        desired[key] = value
    return desired, held_back, filtered


# Credentials that are addresses of secret stores rather than secrets. An application's
# value may contain one, such as a link into the vault, so only an exact copy is rejected.
ADDRESS_CREDENTIALS = frozenset({"VAULT_ADDR", "ENVSYNC_VAULT_URL", "ENVSYNC_DASHBOARD_URL"})

# A credential shorter than this is rejected only as a whole value, because a short string
# inside a longer value is likely a coincidence.
MIN_EMBEDDED_CREDENTIAL_CHARS = 8


def credential_reason(
    value: SecretValue | None, credentials: Mapping[str, SecretValue]
) -> str | None:
    """Return why `value` may not leave, or None: it equals or contains one of envsync's
    own credentials (safety rule: envsync's credentials never leave through a sync)."""
    if not value:
        return None
    text = value.reveal()
    for name, credential in credentials.items():
        if not credential:
            continue
        if value == credential:
            return f"its value equals envsync's own credential {name}, which never leaves"
        secret = credential.reveal()
        embeddable = name not in ADDRESS_CREDENTIALS
        if embeddable and len(secret) >= MIN_EMBEDDED_CREDENTIAL_CHARS and secret in text:
            return f"its value contains envsync's own credential {name}, which never leaves"
    return None


def _managed_remote(given: PlanInput, draft: _Draft) -> dict[str, RemoteVariable]:
    """Remote variables inside the filters; the others are counted as unmanaged."""
    managed = {}
    for key, variable in given.remote.variables.items():
        if key == OWNERSHIP_KEY:
            continue
        if given.spec.key_filter.manages(key):
            managed[key] = variable
        else:
            draft.unmanaged_keys.add(key)
    return managed


# Render and any platform without contexts.


def _plan_plain(
    given: PlanInput, desired: dict[str, SecretValue], held_back: set[str], draft: _Draft
) -> None:
    remote = _managed_remote(given, draft)

    for key in sorted(desired.keys() | remote.keys()):
        variable = remote.get(key)
        current = variable.value_for(None) if variable else None
        if key in desired:
            _plan_value(given, key, None, desired[key], current, draft, secret=False)
        elif current is not None and key not in held_back:
            _plan_removal(given, key, None, current, variable, draft)


def _plan_value(
    given: PlanInput,
    key: str,
    context: str | None,
    wanted: SecretValue,
    current: RemoteValue | None,
    draft: _Draft,
    *,
    secret: bool,
    variable: RemoteVariable | None = None,
) -> None:
    """Plan one slot whose canonical value is known: create, update or no change."""
    if current is None:
        draft.changes.append(Change(key, Op.CREATE, context, None, wanted, secret))
        return
    if current.value is None:
        _plan_hidden_value(given, key, context, wanted, variable, draft)
        return
    if current.value == wanted:
        draft.changes.append(Change(key, Op.NOOP, context, current.value, wanted, secret))
        _adopt_if_unrecorded(given, key, context, wanted, draft)
        return
    draft.changes.append(Change(key, Op.UPDATE, context, current.value, wanted, secret))


def _adopt_if_unrecorded(
    given: PlanInput, key: str, context: str | None, value: SecretValue, draft: _Draft
) -> None:
    """Record a remote value already equal to the canonical one as owned, without a write."""
    entry = given.ledger.get((key, context))
    if entry is None or entry.value_hash != given.hasher.hash(value):
        draft.adopted.append((key, context))


def _plan_hidden_value(
    given: PlanInput,
    key: str,
    context: str | None,
    wanted: SecretValue,
    variable: RemoteVariable | None,
    draft: _Draft,
) -> None:
    """Plan a Netlify secret, whose value cannot be read back.

    The ledger's hash shows whether the canonical value changed since envsync wrote it. The
    platform keeps one `updated_at` per variable, so a newer one only shows that somebody
    changed some context of it. envsync then warns, and writes again only on request.
    """
    entry = given.ledger.get((key, context))
    if entry is None:
        draft.changes.append(
            Change(
                key,
                Op.UPDATE,
                context,
                None,
                wanted,
                True,
                old_hidden=True,
                reason="secret value unknown to envsync",
            )
        )
        return
    if entry.value_hash != given.hasher.hash(wanted):
        draft.changes.append(Change(key, Op.UPDATE, context, None, wanted, True, old_hidden=True))
        return
    if _changed_since_written(variable, entry):
        if given.options.rewrite_secrets:
            draft.changes.append(
                Change(
                    key,
                    Op.UPDATE,
                    context,
                    None,
                    wanted,
                    True,
                    old_hidden=True,
                    reason="rewritten on request",
                )
            )
            return
        draft.warnings.append(
            PlanWarning(
                f"{key} ({context}) is a secret that was changed on the platform after envsync "
                "wrote it; apply with --rewrite-secrets to write the canonical value again",
                key=key,
            )
        )
    draft.changes.append(Change(key, Op.NOOP, context, None, wanted, True, old_hidden=True))


def _changed_since_written(variable: RemoteVariable | None, entry: LedgerEntry) -> bool:
    if variable is None or not variable.updated_at or not entry.updated_at:
        return False
    return _timestamp(variable.updated_at) > _timestamp(entry.updated_at)


def _timestamp(text: str) -> str:
    """ISO-8601 times in UTC compare as text once the `Z` suffix form is the same."""
    return text.replace("+00:00", "Z")


def _plan_removal(
    given: PlanInput,
    key: str,
    context: str | None,
    current: RemoteValue,
    variable: RemoteVariable | None,
    draft: _Draft,
) -> None:
    """Plan a remote slot that is missing from the canonical set: a deletion or a conflict."""
    entry = given.ledger.get((key, context))
    if entry is None:
        draft.unmanaged_keys.add(key)
        return
    if not given.options.allow_deletions:
        draft.kept_owned.add(key)
        return

    if current.value is None:
        edited = _changed_since_written(variable, entry)
    else:
        edited = given.hasher.hash(current.value) != entry.value_hash
    if edited:
        draft.conflicts.append(
            Conflict(
                key,
                "changed on the platform since envsync wrote it, so it is not deleted; "
                "delete it by hand or add it back to the canonical set",
                context,
            )
        )
        return
    secret = variable.is_secret if variable else False
    draft.deletions.append(
        Change(
            key, Op.DELETE, context, current.value, None, secret, old_hidden=current.value is None
        )
    )


def _guard_deletions(
    given: PlanInput, desired: dict[str, SecretValue], held_back: set[str], draft: _Draft
) -> None:
    """Admit the planned deletions into the plan unless a guard holds them back."""
    if not draft.deletions:
        return
    if not desired and not held_back:
        draft.conflicts.append(
            Conflict(
                WHOLE_TARGET,
                f"the canonical set holds no managed key, so none of the "
                f"{len(draft.deletions)} planned deletions is made; check the source and "
                "the filters",
            )
        )
        return
    limit = given.options.max_deletions
    if len(draft.deletions) > limit and not given.options.force:
        draft.conflicts.append(
            Conflict(
                WHOLE_TARGET,
                f"{len(draft.deletions)} deletions exceed ENVSYNC_MAX_DELETIONS={limit}, so "
                "none is made; apply with --force to make them",
            )
        )
        return
    draft.changes.extend(draft.deletions)


# Netlify: values per deploy context.


def _plan_contexts(
    given: PlanInput, desired: dict[str, SecretValue], held_back: set[str], draft: _Draft
) -> None:
    remote = _managed_remote(given, draft)
    contexts = given.spec.contexts

    for key in sorted(desired.keys() | remote.keys()):
        if key in held_back:
            continue
        variable = remote.get(key)
        wanted = desired.get(key)
        if variable is not None and wanted is None and not _owns_any(given, key, contexts):
            draft.unmanaged_keys.add(key)
            continue

        secret = _plan_secret_flag(given, key, wanted, variable, draft)
        if secret is None or _mixes_contexts(key, variable, contexts, draft):
            continue
        for context in contexts:
            _plan_context(given, key, context, wanted, variable, secret, draft)


def _owns_any(given: PlanInput, key: str, contexts: Iterable[str]) -> bool:
    return any((key, context) in given.ledger for context in contexts)


def _plan_secret_flag(
    given: PlanInput,
    key: str,
    wanted: SecretValue | None,
    variable: RemoteVariable | None,
    draft: _Draft,
) -> bool | None:
    """Decide whether the key is written as a secret; None means the flag is a conflict."""
    wanted_secret = any(fnmatch.fnmatchcase(key, pattern) for pattern in given.spec.secret_keys)
    if variable is None:
        return wanted_secret
    if wanted is None:
        return variable.is_secret
    if variable.is_secret and not wanted_secret:
        draft.warnings.append(
            PlanWarning(
                f"{key} is a secret on Netlify and stays one: the flag cannot be removed", key=key
            )
        )
        return True
    if wanted_secret and not variable.is_secret and not given.options.convert_secrets:
        draft.conflicts.append(
            Conflict(
                key,
                "is a plain variable on Netlify; turning it into a secret cannot be undone, "
                "so apply with --convert-secrets to do it",
            )
        )
        return None
    return wanted_secret or variable.is_secret


def _mixes_contexts(
    key: str, variable: RemoteVariable | None, contexts: tuple[str, ...], draft: _Draft
) -> bool:
    """Report a conflict when the key has the other kind of context than envsync manages."""
    if variable is None or not variable.values:
        return False
    manages_all = contexts == (ALL_CONTEXT,)
    remote_contexts = {value.context for value in variable.values}
    if manages_all and remote_contexts != {ALL_CONTEXT}:
        reason = "holds values for specific contexts while envsync manages 'all' here"
    elif not manages_all and ALL_CONTEXT in remote_contexts:
        reason = "holds an 'all' value while envsync manages specific contexts here"
    else:
        return False
    draft.conflicts.append(
        Conflict(
            key,
            f"{reason}; envsync never mixes the two on one key. Remove the other kind of value "
            "in Netlify's dashboard (or with `netlify env:unset`), or set NETLIFY_CONTEXT to "
            "the kind the key holds",
        )
    )
    return True


def _plan_context(
    given: PlanInput,
    key: str,
    context: str,
    wanted: SecretValue | None,
    variable: RemoteVariable | None,
    secret: bool,
    draft: _Draft,
) -> None:
    current = variable.value_for(context) if variable else None
    if secret and context == "dev" and wanted is not None:
        draft.conflicts.append(
            Conflict(key, "Netlify secrets cannot hold a value in the dev context", context)
        )
        return
    if wanted is not None:
        _plan_value(given, key, context, wanted, current, draft, secret=secret, variable=variable)
        if secret and variable is not None and not variable.is_secret:
            _convert_to_secret(draft, key, context)
        return
    if current is not None:
        _plan_removal(given, key, context, current, variable, draft)


def _convert_to_secret(draft: _Draft, key: str, context: str) -> None:
    """Turn the last NOOP into an update, because a plain value becoming a secret is a write."""
    last = draft.changes[-1]
    if last.key == key and last.context == context and last.op is Op.NOOP:
        draft.changes[-1] = Change(
            key, Op.UPDATE, context, last.old, last.new, True, reason="converted to a secret"
        )


# Ledger bookkeeping and size checks.


def _stale_ledger_slots(given: PlanInput) -> tuple[LedgerSlot, ...]:
    """Ledger entries whose key or context no longer exists on the target."""
    stale = []
    for key, context in given.ledger:
        variable = given.remote.variables.get(key)
        if variable is None or variable.value_for(context) is None:
            stale.append((key, context))
    return tuple(stale)


def _held_after(
    given: PlanInput, desired: Mapping[str, SecretValue]
) -> dict[LedgerSlot, SecretValue]:
    """Every readable value the target will hold once the plan is applied."""
    contexts: tuple[str | None, ...] = given.spec.contexts if given.rules.uses_contexts else (None,)
    held: dict[LedgerSlot, SecretValue] = {}
    for variable in given.remote:
        if variable.key == OWNERSHIP_KEY:
            continue
        for remote_value in variable.values:
            if remote_value.value is not None:
                held[(variable.key, remote_value.context)] = remote_value.value
    for key, value in desired.items():
        for context in contexts:
            held[(key, context)] = value
    return held
