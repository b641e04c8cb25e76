"""The engine: runs a plan or an apply over every selected target.

For each run it reads the canonical set once (a failure stops the run before any provider
call), finds each provider's token through the discovery chain, resolves the configured
targets, and then works on every target at once. Per target it:

1. takes the target's lock (applies only; applies to one target never interleave),
2. reads the whole remote state (a failed or partial read stops the target: no write),
3. loads the ownership ledger and plans,
4. in enforce mode, snapshots the previous values, writes the changes, and records each
   confirmed write in the run history and the ledger as it happens, so that a run that
   stops half way still records what it did,
5. after a write whose outcome is unknown, reads the target again, records the writes that
   read shows done, and plans again before writing anything more (at most
   MAX_WRITE_ROUNDS times),
6. redeploys when ENVSYNC_REDEPLOY is on and this run, or an earlier apply that stopped
   half way, wrote something,
7. publishes events and reports one TargetResult.

The CLI, the HTTP service and library users all call `Engine.run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from envsync.config import Settings, TargetSpec, load_targets
from envsync.errors import (
    ConfigError,
    EnvsyncError,
    ProviderError,
    WriteOutcomeUnknownError,
)
from envsync.events import EventBus, events_for, problems
from envsync.http import forget_secrets, remember_secrets
from envsync.model import (
    CanonicalSet,
    Change,
    LedgerEntry,
    LedgerSlot,
    Op,
    Plan,
    RemoteState,
    RunMode,
    SecretValue,
    TargetRef,
    TargetResult,
)
from envsync.planner import PlanInput, PlanOptions, plan_target
from envsync.providers.base import LedgerDocument, Provider, load_provider_factory
from envsync.store.records import TargetSummary

if TYPE_CHECKING:
    import httpx

    from envsync.ledger import LedgerBackend, LedgerHasher
    from envsync.locks import TargetLocks
    from envsync.store import Store

logger = logging.getLogger(__name__)

MAX_WRITE_ROUNDS = 3
DEFAULT_LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run: the mode, the targets and what a person decided for this run.

    `targets` contains `--target` values (a provider name or a target name); empty means every
    configured target. `trigger` and `actor` are recorded in the run history.

    Runs that are not a plain sync (rollback, rotation) can give the canonical set instead
    of reading the source, their own planning function instead of `plan_target`, and
    `ledger_ids` to restrict the run to targets by their ledger identity. `run_id` is set
    when the caller recorded the run's start itself (the service answers 202 with it).
    """

    mode: RunMode
    targets: tuple[str, ...] = ()
    force: bool = False
    rewrite_secrets: bool = False
    convert_secrets: bool = False
    source: str | None = None
    file: str | None = None
    trigger: str = "library"
    actor: str | None = None
    lock_timeout_s: float | None = DEFAULT_LOCK_TIMEOUT_S
    canonical: CanonicalSet | None = None
    planner: Callable[[PlanInput], Plan] | None = None
    ledger_ids: tuple[str, ...] = ()
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything one run did, one result per target."""

    run_id: str
    mode: RunMode
    results: tuple[TargetResult, ...]
    canonical_origin: str
    canonical_size: int
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def has_changes(self) -> bool:
        return any(r.plan is not None and r.plan.has_changes for r in self.results)


@dataclass(slots=True)
class _TargetWork:
    """One resolved target on its way through a run."""

    spec: TargetSpec
    ref: TargetRef
    provider: Provider
    started: float = field(default_factory=time.monotonic)
    written: list[Change] = field(default_factory=list)
    # Ledger changes of the writes confirmed in this run, kept to record them again after
    # a re-read, which starts the target backend's document afresh.
    recorded: dict[LedgerSlot, LedgerEntry] = field(default_factory=dict)
    removed: set[LedgerSlot] = field(default_factory=set)
    reading: bool = False
    # Confirmed writes not yet saved to the run history and the ledger, and the task that
    # saves them in batches.
    unsaved: list[tuple[Change, list[LedgerEntry], list[LedgerSlot]]] = field(default_factory=list)
    saver: asyncio.Task[None] | None = None


class Engine:
    """Runs plans and applies. One Engine can serve many runs (the service keeps one).

    `transports` lets tests and benchmarks route a provider's HTTP through a given httpx
    transport; `stdin` is read when the canonical file is `-`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        locks: TargetLocks | None = None,
        events: EventBus | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdin: BinaryIO | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings
        self.events = events or EventBus()
        self._store = store
        self._locks = locks
        self._environ = environ
        self._cwd = cwd
        self._stdin = stdin
        self._transports = dict(transports or {})
        self._hasher: LedgerHasher | None = None
        self._ledger: LedgerBackend | None = None
        # Called with every target's result and its request, after the run history has it
        # and before its events are published (tickets, metrics).
        self.result_hooks: list[Callable[[TargetResult, RunRequest], Awaitable[None]]] = []
        # Called after every confirmed write with the target and the change (progress).
        self.write_hooks: list[Callable[[TargetRef, Change], None]] = []

    # Shared resources, opened on first use so that a plan that fails early stays cheap.

    def store(self) -> Store:
        if self._store is None:
            from envsync.store import open_store

            self._store = open_store(self.settings.database_url.get_secret_value())
        return self._store

    def locks(self) -> TargetLocks:
        if self._locks is None:
            from envsync.locks import TargetLocks

            self._locks = TargetLocks.for_store(self.store())
        return self._locks

    def hasher(self) -> LedgerHasher:
        if self._hasher is None:
            from envsync.ledger import LedgerHasher, ledger_key_from_settings

            needs_store = self.settings.ledger_key is None
            key = ledger_key_from_settings(self.settings, self.store() if needs_store else None)
            self._hasher = LedgerHasher(key)
        return self._hasher

    def ledger(self) -> LedgerBackend:
        """The ledger backend ENVSYNC_LEDGER_BACKEND names: the store, or each target."""
        if self._ledger is None:
            from envsync.ledger import ledger_backend_from_settings

            uses_store = self.settings.ledger_backend == "database"
            self._ledger = ledger_backend_from_settings(
                self.settings, self.store() if uses_store else None
            )
        return self._ledger

    # A run.

    async def run(self, request: RunRequest) -> RunReport:
        """Plan (dry-run) or apply (enforce) every selected target; one result per target."""
        # An empty canonical set is still one the caller gave (a rollback that only deletes).
        canonical = request.canonical
        if canonical is None:
            canonical = await self._read_canonical(request)
        specs = self._select_specs(request)
        run_id = request.run_id or await self.start_run(request)
        logger.info(
            "run %s started: %s of %d targets from %s",
            run_id,
            request.mode.value,
            len(specs),
            canonical.origin,
        )

        providers: dict[str, Provider] = {}
        remembered = remember_secrets(value.reveal() for value in canonical.values.values())
        try:
            results = await self._run_specs(request, run_id, canonical, specs, providers)
        except EnvsyncError:
            await asyncio.to_thread(self.store().finish_run, run_id, "failed")
            raise
        finally:
            forget_secrets(remembered)
            for provider in providers.values():
                await provider.aclose()

        status = "succeeded" if all(result.ok for result in results) else "failed"
        await asyncio.to_thread(self.store().finish_run, run_id, status)
        self._log_summary(results)
        return RunReport(
            run_id=run_id,
            mode=request.mode,
            results=tuple(results),
            canonical_origin=canonical.origin,
            canonical_size=len(canonical),
            warnings=canonical.warnings,
        )

    async def start_run(self, request: RunRequest) -> str:
        """Record a run's start in the history and return its id."""
        return await asyncio.to_thread(
            lambda: self.store().start_run(request.trigger, request.mode, actor=request.actor)
        )

    async def _read_canonical(self, request: RunRequest) -> CanonicalSet:
        from envsync.sources import load_canonical

        return await load_canonical(
            self.settings,
            source=request.source,
            file=request.file,
            stdin=self._stdin,
            environ=self._environ,
        )

    def _select_specs(self, request: RunRequest) -> list[TargetSpec]:
        specs = load_targets(self.settings, cwd=self._cwd)
        if not request.targets:
            return specs
        chosen = [spec for spec in specs if any(spec.matches(t) for t in request.targets)]
        unknown = [t for t in request.targets if not any(spec.matches(t) for spec in specs)]
        # A target name such as netlify/web is only known after resolution; keep every spec
        # of its provider and filter again once names are resolved.
        for wanted in unknown:
            provider = wanted.split("/", 1)[0].split("-", 1)[0]
            chosen += [spec for spec in specs if spec.provider == provider and spec not in chosen]
        return chosen

    async def _run_specs(
        self,
        request: RunRequest,
        run_id: str,
        canonical: CanonicalSet,
        specs: Sequence[TargetSpec],
        providers: dict[str, Provider],
    ) -> list[TargetResult]:
        failures: list[TargetResult] = []
        tokens = await self._discover(specs)
        credentials = self._credentials(tokens, await self._other_tokens(tokens))
        # Undone with the canonical values when the run ends.
        remember_secrets(credential.reveal() for credential in credentials.values())

        work: list[_TargetWork] = []
        for spec in specs:
            try:
                provider = self._provider(spec.provider, tokens, providers)
                refs = await provider.resolve(spec)
            except EnvsyncError as error:
                failed = self._failed(run_id, request, _unresolved_ref(spec), error)
                failures.append(await self._report_result(request, run_id, failed))
                continue
            work += [_TargetWork(spec, ref, provider) for ref in refs]

        _check_targets_matched(request.targets, work, failures)
        work = [item for item in work if _wanted(item, request.targets)]
        if request.ledger_ids:
            work = [item for item in work if item.ref.ledger_id in request.ledger_ids]
        results = await asyncio.gather(
            *(self._run_target(request, run_id, canonical, item, credentials) for item in work)
        )
        return failures + list(results)

    async def _discover(self, specs: Sequence[TargetSpec]) -> dict[str, SecretValue | EnvsyncError]:
        from envsync.discovery import discover_tokens, require_token
        from envsync.logs import register_secret

        names = sorted({spec.provider for spec in specs})
        found = await discover_tokens(self.settings, names, environ=self._environ)
        tokens: dict[str, SecretValue | EnvsyncError] = {}
        for name in names:
            try:
                token = require_token(found[name])
                register_secret(token.reveal())
                tokens[name] = token
            except EnvsyncError as error:
                tokens[name] = error
        return tokens

    async def _other_tokens(
        self, tokens: Mapping[str, SecretValue | EnvsyncError]
    ) -> dict[str, SecretValue]:
        """The tokens of the providers this run does not sync, found on this machine."""
        from envsync.config import PROVIDER_NAMES
        from envsync.discovery import local_tokens

        others = [name for name in PROVIDER_NAMES if name not in tokens]
        return await local_tokens(self.settings, others, environ=self._environ)

    def _credentials(
        self,
        tokens: Mapping[str, SecretValue | EnvsyncError],
        other_tokens: Mapping[str, SecretValue],
    ) -> dict[str, SecretValue]:
        """envsync's own credentials, which no canonical value may equal or contain.

        `other_tokens` are the tokens of providers this run does not sync.
        """
        settings = self.settings
        named: dict[str, Any] = {
            "ENVSYNC_API_TOKEN": settings.api_token,
            "ENVSYNC_DATABASE_URL": settings.database_url,
            "ENVSYNC_LEDGER_KEY": settings.ledger_key,
            "ENVSYNC_SNAPSHOT_KEY": settings.snapshot_key,
            "ENVSYNC_WEBHOOK_SECRET": settings.webhook_secret,
            "VAULT_TOKEN": settings.vault_token,
            "ENVSYNC_VAULT_AUTH_TOKEN": settings.vault_auth_token,
            "ENVSYNC_DASHBOARD_AUTH_TOKEN": settings.dashboard_auth_token,
        }
        credentials = {
            name: SecretValue(secret.get_secret_value())
            for name, secret in named.items()
            if secret is not None
        }
        for index, url in enumerate(settings.webhook_urls):
            credentials[f"ENVSYNC_WEBHOOK_URLS[{index}]"] = SecretValue(url.get_secret_value())
        addresses = {
            "VAULT_ADDR": settings.vault_addr,
            "ENVSYNC_VAULT_URL": settings.vault_url,
            "ENVSYNC_DASHBOARD_URL": settings.dashboard_url,
        }
        for name, address in addresses.items():
            if address:
                credentials[name] = SecretValue(address)
        for provider, token in {**other_tokens, **tokens}.items():
            if isinstance(token, SecretValue):
                credentials[f"{provider.upper()}_API_TOKEN"] = token
        return credentials

    def _provider(
        self,
        name: str,
        tokens: Mapping[str, SecretValue | EnvsyncError],
        providers: dict[str, Provider],
    ) -> Provider:
        if name in providers:
            return providers[name]
        token = tokens[name]
        if isinstance(token, EnvsyncError):
            raise token
        factory = load_provider_factory(name)
        transport = self._transports.get(name)
        provider = (
            factory(self.settings, token, transport=transport)  # type: ignore[call-arg]
            if transport is not None
            else factory(self.settings, token)
        )
        providers[name] = provider
        return provider

    # One target.

    async def _run_target(
        self,
        request: RunRequest,
        run_id: str,
        canonical: CanonicalSet,
        work: _TargetWork,
        credentials: Mapping[str, SecretValue],
    ) -> TargetResult:
        try:
            if request.mode is RunMode.DRY_RUN:
                result = await self._plan_only(request, run_id, canonical, work, credentials)
            else:
                await asyncio.to_thread(self.store().start_target, run_id, work.ref)
                async with self.locks().hold(work.ref.ledger_id, request.lock_timeout_s):
                    try:
                        result = await self._apply(request, run_id, canonical, work, credentials)
                    finally:
                        await self._saved(work)
        except EnvsyncError as error:
            result = self._failed(run_id, request, work.ref, error, work)
        return await self._report_result(request, run_id, result)

    async def _report_result(
        self, request: RunRequest, run_id: str, result: TargetResult
    ) -> TargetResult:
        """Record one target's result, then run the result hooks and publish its events.

        Targets that failed before resolution (no token, say) come here too, so that they
        get a ticket and an ENVSYNC_FAILED event like any other failure.
        """
        summary = TargetSummary.of_result(result)
        await asyncio.to_thread(self.store().finish_target, run_id, result.target, summary)
        for hook in self.result_hooks:
            try:
                await hook(result, request)
            except Exception:
                logger.exception(
                    "a result hook failed for %s in run %s", result.target.name, run_id
                )
        for event in events_for(result):
            self.events.publish(event)
        return result

    async def _plan_only(
        self,
        request: RunRequest,
        run_id: str,
        canonical: CanonicalSet,
        work: _TargetWork,
        credentials: Mapping[str, SecretValue],
    ) -> TargetResult:
        remote = await self._read(work)
        plan = await self._plan(request, canonical, work, remote, credentials)
        return self._result(request, run_id, work, plan, applied=False)

    async def _apply(
        self,
        request: RunRequest,
        run_id: str,
        canonical: CanonicalSet,
        work: _TargetWork,
        credentials: Mapping[str, SecretValue],
    ) -> TargetResult:
        remote = await self._read(work)
        first_plan = plan = await self._plan(request, canonical, work, remote, credentials)
        if plan.pending:
            await self._snapshot(run_id, work, plan)

        for round_number in range(1, MAX_WRITE_ROUNDS + 1):
            try:
                await self._write(run_id, work, remote, plan)
                break
            except WriteOutcomeUnknownError as error:
                if round_number == MAX_WRITE_ROUNDS:
                    await self._confirm_before_failing(run_id, work, plan)
                    raise
                logger.warning(
                    "%s: %s; reading the target again before writing more",
                    work.ref.name,
                    error.message,
                )
                # The unfinished write may still land while the target is read again, so
                # the read can miss variables without looking incomplete. A whole-set PUT
                # built from it would delete them; writing key by key cannot.
                if work.spec.write_mode == "bulk":
                    work.spec = replace(work.spec, write_mode="per-key")
                remote = await self._read(work)
                await self._confirm_written(run_id, work, plan, remote)
                plan = await self._plan(request, canonical, work, remote, credentials)

        redeployed = await self._redeploy(run_id, work)
        return self._result(request, run_id, work, first_plan, applied=True, redeployed=redeployed)

    async def _confirm_written(
        self, run_id: str, work: _TargetWork, plan: Plan, remote: RemoteState
    ) -> None:
        """Record the pending changes of `plan` that a fresh read shows done.

        A write whose outcome was unknown may still have reached the platform: it acted
        before the client timed out, or its answer was cut short. Only a read confirms it,
        and without this step the run history would miss a write that happened.
        """
        recorded = {(change.slot, change.op) for change in work.written}
        for change in plan.pending:
            if (change.slot, change.op) in recorded or not _shows(remote, change):
                continue
            variable = remote.variables.get(change.key)
            updated_at = variable.updated_at if variable is not None else None
            await self._record_write(run_id, work, change, updated_at)
        await self._saved(work)

    async def _confirm_before_failing(self, run_id: str, work: _TargetWork, plan: Plan) -> None:
        """Read the target once more after the last write round failed, to record what the
        failed write did; a failure of this read is logged, because the write's own error
        is the one to report."""
        try:
            remote = await self._read(work)
        except EnvsyncError as error:
            work.reading = False
            logger.warning("%s: the read after the failed write failed: %s", work.ref.name, error)
            return
        await self._confirm_written(run_id, work, plan, remote)

    async def _read(self, work: _TargetWork) -> RemoteState:
        work.reading = True
        remote = await work.provider.read(work.ref)
        work.reading = False
        work.ref = remote.target
        # Each target runs in a task of its own, so these stay with this target's calls.
        remember_secrets(
            remote_value.value.reveal()
            for variable in remote
            for remote_value in variable.values
            if remote_value.value is not None
        )
        return remote

    async def _plan(
        self,
        request: RunRequest,
        canonical: CanonicalSet,
        work: _TargetWork,
        remote: RemoteState,
        credentials: Mapping[str, SecretValue],
    ) -> Plan:
        ledger = await self._load_ledger(work, remote)
        settings = self.settings
        options = PlanOptions(
            allow_deletions=settings.allow_deletions,
            max_deletions=settings.max_deletions,
            force=request.force,
            rewrite_secrets=request.rewrite_secrets,
            convert_secrets=request.convert_secrets,
        )
        planner = request.planner or plan_target
        return planner(
            PlanInput(
                target=work.ref,
                spec=work.spec,
                canonical=canonical.values,
                remote=remote,
                ledger=ledger,
                rules=work.provider.rules,
                hasher=self.hasher(),
                options=options,
                credentials=credentials,
            )
        )

    async def _load_ledger(
        self, work: _TargetWork, remote: RemoteState
    ) -> dict[LedgerSlot, LedgerEntry]:
        backend = self.ledger()
        entries = await asyncio.to_thread(backend.load, work.ref, remote)
        if not work.recorded and not work.removed:
            return entries

        # After a re-read, the target backend's document lacks this run's confirmed writes,
        # because it is written last.
        await asyncio.to_thread(backend.record, work.ref, work.recorded.values(), work.removed)
        for slot in work.removed:
            entries.pop(slot, None)
        entries.update(work.recorded)
        return entries

    async def _snapshot(self, run_id: str, work: _TargetWork, plan: Plan) -> None:
        """Keep the previous values of the slots this apply changes, encrypted, for rollback.

        The values written are kept too: a Netlify secret cannot be read back, so rolling
        back a later run restores the value this run wrote.
        """
        key = self.settings.snapshot_key
        if key is None or not key.get_secret_value():
            # An empty ENVSYNC_SNAPSHOT_KEY switches snapshots off, as an unset one does.
            return
        previous = {change.slot: change.old for change in plan.pending}
        written = {change.slot: change.new for change in plan.pending}
        await asyncio.to_thread(
            lambda: self.store().save_snapshot(
                run_id, work.ref.ledger_id, previous, key.get_secret_value(), written=written
            )
        )

    async def _write(self, run_id: str, work: _TargetWork, remote: RemoteState, plan: Plan) -> None:
        pending = plan.pending
        backend = self.ledger()
        adopted, stale = self._bookkeeping(plan, remote)
        if adopted or stale:
            await asyncio.to_thread(backend.record, work.ref, adopted, stale)

        document = await self._ledger_document(work, plan)
        if not pending and document is None:
            return

        async def progress(change: Change, updated_at: str | None) -> None:
            await self._record_write(run_id, work, change, updated_at)
            # The writer goes on only once the history holds this write, and writes confirmed
            # at the same time are still saved together.
            # NOTE: writers send writes of different keys at once, so a write can go out
            # while an earlier one is being saved. A process killed then leaves a history
            # that lacks the last writes it confirmed; the next run reads them back.
            await self._saved(work)

        try:
            await work.provider.write(work.ref, work.spec, remote, pending, progress, document)
        finally:
            await self._saved(work)

    async def _ledger_document(self, work: _TargetWork, plan: Plan) -> LedgerDocument | None:
        """The function the writer calls for ENVSYNC_OWNERSHIP, when the ledger lives there.

        Render's bulk write sends the document inside the same PUT as the changes, which
        succeed or fail together, so the pending changes are recorded as written first.
        Other writers call it last, when every confirmed write has been recorded.
        """
        backend = self.ledger()
        document = backend.ledger_document(work.ref)
        if document is None:
            return None
        if not plan.pending and not backend.needs_write(work.ref):
            return None
        if work.ref.kind == "service" and work.spec.write_mode == "bulk":
            upserts = [
                self._entry(change.key, change.context, change.new, None)
                for change in plan.pending
                if change.op is not Op.DELETE and change.new is not None
            ]
            removals = [change.slot for change in plan.pending if change.op is Op.DELETE]
            await asyncio.to_thread(backend.record, work.ref, upserts, removals)
        return document

    async def _record_write(
        self, run_id: str, work: _TargetWork, change: Change, updated_at: str | None
    ) -> None:
        """Remember one confirmed write in memory at once, and have it saved to the run
        history and the ledger.

        Saving is batched: a task per target saves every write confirmed since its last
        save in one transaction each for the history and the ledger, and `_write` waits for
        it before it returns or raises. One save per write would cost two transactions per
        key, which on a large apply took longer than the API calls themselves.
        """
        work.written.append(change)
        for hook in self.write_hooks:
            hook(work.ref, change)
        upserts: list[LedgerEntry] = []
        removals: list[LedgerSlot] = []
        if change.op is Op.DELETE:
            work.recorded.pop(change.slot, None)
            work.removed.add(change.slot)
            removals.append(change.slot)
        elif change.new is not None:
            entry = self._entry(change.key, change.context, change.new, updated_at)
            work.removed.discard(change.slot)
            work.recorded[change.slot] = entry
            upserts.append(entry)

        if self.settings.ledger_backend == "target":
            # That ledger is a document in memory until the writer sends it, last: it must
            # hold this write before the writer asks for it.
            self.ledger().record(work.ref, upserts, removals)
            upserts, removals = [], []
        work.unsaved.append((change, upserts, removals))
        if work.saver is None or work.saver.done():
            work.saver = asyncio.create_task(self._save_writes(run_id, work))

    async def _save_writes(self, run_id: str, work: _TargetWork) -> None:
        """Save the confirmed writes in batches until none is left unsaved."""
        while work.unsaved:
            batch, work.unsaved = work.unsaved, []
            await asyncio.to_thread(self._persist_writes, run_id, work.ref, batch)

    def _persist_writes(
        self,
        run_id: str,
        ref: TargetRef,
        batch: Sequence[tuple[Change, list[LedgerEntry], list[LedgerSlot]]],
    ) -> None:
        writes = [(change.key, change.context, change.op.value) for change, _, _ in batch]
        self.store().record_writes(run_id, ref.ledger_id, writes)
        upserts = [entry for _, entries, _ in batch for entry in entries]
        removals = [slot for _, _, slots in batch for slot in slots]
        if upserts or removals:
            self.ledger().record(ref, upserts, removals)

    async def _saved(self, work: _TargetWork) -> None:
        """Wait until every confirmed write of the target is saved; raise a failed save."""
        while work.saver is not None:
            saver = work.saver
            await asyncio.wait({saver})
            if work.saver is saver:
                work.saver = None
            error = None if saver.cancelled() else saver.exception()
            if error is not None:
                raise error

    def _entry(
        self, key: str, context: str | None, value: SecretValue, updated_at: str | None
    ) -> LedgerEntry:
        return LedgerEntry(
            key=key,
            context=context,
            value_hash=self.hasher().hash(value),
            updated_at=updated_at,
            written_at=_now(),
        )

    def _bookkeeping(
        self, plan: Plan, remote: RemoteState
    ) -> tuple[list[LedgerEntry], list[LedgerSlot]]:
        """Ledger changes that need no write: adopted values and entries of vanished keys."""
        changes = {change.slot: change for change in plan.changes}
        upserts = []
        for slot in plan.adopted:
            change = changes.get(slot)
            if change is None or change.new is None:
                continue
            variable = remote.variables.get(slot[0])
            updated_at = variable.updated_at if variable else None
            upserts.append(self._entry(slot[0], slot[1], change.new, updated_at))
        return upserts, list(plan.ledger_stale)

    async def _redeploy(self, run_id: str, work: _TargetWork) -> bool:
        if not self.settings.redeploy:
            return False
        if not work.written and not await self._deploy_owed(run_id, work):
            return False
        await work.provider.redeploy(work.ref)
        return True

    async def _deploy_owed(self, run_id: str, work: _TargetWork) -> bool:
        """Whether an earlier apply wrote to the target and stopped before it completed.

        Its redeploy never ran or failed, so the running service may not see its writes,
        and this run finds nothing left to write that would trigger one.

        NOTE: a run killed before it saved any write is not found here, so its writes wait
        for the next change to be deployed.
        """
        earlier = await asyncio.to_thread(
            self.store().unfinished_writes, work.ref.ledger_id, run_id
        )
        if earlier:
            logger.info(
                "%s: redeploying for the writes of unfinished runs %s",
                work.ref.name,
                ", ".join(earlier),
            )
        return bool(earlier)

    # Results.

    def _result(
        self,
        request: RunRequest,
        run_id: str,
        work: _TargetWork,
        plan: Plan,
        *,
        applied: bool,
        redeployed: bool = False,
    ) -> TargetResult:
        warnings = []
        if applied and work.written and not redeployed:
            warnings.append("the change takes effect at the next deploy (ENVSYNC_REDEPLOY=false)")
        return TargetResult(
            target=work.ref,
            run_id=run_id,
            mode=request.mode,
            plan=replace(plan, target=work.ref),
            applied=applied,
            written=tuple(work.written),
            warnings=tuple(warnings),
            redeployed=redeployed,
            duration_s=time.monotonic() - work.started,
        )

    def _failed(
        self,
        run_id: str,
        request: RunRequest,
        ref: TargetRef,
        error: EnvsyncError,
        work: _TargetWork | None = None,
    ) -> TargetResult:
        logger.error("%s: %s", ref.name, error)
        cause = error.cause
        if isinstance(error, ProviderError) and work is not None and work.written:
            cause = "partial_apply"
        elif work is not None and work.reading and cause not in ("auth", "rate_limited"):
            cause = "read_failed"
        return TargetResult(
            target=ref,
            run_id=run_id,
            mode=request.mode,
            plan=None,
            applied=False,
            written=tuple(work.written) if work else (),
            errors=(str(error),),
            error_causes=(cause,),
            duration_s=time.monotonic() - work.started if work else 0.0,
        )

    def _log_summary(self, results: Sequence[TargetResult]) -> None:
        """Log one line per provider in the original EnvSync form."""
        by_provider: dict[str, list[TargetResult]] = {}
        for result in results:
            by_provider.setdefault(result.target.provider, []).append(result)
        for provider, items in sorted(by_provider.items()):
            applied = all(item.applied for item in items)
            changes = sum(_change_count(item) for item in items)
            errors = sum(len(problems(item)) for item in items)
            logger.info(
                "[ENVSYNC] %s: applied=%s changes=%d errors=%d", provider, applied, changes, errors
            )


