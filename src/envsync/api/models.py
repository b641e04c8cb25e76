"""Request and response models of the HTTP API, as the OpenAPI schema shows them.

Routes build their bodies from `envsync.report` and the store's records and return them
as JSON; these models document those shapes and validate request bodies. No model has a
field for a variable's value except `RotateRequest.value`, which is a SecretStr and is
never sent back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ErrorBody(BaseModel):
    """An error response: the error's class or kind, and a message without values."""

    error: str
    message: str
    setting: str | None = None
    providers: list[str] | None = None
    run_id: str | None = None


class ChangeEntry(BaseModel):
    key: str
    op: Literal["create", "update", "delete", "noop"]
    context: str | None = Field(None, description="Netlify only: the context of the value.")
    from_val: str | None = Field(None, description="Masked: `sha:<6 hex> (<N> chars)`.")
    to_val: str | None = Field(None, description="Masked: `sha:<6 hex> (<N> chars)`.")
    secret: bool | None = None
    reason: str | None = None
    target: str | None = Field(None, description="In a provider summary: the target's name.")


class RejectedEntry(BaseModel):
    key: str
    reason: str


class ConflictEntry(BaseModel):
    key: str
    reason: str
    context: str | None = None


class TargetResultBody(BaseModel):
    """One target's result, which is also the response for a provider with one target."""

    provider: str
    target: str
    run_id: str
    mode: Literal["dry-run", "enforce"]
    applied: bool
    diff: list[ChangeEntry]
    rejected: list[RejectedEntry]
    conflicts: list[ConflictEntry]
    warnings: list[str]
    unmanaged: int
    skipped_by_filters: int
    counts: dict[str, int]
    written: int
    redeployed: bool
    errors: list[str]
    duration_s: float


class TargetError(BaseModel):
    target: str
    error: str


class ProviderSummaryBody(BaseModel):
    """A provider with several targets: every target's diff and errors, then each target."""

    provider: str
    mode: Literal["dry-run", "enforce"]
    applied: bool
    diff: list[ChangeEntry]
    errors: list[TargetError]
    targets: list[TargetResultBody]


ProviderBody = TargetResultBody | ProviderSummaryBody


class ApplyAllBody(BaseModel):
    ok: bool
    run_id: str
    results: list[ProviderBody]


class RunAccepted(BaseModel):
    """A run started in the background (`?wait=false`)."""

    run_id: str
    status: Literal["running"]
    status_url: str


class KeyChangeEntry(BaseModel):
    key: str
    context: str | None
    op: Literal["create", "update", "delete", "noop"]


class RunTargetBody(BaseModel):
    target: str
    provider: str
    ledger_id: str
    counts: dict[str, int]
    changes: list[KeyChangeEntry]
    written: list[KeyChangeEntry]
    errors: list[str]
    error_causes: list[str]
    duration_s: float | None
    applied: bool
    finished: bool


class RunBody(BaseModel):
    id: str
    started_at: str
    ended_at: str | None
    trigger: str
    actor: str | None
    mode: Literal["dry-run", "enforce"]
    status: Literal["running", "succeeded", "failed", "interrupted", "abandoned"]
    targets: list[RunTargetBody]
    in_flight: bool | None = Field(None, description="Whether this server process runs it now.")
    error: str | None = Field(None, description="Why it failed before any target, if known.")


class RunsPage(BaseModel):
    runs: list[RunBody]
    limit: int
    offset: int
    next_offset: int | None


class TicketBody(BaseModel):
    id: str
    target: str
    cause: str
    opened: str
    last_seen: str
    count: int
    diagnosis: str
    next_step: str
    closed: str | None
    open: bool


class TicketsBody(BaseModel):
    tickets: list[TicketBody]


class HealthBody(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    auth: Literal["token", "insecure-local"]
    config: dict[str, object]
    scheduler: dict[str, object]
    store: dict[str, object]
    in_flight: list[str]
    last_runs: dict[str, dict[str, object]]


class RotateRequest(BaseModel):
    """A new value for one key, given or generated; the value is never sent back."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=256)
    value: SecretStr | None = None
    generate: bool = False

    @model_validator(mode="after")
    def _one_source_of_value(self) -> RotateRequest:
        if self.generate == (self.value is not None):
            raise ValueError('give either "value" or "generate": true, not both and not neither')
        return self


class SkippedKey(BaseModel):
    target: str
    key: str
    context: str | None
    reason: str


class RollbackBody(BaseModel):
    """A rollback: its own run (None when nothing can be restored) and the keys it skipped."""

    ok: bool
    rolled_back_run_id: str
    applied: bool
    skipped: list[SkippedKey]
    message: str
    run_id: str | None
    mode: Literal["dry-run", "enforce"] | None
    results: list[ProviderBody]


class RotateBody(BaseModel):
    """A rotation: where the new value was written, and the apply run. Never the value."""

    key: str
    origin: str
    generated: bool
    ok: bool
    run_id: str
    mode: Literal["enforce"]
    results: list[ProviderBody]
