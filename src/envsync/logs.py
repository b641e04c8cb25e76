"""Log set-up for the CLI and the service: text or JSON lines on standard error.

Library code only creates loggers; this module, called by the CLI and `envsync serve`,
installs the one handler. A scrubbing filter replaces every registered credential (the
provider tokens, the API token and the other credentials of the settings) wherever it
appears in a record, as a second line of defence behind code that never logs them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# The shortest credential the filter replaces; shorter strings would blank ordinary words.
MIN_SCRUBBED_LENGTH = 6


def register_secret(value: str) -> None:
    """Make the log filter replace `value` wherever it appears."""
    if len(value) >= MIN_SCRUBBED_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


# Settings whose values are credentials, by their field names on envsync.config.Settings.
CREDENTIAL_FIELDS = (
    "api_token",
    "ledger_key",
    "snapshot_key",
    "webhook_secret",
    "vault_token",
    "vault_auth_token",
    "dashboard_auth_token",
    "database_url",
)


def register_credentials(settings: Any, environ: Mapping[str, str] | None = None) -> None:
    """Make the log filter replace every credential of the settings, and the provider
    tokens of the environment."""
    for name in CREDENTIAL_FIELDS:
        secret = getattr(settings, name)
        if secret is not None:
            register_secret(secret.get_secret_value())
    for url in settings.webhook_urls:
        register_secret(url.get_secret_value())
    environ = os.environ if environ is None else environ
    for name in ("RENDER_API_TOKEN", "NETLIFY_API_TOKEN"):
        if environ.get(name):
            register_secret(environ[name].strip())


def scrub(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a provider call's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call = getattr(record, "envsync_call", None)
        if call is not None:
            entry.update(
                provider=call.provider,
                operation=call.operation,
                method=call.method,
                path=call.path,
                status=call.status,
                duration_ms=round(call.duration_s * 1000, 1),
                target=call.target,
            )
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Install one stderr handler on the `envsync` logger (and uvicorn's, for the service)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ScrubFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    # httpx logs every request URL at INFO and httpcore every header at DEBUG; envsync logs
    # its own calls without query strings, so theirs stay quiet whatever the level.
    for name in ("httpx", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)

    for name in ("envsync", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if getattr(old, "_envsync", False):
                logger.removeHandler(old)
        handler._envsync = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
