"""GET requests to the token and canonical sources that speak JSON over HTTP.

A bridge-style vault and a dashboard both receive a bearer token, so every request here
keeps that token to its own origin:

- A plain `http://` URL is accepted only for a loopback host (127.0.0.0/8, ::1,
  localhost). Anything else raises ConfigError naming the setting, before any request.
- TLS certificates are always verified (httpx's default, never switched off here).
- Redirects are never followed. A 3xx response is an error naming the status and the
  target's origin, so the Authorization header cannot reach another host.
- Vault and dashboard URLs are credentials: a dashboard URL may be signed in its path,
  and a vault's path can name the secret store. Messages and log lines show only the
  origin, `/...` in place of a configured path, and the fixed API path envsync adds
  (such as `/bridge/vault/secret`). They never contain the token or a response body.

Reads are retried on timeouts, connection failures, 429 and 5xx with capped exponential
backoff (ENVSYNC_MAX_RETRIES, ENVSYNC_RETRY_BASE_S, ENVSYNC_RETRY_MAX_S), and a 429's
Retry-After is honoured up to ENVSYNC_RETRY_MAX_S.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from envsync import __version__
from envsync.config import Settings
from envsync.errors import ConfigError, SourceFetchError
from envsync.http import RetryPolicy, retry_after_delay
from envsync.model import SecretValue

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """Check whether `host` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """Return the origin of `url` as scheme://host:port, filling in the default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{parts.scheme}://{host}:{port}"


def display_credential_url(url: str) -> str:
    """Return the origin of `url`, with `/...` standing for its path when it has one.

    A vault or dashboard URL counts as a credential, so nothing after the origin is shown.
    """
    hidden_path = "/..." if urlsplit(url).path.strip("/") else ""
    return f"{_display_origin(url)}{hidden_path}"


def _display_origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def require_safe_url(url: str, setting: str) -> None:
    """Raise ConfigError unless `url` is https://, or plain http:// to a loopback host.

    A bearer token sent over plain HTTP can be read by anyone on the path; on loopback the
    request never leaves the machine.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    raise ConfigError(
        setting,
        f"{origin_of(url)} would receive a credential without TLS; plain http:// is "
        "accepted only for loopback hosts (127.0.0.1, ::1, localhost)",
        hint="use an https:// URL",
    )


def after_attempts(count: int) -> str:
    return "after 1 attempt" if count == 1 else f"after {count} attempts"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        base_s=settings.retry_base_s,
        max_s=settings.retry_max_s,
        timeout_s=settings.http_timeout_s,
    )


@dataclass(frozen=True, slots=True)
class JsonEndpoint:
    """One URL of a token or canonical source, with the bearer token it receives.

    `setting` and `token_setting` name where the URL and the token were configured, so
    that errors can name the setting to change. `api_path` is the part of `url` that
    envsync appended to the configured URL; `where` shows it after the hidden rest.
    """

    label: str
    url: str
    setting: str
    token: SecretValue | None
    token_setting: str
    api_path: str = ""

    @property
    def shown_url(self) -> str:
        """The URL as messages and logs show it: origin, hidden path, `api_path`."""
        configured = self.url.removesuffix(self.api_path) if self.api_path else self.url
        return f"{display_credential_url(configured)}{self.api_path}"

    @property
    def where(self) -> str:
        return f"{self.label} {self.shown_url}"


@dataclass(frozen=True, slots=True)
class JsonResult:
    """The status and parsed JSON body of a successful response. The body is None for a 404."""

    status: int
    body: Any


async def get_json(
    endpoint: JsonEndpoint,
    settings: Settings,
    *,
    params: Mapping[str, str] | None = None,
    not_found_ok: bool = False,
) -> JsonResult:
    """Send GET to the endpoint, retrying transient failures, and return its JSON body.

    With `not_found_ok`, a 404 returns JsonResult(404, None) instead of raising. Raises
    ConfigError for an unsafe URL or token and SourceFetchError for any other failure.
    """
    require_safe_url(endpoint.url, endpoint.setting)
    headers = _request_headers(endpoint)
    policy = retry_policy(settings)

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout_s), follow_redirects=False
    ) as client:
        response = await _get_with_retries(client, endpoint, params, headers, policy)
    return _read_response(endpoint, response, not_found_ok)


