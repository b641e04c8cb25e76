"""The `env` source: the variables of envsync's own process environment."""

from __future__ import annotations

from envsync.model import CanonicalSet, SecretValue
from envsync.sources.base import SourceRequest


async def load(request: SourceRequest) -> CanonicalSet:
    values = {key: SecretValue(value) for key, value in request.environ.items()}
    return CanonicalSet("env", values)
