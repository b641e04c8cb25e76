"""Reads of HashiCorp Vault KV v2 secrets through hvac, for the vault source and discovery.

hvac is synchronous, so each read runs in a worker thread. Transient failures (timeouts,
connection failures, 429 and 5xx) are retried with the same backoff as every other token
and canonical source. Errors name the mount and path, never the token: hvac's own
exception text contains the request URL, so it is never copied into a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from envsync.config import Settings
from envsync.errors import ConfigError, SecretDeletedError, SourceError, SourceFetchError
from envsync.sources.http import after_attempts, origin_of, require_safe_url, retry_policy

logger = logging.getLogger(__name__)

# Status codes of hvac's exception classes (hvac.exceptions.VaultError.from_status, hvac 2.4).
HVAC_STATUS = {
    "InvalidRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "InvalidPath": 404,
    "RateLimitExceeded": 429,
    "InternalServerError": 500,
    "VaultNotInitialized": 501,
    "BadGateway": 502,
    "VaultDown": 503,
}


@dataclass(frozen=True, slots=True)
class KvSecret:
    """The latest version of one KV v2 secret: its fields, as JSON values, and its version."""

    mount: str
    path: str
    data: Mapping[str, Any]
    version: int | None


class CrossOriginRedirect(requests.RequestException):
    """A redirect towards another origin, which envsync does not follow."""

    def __init__(self, status: int, target_origin: str) -> None:
        super().__init__(f"HTTP {status} redirect to {target_origin}")
        self.status = status
        self.target_origin = target_origin


class SameOriginSession(requests.Session):
    """A requests session that follows a redirect only within the origin it was sent to.

    requests removes the Authorization header on a redirect to another host but keeps
    every other header, so Vault's X-Vault-Token would travel on.
    """

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None

        absolute = urljoin(resp.url, target)
        if origin_of(absolute) != origin_of(resp.url):
            raise CrossOriginRedirect(resp.status_code, origin_of(absolute))
        return target


class _TransientFailure(Exception):
    """A failure that another attempt may not have: a timeout, no connection, 429 or 5xx."""

    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def read_kv2(settings: Settings, mount: str, path: str) -> KvSecret:
    """Read the latest version of `mount`/`path` from the Vault at VAULT_ADDR.

    Raises SecretDeletedError when that version is soft-deleted or destroyed, SourceError
    when there is no secret at the path, SourceFetchError when Vault cannot be read and
    ConfigError when VAULT_ADDR is missing or not safe.
    """
    address = settings.vault_addr
    if not address:
        raise ConfigError("VAULT_ADDR", "is not set", hint="set it to the address of your Vault")
    require_safe_url(address, "VAULT_ADDR")

    where = f"vault {mount}/{path}"
    policy = retry_policy(settings)
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(_read_once, settings, address, mount, path)
        except _TransientFailure as failure:
            attempt += 1
            if attempt > policy.max_retries:
                raise SourceFetchError(
                    where,
                    f"{failure.reason} {after_attempts(attempt)}",
                    status=failure.status,
                    hint="check that Vault is up and reachable at VAULT_ADDR",
                ) from None

            delay = policy.backoff(attempt - 1)
            logger.warning(
                "%s: %s; retrying in %.1fs (attempt %d of %d)",
                where,
                failure.reason,
                delay,
                attempt + 1,
                policy.max_retries + 1,
            )
            await asyncio.sleep(delay)


def _read_once(settings: Settings, address: str, mount: str, path: str) -> KvSecret:
    # Imported here so that commands that never touch Vault do not load hvac.
    import hvac  # type: ignore[import-untyped]  # hvac ships no type information
    from hvac.exceptions import VaultError  # type: ignore[import-untyped]

    token = settings.vault_token.get_secret_value() if settings.vault_token else ""
    # An empty token rather than None: hvac falls back to VAULT_TOKEN and ~/.vault-token
    # when given None, which would bypass envsync's own settings.
    client = hvac.Client(
        url=address,
        token=token,
        namespace=settings.vault_namespace or None,
        timeout=settings.http_timeout_s,
        session=SameOriginSession(),
    )
    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except (VaultError, requests.RequestException) as error:
        raise _translate(error, mount, path) from None
    finally:
        client.adapter.close()

    return _secret_from_response(response, mount, path)


def _translate(error: Exception, mount: str, path: str) -> Exception:
    """Turn an hvac or requests failure into an envsync error or a transient failure."""
    where = f"vault {mount}/{path}"
    if isinstance(error, CrossOriginRedirect):
        return SourceFetchError(
            where,
            f"responded with HTTP {error.status}, a redirect to {error.target_origin}, which "
            "envsync does not follow because the request carries the Vault token",
            status=error.status,
            hint="set VAULT_ADDR to the address the redirect points to",
        )
    if isinstance(error, requests.Timeout):
        return _TransientFailure("the request timed out", None)
    if isinstance(error, requests.ConnectionError):
        return _TransientFailure("could not connect", None)
    if isinstance(error, requests.RequestException):
        return SourceFetchError(where, f"the request failed ({type(error).__name__})")

    status = HVAC_STATUS.get(type(error).__name__)
    if status == 404:
        return _missing_or_deleted(error, mount, path)
    if status in (401, 403):
        return SourceFetchError(
            where,
            f"HTTP {status}: permission denied",
            status=status,
            hint=f"check VAULT_TOKEN, VAULT_NAMESPACE and that the token's policy can read "
            f"{mount}/data/{path}",
        )
    if status is None or status == 429 or status >= 500:
        return _TransientFailure(f"HTTP {status or 'error'}", status)
    return SourceFetchError(where, f"HTTP {status}: Vault rejected the request", status=status)


def _missing_or_deleted(error: Any, mount: str, path: str) -> SourceError:
    """Build the error for a KV v2 404, whose body has metadata when the version is deleted."""
    where = f"vault {mount}/{path}"
    metadata = _error_metadata(error)
    if metadata is None:
        return SourceError(
            f"{where}: no secret at path {path!r} of mount {mount!r}",
            hint="check ENVSYNC_VAULT_MOUNT and ENVSYNC_VAULT_PATH",
        )

    version = metadata.get("version")
    if metadata.get("destroyed") is True:
        return SecretDeletedError(
            f"{where}: the secret is destroyed at version {version}",
            hint="write a new version of the secret; envsync never syncs an empty set instead",
        )
    return SecretDeletedError(
        f"{where}: the secret is deleted at version {version}",
        hint=f"undelete it (vault kv undelete -mount={mount} -versions={version} {path}) "
        "or write a new version; envsync never syncs an empty set instead",
    )


def _error_metadata(error: Any) -> dict[str, Any] | None:
    """Return the version metadata of a 404 response for a version that exists without data."""
    body = error.json
    if body is None and error.text:
        # hvac parses the body only when Content-Type is exactly application/json.
        try:
            body = json.loads(error.text)
        except ValueError:
            body = None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return None

    metadata = body["data"].get("metadata")
    if not isinstance(metadata, dict):
        return None
    if metadata.get("destroyed") is True or metadata.get("deletion_time"):
        return metadata
    return None


def _secret_from_response(response: Any, mount: str, path: str) -> KvSecret:
    where = f"vault {mount}/{path}"
    data = response.get("data") if isinstance(response, dict) else None
    fields = data.get("data") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(fields, dict):
        raise SourceFetchError(
            where,
            "returned a body that is not a KV v2 secret",
            hint="check that ENVSYNC_VAULT_MOUNT is a KV version 2 secrets engine",
        )

    metadata = data.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return KvSecret(mount, path, fields, version if isinstance(version, int) else None)