async def _get_with_retries(
    client: httpx.AsyncClient,
    endpoint: JsonEndpoint,
    params: Mapping[str, str] | None,
    headers: dict[str, str],
    policy: RetryPolicy,
) -> httpx.Response:
    """Send GET until a response that is not transient arrives, or raise SourceFetchError."""
    attempt = 0
    while True:
        response, failure = await _send_once(client, endpoint, params, headers)
        if response is not None and not _is_transient(response.status_code):
            return response

        attempt += 1
        status = response.status_code if response is not None else None
        reason = failure or f"HTTP {status}"
        delay = _retry_delay(response, policy, attempt)
        if delay is None:
            raise SourceFetchError(
                endpoint.where,
                f"{reason} {after_attempts(attempt)}",
                status=status,
                hint="check that the service is up and run envsync again",
            )

        logger.warning(
            "%s: %s; retrying in %.1fs (attempt %d of %d)",
            endpoint.where,
            reason,
            delay,
            attempt + 1,
            policy.max_retries + 1,
        )
        await asyncio.sleep(delay)


def _request_headers(endpoint: JsonEndpoint) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": f"envsync/{__version__}"}
    if endpoint.token is None:
        return headers

    raw = endpoint.token.reveal()
    token = raw.strip()
    if not token:
        return headers
    if token != raw:
        logger.warning(
            "%s has surrounding whitespace; envsync sends it trimmed", endpoint.token_setting
        )
    if any(character.isspace() or not character.isprintable() for character in token):
        # An HTTP library's error for an invalid header repeats the header, token included.
        raise ConfigError(
            endpoint.token_setting,
            "contains whitespace or a control character, which cannot be sent in a header",
            hint="set it to the token alone, on one line",
        )
    headers["Authorization"] = f"Bearer {token}"
    return headers


async def _send_once(
    client: httpx.AsyncClient,
    endpoint: JsonEndpoint,
    params: Mapping[str, str] | None,
    headers: dict[str, str],
) -> tuple[httpx.Response | None, str | None]:
    """Send one GET and log it; return the response, or None and why the request failed."""
    url = httpx.URL(endpoint.url)
    if params:
        # Merged by hand, because httpx replaces a URL's own query with `params`.
        url = url.copy_merge_params(dict(params))

    started = time.monotonic()
    try:
        response = await client.get(url, headers=headers)
    except httpx.TransportError as failure:
        _log_call(endpoint, "failed", started)
        return None, _describe_failure(failure)

    _log_call(endpoint, str(response.status_code), started)
    return response, None


def _log_call(endpoint: JsonEndpoint, outcome: str, started: float) -> None:
    elapsed_ms = (time.monotonic() - started) * 1000
    logger.info("%s GET %s %s %.0fms", endpoint.label, endpoint.shown_url, outcome, elapsed_ms)


def _describe_failure(failure: httpx.TransportError) -> str:
    if isinstance(failure, httpx.TimeoutException):
        return "the request timed out"
    if isinstance(failure, httpx.ConnectError):
        return "could not connect"
    if isinstance(failure, httpx.RemoteProtocolError):
        return "the connection closed before a complete response"
    return f"the request failed ({type(failure).__name__})"


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_delay(
    response: httpx.Response | None, policy: RetryPolicy, attempt: int
) -> float | None:
    """Seconds to wait before the next attempt, or None when every retry is spent."""
    if attempt > policy.max_retries:
        return None
    if response is not None and response.status_code == 429:
        asked = retry_after_delay(response.headers, time.time())
        if asked is not None:
            return min(asked, policy.max_s)
    return policy.backoff(attempt - 1)


def _read_response(
    endpoint: JsonEndpoint, response: httpx.Response, not_found_ok: bool
) -> JsonResult:
    status = response.status_code
    if response.is_redirect:
        target = response.headers.get("location", "")
        target_origin = origin_of(str(response.url.join(target))) if target else "nowhere"
        raise SourceFetchError(
            endpoint.where,
            f"responded with HTTP {status}, a redirect to {target_origin}, which envsync does "
            "not follow because the request carries a credential",
            status=status,
            hint=f"set {endpoint.setting} to the address the redirect points to",
        )
    if status == 404 and not_found_ok:
        return JsonResult(404, None)
    if status in (401, 403):
        raise SourceFetchError(
            endpoint.where,
            f"HTTP {status}: the bearer token was rejected or lacks permission",
            status=status,
            hint=f"check {endpoint.token_setting}",
        )
    if not response.is_success:
        raise SourceFetchError(endpoint.where, f"HTTP {status}", status=status)

    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        content_type = response.headers.get("content-type", "no content type")[:80]
        raise SourceFetchError(
            endpoint.where,
            f"returned HTTP {status} with a body that is not JSON ({content_type})",
            status=status,
            hint=f"check that {endpoint.setting} points at the JSON endpoint",
        ) from None
    return JsonResult(status, body)
