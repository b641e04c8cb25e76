"""The Netlify provider: one site's environment variables, per deploy context.

Modules:

    client.py    Netlify URLs and JSON shapes (every env call carries `site_id`)
    resolver.py  a site id, a site name or `auto` to a TargetRef
    reader.py    a complete read of the site's variables
    writer.py    batched creates, per-context PATCHes and value deletes
    rules.py     reserved keys and the function size limit, for the planner
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import httpx

from envsync.config import Settings, TargetSpec
from envsync.http import ApiClient, RetryPolicy, Sleep
from envsync.model import Change, RemoteState, SecretValue, TargetRef
from envsync.providers.base import LedgerDocument, WriteProgress

from .client import PROVIDER, NetlifyClient
from .reader import read_site, site_scope
from .resolver import resolve_site
from .rules import NetlifyRules
from .writer import write_changes


class NetlifyProvider:
    """The Netlify adapter, bound to one API token and one ApiClient."""

    name: ClassVar[str] = PROVIDER

    def __init__(
        self,
        settings: Settings,
        token: SecretValue,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rules = NetlifyRules()
        policy = RetryPolicy(
            max_retries=settings.max_retries,
            base_s=settings.retry_base_s,
            max_s=settings.retry_max_s,
            timeout_s=settings.http_timeout_s,
        )
        self.api = ApiClient(
            provider=PROVIDER,
            base_url=settings.netlify_api_url,
            token=token,
            policy=policy,
            concurrency=settings.provider_concurrency,
            transport=transport,
            sleep=sleep,
        )
        self.client = NetlifyClient(self.api)

    async def resolve(self, spec: TargetSpec) -> list[TargetRef]:
        return [await resolve_site(self.client, spec)]

    async def read(self, target: TargetRef) -> RemoteState:
        return await read_site(self.client, target)

    async def write(
        self,
        target: TargetRef,
        spec: TargetSpec,
        remote: RemoteState,
        changes: Sequence[Change],
        progress: WriteProgress,
        ledger_document: LedgerDocument | None,
    ) -> None:
        scope = await site_scope(self.client, target)
        await write_changes(self.client, scope, spec, remote, changes, progress, ledger_document)

    async def redeploy(self, target: TargetRef) -> None:
        await self.client.start_build(target.id, target=target.name)

    async def aclose(self) -> None:
        await self.api.aclose()


__all__ = ["NetlifyProvider"]
