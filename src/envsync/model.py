"""The records that flow through envsync: values, remote state, changes, plans and results.

Every record is a frozen dataclass. A variable's value is always held in a `SecretValue`,
which masks itself in `repr`, `str` and formatting, so that a record can be logged or
shown in a traceback without exposing what it holds. `SecretValue.reveal()` is called only
where a request body or a .env file is built, or where a person asked for `--reveal`.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


class SecretValue:
    """A variable's value or a credential that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"SecretValue holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"SecretValue(<{len(self._value)} chars>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would copy the plain value into caches and process pools unseen.
        raise TypeError("SecretValue cannot be pickled")


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "noop"


# Netlify's context names. A branch context is written "branch:NAME" inside envsync and
# sent to the platform as {"context": "branch", "context_parameter": NAME}.
ALL_CONTEXT = "all"
NETLIFY_CONTEXTS = ("all", "production", "deploy-preview", "branch-deploy", "dev", "dev-server")


@dataclass(frozen=True, slots=True)
class RemoteValue:
    """One value of a remote variable, for one context on Netlify (`context` is None on Render).

    `value` is None when the platform hides it, as Netlify does for secret values outside
    the `dev` context. `value_id` is the platform's id of this value, used to delete it alone.
    """

    context: str | None
    value: SecretValue | None
    value_id: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteVariable:
    """A variable as the platform holds it, with every value it has."""

    key: str
    values: tuple[RemoteValue, ...]
    is_secret: bool = False
    scopes: tuple[str, ...] | None = None
    updated_at: str | None = None

    def value_for(self, context: str | None) -> RemoteValue | None:
        for remote_value in self.values:
            if remote_value.context == context:
                return remote_value
        return None

    @property
    def contexts(self) -> tuple[str | None, ...]:
        return tuple(remote_value.context for remote_value in self.values)


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A resolved target: where a provider holds variables, and how envsync names it.

    `kind` is `service` or `env_group` on Render and `site` on Netlify. `ledger_id` is the
    stable identity under which the ownership ledger stores entries for this target; it
    never changes when the target is renamed on the platform.
    """

    provider: str
    kind: str
    id: str
    name: str
    account_id: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def ledger_id(self) -> str:
        return f"{self.provider}:{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class RemoteState:
    """Everything a complete read of one target returned, keyed by variable key."""

    target: TargetRef
    variables: Mapping[str, RemoteVariable]
    requests: int = 0

    def __iter__(self) -> Iterator[RemoteVariable]:
        return iter(self.variables.values())

    def __len__(self) -> int:
        return len(self.variables)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What envsync last wrote or adopted for one key and context of one target.

    `value_hash` is an HMAC-SHA256 of the value under the ledger key, in hex. `updated_at`
    is the platform's `updated_at` for the variable right after that write, when it has one.
    `written_at` is an ISO-8601 UTC time.
    """

    key: str
    context: str | None
    value_hash: str
    updated_at: str | None
    written_at: str


LedgerSlot = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change of one key (and, on Netlify, one context)."""

    key: str
    op: Op
    context: str | None = None
    old: SecretValue | None = None
    new: SecretValue | None = None
    secret: bool = False
    old_hidden: bool = False
    reason: str = ""

    @property
    def slot(self) -> LedgerSlot:
        return (self.key, self.context)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A canonical key the platform forbids; it is kept out of every write."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A change envsync must not make on its own; a person decides (often with `--force`)."""

    key: str
    reason: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Something the user should know that does not fail the target, such as a skipped key."""

    message: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of planning one target: changes, and what was left out and why."""

    target: TargetRef
    changes: tuple[Change, ...]
    rejected: tuple[Rejection, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    unmanaged: int = 0
    skipped_by_filters: int = 0
    filtered_keys: tuple[str, ...] = ()
    adopted: tuple[LedgerSlot, ...] = ()
    ledger_stale: tuple[LedgerSlot, ...] = ()

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.op is not Op.NOOP)

    @property
    def has_changes(self) -> bool:
        return any(change.op is not Op.NOOP for change in self.changes)

    def count(self, op: Op) -> int:
        return sum(1 for change in self.changes if change.op is op)


@dataclass(frozen=True, slots=True)
class CanonicalSet:
    """The variables that should exist, as read from one source, before filtering.

    `origin` names where they came from for messages (`file .env`, `vault secret/envsync`),
    never a credential or a URL with a query string.
    """

    origin: str
    values: Mapping[str, SecretValue]
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.values)


class RunMode(enum.StrEnum):
    DRY_RUN = "dry-run"
    ENFORCE = "enforce"


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What one run did to one target.

    `plan` is None when the target failed before planning (a failed read, say). `written`
    lists the changes that reached the platform, in order, which is less than the plan when
    an apply stopped half way. `applied` is true when an enforce run completed for the
    target, whether or not anything changed.
    """

    target: TargetRef
    run_id: str
    mode: RunMode
    plan: Plan | None
    applied: bool = False
    written: tuple[Change, ...] = ()
    errors: tuple[str, ...] = ()
    error_causes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    redeployed: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        if self.errors:
            return False
        if self.plan is None:
            return False
        return not (self.plan.rejected or self.plan.conflicts)
