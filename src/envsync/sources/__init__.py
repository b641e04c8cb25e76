"""Canonical sources: where the variables that should exist are read from.

    file        a .env file (`-` reads standard input)
    env         envsync's own process environment
    vault       HashiCorp Vault KV v2, or a bridge-style vault over HTTP
    dashboard   an HTTP endpoint that returns a JSON object of strings

Every source leaves out envsync's own credentials and ledger variable, whatever the
filters include, and warns with their names. The filters themselves are applied later, by
the planner, so that a plan can count what they skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import BinaryIO

from envsync.config import Settings
from envsync.errors import ConfigError
from envsync.model import CanonicalSet
from envsync.sources import dashboard, env, file
from envsync.sources.base import SourceLoader, SourceRequest, drop_reserved


async def _load_vault(request: SourceRequest) -> CanonicalSet:
    # Imported on use, because the Vault source loads requests, which no other source needs.
    from envsync.sources import vault

    return await vault.load(request)


SOURCE_LOADERS: dict[str, SourceLoader] = {
    "file": file.load,
    "env": env.load,
    "vault": _load_vault,
    "dashboard": dashboard.load,
}


async def load_canonical(
    settings: Settings,
    *,
    source: str | None = None,
    file: str | None = None,
    stdin: BinaryIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> CanonicalSet:
    """Read the canonical set from `source` (default ENVSYNC_CANONICAL_SOURCE).

    `file` overrides ENVSYNC_CANONICAL_FILE, and `-` reads `stdin` (standard input by
    default). `environ` is the process environment by default; the `env` source reads it
    and the `file` source interpolates from it. Raises ConfigError for an unknown source
    and SourceError (or a subclass) when the set cannot be read.
    """
    name = source or settings.canonical_source
    loader = SOURCE_LOADERS.get(name)
    if loader is None:
        raise ConfigError(
            "ENVSYNC_CANONICAL_SOURCE",
            f"unknown source {name!r}; accepted: {', '.join(SOURCE_LOADERS)}",
        )

    request = SourceRequest(
        settings=settings,
        file=file if file is not None else settings.canonical_file,
        stdin=stdin,
        environ=os.environ if environ is None else environ,
    )
    return drop_reserved(await loader(request))


__all__ = ["SOURCE_LOADERS", "SourceLoader", "SourceRequest", "load_canonical"]
