"""The Render provider: services and environment groups, through Render's REST API.

A target is a service (`render/<service name>`, or `render/<service id>` when configured
by id, because looking the name up would add a read to every run) or an environment group
(`render-group/<group name>`, named by its first read). Values are always readable on
Render, so drift is judged by value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import httpx

from envsync.errors import ResolutionError
from envsync.http import ApiClient, RateLimitPacer, RetryPolicy, Sleep
from envsync.model import Change, RemoteState, SecretValue, TargetRef
from envsync.providers.base import LedgerDocument, WriteProgress
from envsync.providers.render.client import PROVIDER, RenderClient, Service
from envsync.providers.render.reader import (
    ENV_GROUP_KIND,
    SERVICE_IDS_FIELD,
    SERVICE_KIND,
    describe_group,
    group_placeholder_name,
    read_target,
    service_target_name,
)
from envsync.providers.render.rules import RenderRules
from envsync.providers.render.writer import write_bulk, write_per_key

if TYPE_CHECKING:
    from envsync.config import Settings, TargetSpec

logger = logging.getLogger(__name__)

AUTO_HINT = "set RENDER_SERVICE_ID or RENDER_SERVICE_NAME to choose the service"


class RenderProvider:
    """The Render adapter, bound to one API token."""

    name: ClassVar[str] = PROVIDER

    def __init__(
        self,
        settings: Settings,
        token: SecretValue,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`sleep` and `clock` are replaced together in tests: rate-limit pacing waits
        until `clock` passes the window's reset, so a `sleep` that returns at once needs
        a `clock` that it moves forward."""
        self.rules = RenderRules()
        self.api = ApiClient(
            provider=PROVIDER,
            base_url=settings.render_api_url,
            token=token,
            policy=RetryPolicy(
                max_retries=settings.max_retries,
                base_s=settings.retry_base_s,
                max_s=settings.retry_max_s,
                timeout_s=settings.http_timeout_s,
            ),
            concurrency=settings.provider_concurrency,
            transport=transport,
            sleep=sleep,
            pacer=RateLimitPacer(sleep=sleep, clock=clock),
        )
        self.client = RenderClient(self.api)

    async def resolve(self, spec: TargetSpec) -> list[TargetRef]:
        if spec.kind == ENV_GROUP_KIND:
            return [self._resolve_env_group(spec)]
        if spec.kind != SERVICE_KIND:
            raise ResolutionError(f"Render has no target kind {spec.kind!r}", [])

        if spec.selector_kind == "id":
            name = spec.name or service_target_name(spec.selector)
            return [_service_target(spec, spec.selector, name)]
        if spec.selector_kind == "name":
            service = await self._service_named(spec)
        else:
            service = await self._only_service(spec)
        return [_service_target(spec, service.id, spec.name or f"render/{service.name}")]

    async def read(self, target: TargetRef) -> RemoteState:
        return await read_target(self.client, target)

    async def write(
        self,
        target: TargetRef,
        spec: TargetSpec,
        remote: RemoteState,
        changes: Sequence[Change],
        progress: WriteProgress,
        ledger_document: LedgerDocument | None,
    ) -> None:
        # Environment groups have no bulk-replace endpoint, so they are always written per key.
        if target.kind == SERVICE_KIND and spec.write_mode == "bulk":
            await write_bulk(self.client, target, remote, changes, progress, ledger_document)
            return
        await write_per_key(self.client, target, remote, changes, progress, ledger_document)

    async def redeploy(self, target: TargetRef) -> None:
        """Deploy the service, or every service linked to the environment group.

        Render never deploys after a variable change by itself.
        """
        for service_id in await self._services_to_deploy(target):
            deploy_id = await self.client.trigger_deploy(service_id, target=target.name)
            logger.debug("render: started deploy %s of %s", deploy_id or "-", service_id)

    async def aclose(self) -> None:
        await self.api.aclose()

    def _resolve_env_group(self, spec: TargetSpec) -> TargetRef:
        if spec.selector_kind != "id":
            raise ResolutionError(
                "a Render environment group is chosen by id only",
                [],
                hint="set RENDER_ENV_GROUP_ID to the group's evg-... id",
            )
        # No call here: the read returns the group's name and linked services with its
        # variables, and fills them in.
        return TargetRef(
            provider=PROVIDER,
            kind=ENV_GROUP_KIND,
            id=spec.selector,
            name=spec.name or group_placeholder_name(spec.selector),
            account_id=spec.account_id,
        )

    async def _service_named(self, spec: TargetSpec) -> Service:
        listed = await self.client.list_services(name=spec.selector, owner_id=spec.account_id)

        # The name filter's matching rules are undocumented, so only an exact match counts.
        matches = [service for service in listed if service.name == spec.selector]
        if len(matches) == 1:
            return matches[0]
        candidates = matches or list(listed)
        problem = "no Render service is named" if not matches else "several services are named"
        raise ResolutionError(
            f"{problem} {spec.selector!r}{_owner_phrase(spec)}",
            [service.label for service in candidates],
            hint="set RENDER_SERVICE_ID to the service's srv-... id",
        )

    async def _only_service(self, spec: TargetSpec) -> Service:
        listed = await self.client.list_services(owner_id=spec.account_id)

        if len(listed) == 1:
            return listed[0]
        problem = "no Render service is visible" if not listed else "several services are visible"
        raise ResolutionError(
            f"RENDER_SERVICE_ID is auto but {problem} to the token{_owner_phrase(spec)}",
            [service.label for service in listed],
            hint=AUTO_HINT,
        )

    async def _services_to_deploy(self, target: TargetRef) -> list[str]:
        if target.kind == SERVICE_KIND:
            return [target.id]

        listed = target.extra.get(SERVICE_IDS_FIELD)
        if listed is None:
            # A TargetRef from resolve() has not been read yet, so fetch the group's links.
            group = await self.client.get_env_group(target.id, target=target.name)
            listed = describe_group(target, group).extra[SERVICE_IDS_FIELD]
        return [service_id for service_id in listed.split(",") if service_id]


def _service_target(spec: TargetSpec, service_id: str, name: str) -> TargetRef:
    return TargetRef(
        provider=PROVIDER,
        kind=SERVICE_KIND,
        id=service_id,
        name=name,
        account_id=spec.account_id,
    )


def _owner_phrase(spec: TargetSpec) -> str:
    return f" in owner {spec.account_id}" if spec.account_id else ""


__all__ = ["RenderProvider"]
