"""The exception tree of envsync.

    EnvsyncError                  every error envsync raises on purpose
    ├── ConfigError               a setting or envsync.toml field is invalid
    ├── SourceError               the canonical set could not be read
    │   ├── DotenvParseError      a .env file breaks the format (file, line, what is wrong)
    │   ├── SecretDeletedError    the latest Vault KV v2 version is deleted or destroyed
    │   └── SourceFetchError      a vault or dashboard request failed (status, timeout, redirect)
    ├── CredentialInSourceError   a canonical value equals one of envsync's own credentials
    ├── DiscoveryError            a provider token was not found via the discovery chain
    ├── ResolutionError           `auto` or a name did not resolve to exactly one target
    ├── ProviderError             a provider call failed (provider, target, method, path, status)
    │   ├── AuthError             401 or 403: the token is invalid or lacks permission
    │   ├── RateLimitedError      429 persisted after every retry
    │   ├── NotFoundError         404 on a target or key that should exist
    │   ├── ProviderUnavailableError  5xx, timeouts or dropped connections after every retry
    │   ├── IncompleteReadError   a read failed half way, repeated a cursor or made no sense
    │   ├── UnexpectedResponseError  the platform answered with a shape envsync cannot use
    │   └── WriteOutcomeUnknownError a write may or may not have reached the platform
    ├── LockTimeoutError          another apply of the same target is still running
    ├── StoreError                the run history or ledger store failed
    ├── RollbackError             a run cannot be rolled back (unknown, a dry-run, no snapshots)
    └── RotationError             a key cannot be rotated (filters, key rules, its value)

Every message names the target, key, setting, file or line involved and says what to do.
No message holds a variable's value or a token: callers pass names, never values, and
provider errors strip query strings and authorization headers before they keep any text.
"""

from __future__ import annotations


class EnvsyncError(Exception):
    """Base of every error envsync raises on purpose.

    `hint` tells the user what to do next; `retryable` says whether running the same
    command again could succeed without a change on the user's side.
    """

    retryable: bool = False
    cause: str = "error"

    def __init__(self, message: str, *, hint: str = "", target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.target = target

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(EnvsyncError):
    """A setting has an invalid value; the message names it and lists the accepted values."""

    cause = "config"

    def __init__(self, setting: str, message: str, *, hint: str = "") -> None:
        super().__init__(f"{setting}: {message}", hint=hint)
        self.setting = setting


class SourceError(EnvsyncError):
    """The canonical set could not be read; nothing is synced."""

    cause = "source"


class DotenvParseError(SourceError):
    """A .env file breaks the format. Names the file and line, never the value."""

    def __init__(self, path: str, line: int, problem: str, *, hint: str = "") -> None:
        super().__init__(f"{path}, line {line}: {problem}", hint=hint)
        self.path = path
        self.line = line
        self.problem = problem


class SecretDeletedError(SourceError):
    """The latest version of a Vault KV v2 secret is soft-deleted or destroyed."""


class SourceFetchError(SourceError):
    """A request to a vault or dashboard failed for good.

    `where` names the source and its URL without query string; `reason` says what went
    wrong in a few words, for lists such as the discovery chain's attempts. `status` is the
    HTTP status when there was an answer.
    """

    def __init__(
        self, where: str, reason: str, *, status: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(f"{where}: {reason}", hint=hint)
        self.where = where
        self.reason = reason
        self.status = status
        self.retryable = status is None or status == 429 or status >= 500


class CredentialInSourceError(SourceError):
    """A canonical value equals one of envsync's own credentials, so it may not leave."""


class DiscoveryError(EnvsyncError):
    """A provider's API token was found by no step of the discovery chain.

    `attempts` lists, per step, why it had nothing, so the message can say where to put it.
    """

    cause = "auth"

    def __init__(self, message: str, attempts: list[tuple[str, str]], *, hint: str = "") -> None:
        detail = "; ".join(f"{step}: {reason}" for step, reason in attempts)
        super().__init__(f"{message} (tried {detail})" if attempts else message, hint=hint)
        self.attempts = attempts


class ResolutionError(EnvsyncError):
    """A target given as `auto` or by name matched no target or several."""

    cause = "config"

    def __init__(self, message: str, candidates: list[str], *, hint: str = "") -> None:
        listed = ", ".join(candidates) if candidates else "none"
        super().__init__(f"{message}; candidates: {listed}", hint=hint)
        self.candidates = candidates


class ProviderError(EnvsyncError):
    """A call to a provider's API failed.

    `path` never contains a query string and `detail` is the platform's own message with
    any credential removed. `written_keys` is set by the engine when the failure stopped an
    apply half way.
    """

    cause = "provider"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        method: str = "",
        path: str = "",
        status: int | None = None,
        detail: str = "",
        target: str | None = None,
        hint: str = "",
    ) -> None:
        where = f"{method} {path}".strip()
        parts = [f"{provider}: {message}"]
        if where:
            parts.append(f"on {where}")
        if status is not None:
            parts.append(f"(HTTP {status})")
        if detail:
            parts.append(f": {detail}")
        super().__init__(" ".join(parts).replace(" :", ":"), hint=hint, target=target)
        self.provider = provider
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail


class AuthError(ProviderError):
    cause = "auth"


class RateLimitedError(ProviderError):
    cause = "rate_limited"
    retryable = True


class NotFoundError(ProviderError):
    cause = "not_found"


class ProviderUnavailableError(ProviderError):
    cause = "provider_unavailable"
    retryable = True


class IncompleteReadError(ProviderError):
    cause = "read_failed"
    retryable = True


class UnexpectedResponseError(ProviderError):
    cause = "unexpected_response"


class WriteOutcomeUnknownError(ProviderError):
    """A write failed in a way that leaves its effect unknown (timeout, dropped connection, 5xx).

    The engine re-reads the target before deciding what to do next.
    """

    cause = "partial_apply"
    retryable = True


class LockTimeoutError(EnvsyncError):
    cause = "locked"
    retryable = True


class StoreError(EnvsyncError):
    cause = "store"


class RollbackError(EnvsyncError):
    """A run cannot be rolled back: it is unknown, wrote nothing, or has no snapshot."""

    cause = "rollback"


class RotationError(EnvsyncError):
    """A key cannot be rotated: the filters or a platform's key rules leave it out, or the
    new value cannot be stored."""

    cause = "rotate"