def _change_count(result: TargetResult) -> int:
    """Changes made by an apply, or pending in a plan."""
    if result.applied:
        return len(result.written)
    if result.plan is None:
        return 0
    return len(result.plan.pending)


def _check_targets_matched(
    wanted: Sequence[str], work: Sequence[_TargetWork], failures: Sequence[TargetResult]
) -> None:
    """Raise ConfigError for a `--target` value that selects no target, so a typo in a CI
    job fails instead of syncing nothing."""
    known = [item.ref.name for item in work] + [result.target.name for result in failures]
    unmatched = [
        target
        for target in wanted
        if not any(_wanted(item, (target,)) for item in work)
        and not any(target in (r.target.provider, r.target.name) for r in failures)
    ]
    if unmatched:
        raise ConfigError(
            "--target",
            f"{', '.join(unmatched)} selects no configured target",
            hint=f"the targets are: {', '.join(known) or 'none'}; a provider name "
            "(render, netlify) selects all of its targets",
        )


def _wanted(work: _TargetWork, targets: Sequence[str]) -> bool:
    if not targets:
        return True
    names = {
        work.spec.provider,
        work.ref.name,
        work.ref.id,
        work.spec.name,
        work.spec.selector,
        work.spec.unresolved_name,
    }
    return any(target in names for target in targets)


def _shows(remote: RemoteState, change: Change) -> bool:
    """Whether a read target holds the outcome of a change. A hidden value (a Netlify
    secret) confirms nothing."""
    variable = remote.variables.get(change.key)
    current = variable.value_for(change.context) if variable is not None else None
    if change.op is Op.DELETE:
        return current is None
    return current is not None and current.value is not None and current.value == change.new


def _unresolved_ref(spec: TargetSpec) -> TargetRef:
    return TargetRef(spec.provider, spec.kind, spec.selector, spec.unresolved_name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
