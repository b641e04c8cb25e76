"""Bearer-token authentication of the API routes.

Every route except health and metrics requires `Authorization: Bearer $ENVSYNC_API_TOKEN`.
The presented token is compared with `hmac.compare_digest`, so the time taken does not
depend on how much of it matches. A rejected request is counted in the metrics and logged
by method, path, client address and reason, never with the token it presented. Repeated
rejections are logged at most once per LOG_INTERVAL_S, with a count of the others.

Without a token (`envsync serve --insecure-local`), requests are accepted only when the
server socket that received them is a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from envsync.api.metrics import Metrics

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0

# Documents the scheme in OpenAPI; the check itself is TokenGuard's.
bearer_scheme = HTTPBearer(auto_error=False, description="ENVSYNC_API_TOKEN")


def is_loopback_host(host: str) -> bool:
    """Check that `host` is a loopback IP address (127.0.0.0/8 or ::1); names never pass."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenGuard:
    """Checks each request's bearer token, or, without a token, that it came via loopback."""

    def __init__(
        self,
        token: SecretStr | None,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._expected = token.get_secret_value().encode() if token is not None else None
        self._metrics = metrics
        self._clock = clock
        self._last_logged: float | None = None
        self._unlogged = 0

    @property
    def mode(self) -> str:
        return "token" if self._expected is not None else "insecure-local"

    def check(self, request: Request) -> None:
        """Raise HTTPException 401 (403 off loopback without a token) unless allowed."""
        if self._expected is None:
            if _served_on_loopback(request.scope.get("server")):
                return
            self._reject(request, "not_loopback", 403)

        reason = self._problem(request.headers.get("authorization"))
        if reason is not None:
            self._reject(request, reason, 401)

    def _problem(self, header: str | None) -> str | None:
        assert self._expected is not None
        if header is None:
            return "missing"
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return "malformed"
        if not hmac.compare_digest(presented.strip().encode(), self._expected):
            return "wrong"
        return None

    def _reject(self, request: Request, reason: str, status_code: int) -> None:
        self._metrics.observe_auth_failure(reason)
        self._log_rejection(request, reason)
        if status_code == 403:
            raise HTTPException(
                403,
                "this server runs without ENVSYNC_API_TOKEN (--insecure-local) and accepts "
                "requests only on a loopback address",
            )
        raise HTTPException(
            401,
            _MESSAGES[reason],
            headers={"WWW-Authenticate": 'Bearer realm="envsync"'},
        )

    def _log_rejection(self, request: Request, reason: str) -> None:
        now = self._clock()
        if self._last_logged is not None and now - self._last_logged < LOG_INTERVAL_S:
            self._unlogged += 1
            return

        client = request.client.host if request.client else "unknown"
        suppressed = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
        logger.warning(
            "rejected %s %s from %s: %s bearer token%s",
            request.method,
            request.url.path,
            client,
            reason,
            suppressed,
        )
        self._last_logged = now
        self._unlogged = 0


_MESSAGES = {
    "missing": "missing bearer token: send Authorization: Bearer <ENVSYNC_API_TOKEN>",
    "malformed": "malformed Authorization header: expected Bearer <ENVSYNC_API_TOKEN>",
    "wrong": "invalid bearer token",
}


def _served_on_loopback(server: Any) -> bool:
    if not isinstance(server, tuple | list) or not server:
        return False
    return is_loopback_host(str(server[0]))


async def require_token(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """Check the request's token; every authenticated route depends on this."""
    guard: TokenGuard = request.app.state.guard
    guard.check(request)
