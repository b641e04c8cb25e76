"""What every provider adapter offers the engine and the planner.

A provider is split the same way on every platform:

    client.py   the only code that knows URLs, query parameters and JSON shapes
    reader.py   a complete read of one target into a RemoteState
    writer.py   carries out a plan's changes, one confirmed write at a time
    rules.py    pure platform rules the planner consults (key names, storable values)

The engine never builds a URL and the planner never does I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from envsync.model import Change, LedgerSlot, PlanWarning, RemoteState, SecretValue, TargetRef

if TYPE_CHECKING:
    from envsync.config import Settings, TargetSpec


class PlatformRules(Protocol):
    """Pure rules of one platform, used by the planner.

    `uses_contexts` is true on Netlify, where each value belongs to a deploy context.
    `reject_key` returns why the platform forbids a key name, or None; a rejected key is
    an error of its target. `skip_value` returns why the platform cannot store a value,
    or None; a skipped key is a warning, not a change.
    """

    uses_contexts: ClassVar[bool]

    def reject_key(self, key: str) -> str | None: ...

    def skip_value(self, key: str, value: SecretValue) -> str | None: ...

    def size_warnings(
        self, desired: Mapping[LedgerSlot, SecretValue], remote: RemoteState, spec: TargetSpec
    ) -> list[PlanWarning]:
        """Warnings about the total size of what the target will hold after the plan."""
        ...


# Called by a writer after each write the platform confirmed, with the change and the
# variable's `updated_at` from the platform's answer when it has one. The engine uses it to
# record exactly which keys were written, even if a later write fails.
WriteProgress = Callable[[Change, str | None], Awaitable[None]]

# Returns the ownership ledger document to store on the target (ENVSYNC_OWNERSHIP), built
# from the writes confirmed so far. Writers call it when they write that variable.
LedgerDocument = Callable[[], str]


class Provider(Protocol):
    """One platform adapter, bound to one API token."""

    name: ClassVar[str]
    rules: PlatformRules

    async def resolve(self, spec: TargetSpec) -> list[TargetRef]:
        """Turn a configured target (`auto`, a name or an id) into concrete targets.

        Raises ResolutionError with the candidates when `auto` or a name is ambiguous.
        """
        ...

    async def read(self, target: TargetRef) -> RemoteState:
        """Read every variable of the target, or raise; a partial read is never returned."""
        ...

    async def write(
        self,
        target: TargetRef,
        spec: TargetSpec,
        remote: RemoteState,
        changes: Sequence[Change],
        progress: WriteProgress,
        ledger_document: LedgerDocument | None,
    ) -> None:
        """Carry out `changes` (no NOOPs) against the state `remote` was read from.

        Calls `progress` after each confirmed write. With `ledger_document`, also writes the
        ownership ledger variable: inside the bulk write where there is one, else last.
        Raises WriteOutcomeUnknownError when a write may or may not have happened, so that
        the engine re-reads before deciding.
        """
        ...

    async def redeploy(self, target: TargetRef) -> None:
        """Start a deploy or build so that the running service sees the new values."""
        ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[["Settings", SecretValue], Provider]


def load_provider_factory(name: str) -> ProviderFactory:
    """Import a provider's module only when it is used, to keep the CLI's start-up small."""
    from importlib import import_module

    module_name, _, attribute = PROVIDER_FACTORIES[name].partition(":")
    factory: ProviderFactory = getattr(import_module(module_name), attribute)
    return factory


PROVIDER_FACTORIES: dict[str, str] = {
    "render": "envsync.providers.render:RenderProvider",
    "netlify": "envsync.providers.netlify:NetlifyProvider",
}


def load_rules(name: str) -> PlatformRules:
    from importlib import import_module

    module_name, _, attribute = PROVIDER_RULES[name].partition(":")
    rules: PlatformRules = getattr(import_module(module_name), attribute)()
    return rules


PROVIDER_RULES: dict[str, str] = {
    "render": "envsync.providers.render.rules:RenderRules",
    "netlify": "envsync.providers.netlify.rules:NetlifyRules",
}


__all__ = [
    "PROVIDER_FACTORIES",
    "LedgerDocument",
    "PlatformRules",
    "Provider",
    "ProviderFactory",
    "WriteProgress",
    "load_provider_factory",
    "load_rules",
]
