"""Complete reads of Render targets into RemoteState.

A service's variables come from every page of the paginated list. An environment group's
come inline from one `GET /env-groups/{id}`, which also gives the group's name and linked
services. Any failure raises, so a partial state never reaches the planner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from envsync.model import RemoteState, RemoteValue, RemoteVariable, TargetRef
from envsync.providers.render.client import EnvGroup, EnvVar, RenderClient

logger = logging.getLogger(__name__)

SERVICE_KIND = "service"
ENV_GROUP_KIND = "env_group"

# The TargetRef.extra field that carries a group's linked service ids, comma-separated.
SERVICE_IDS_FIELD = "service_ids"


def service_target_name(service_id: str) -> str:
    return f"render/{service_id}"


def group_placeholder_name(group_id: str) -> str:
    """Name a group before its first read, which replaces this name with the real one."""
    return f"render-group/{group_id}"


def group_target_name(group_name: str) -> str:
    return f"render-group/{group_name}"


async def read_target(client: RenderClient, target: TargetRef) -> RemoteState:
    if target.kind == SERVICE_KIND:
        return await read_service(client, target)
    if target.kind == ENV_GROUP_KIND:
        return await read_env_group(client, target)
    raise ValueError(f"Render has no target kind {target.kind!r}")


async def read_service(client: RenderClient, target: TargetRef) -> RemoteState:
    listed = await client.list_env_vars(target.id, target=target.name)

    logger.debug(
        "render: read %d variables of %s in %d pages",
        len(listed.env_vars),
        target.name,
        listed.pages,
    )
    return RemoteState(target=target, variables=_variables(listed.env_vars), requests=listed.pages)


async def read_env_group(client: RenderClient, target: TargetRef) -> RemoteState:
    group = await client.get_env_group(target.id, target=target.name)

    described = describe_group(target, group)
    logger.debug("render: read %d variables of %s", len(group.env_vars), described.name)
    return RemoteState(target=described, variables=_variables(group.env_vars), requests=1)


def describe_group(target: TargetRef, group: EnvGroup) -> TargetRef:
    """Fill in what the read learned: the group's name, unless the configuration named the
    target, and its linked service ids, so that a redeploy needs no call of its own."""
    name = target.name
    if name == group_placeholder_name(target.id):
        name = group_target_name(group.name)
    extra = {**target.extra, SERVICE_IDS_FIELD: ",".join(group.service_ids)}
    return replace(target, name=name, extra=extra)


def _variables(env_vars: Iterable[EnvVar]) -> dict[str, RemoteVariable]:
    # Dicts keep insertion order, and the bulk write sends the variables back in this order.
    return {
        env_var.key: RemoteVariable(
            key=env_var.key, values=(RemoteValue(context=None, value=env_var.value),)
        )
        for env_var in env_vars
    }
