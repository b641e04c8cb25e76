"""A complete read of one Netlify site's variables into a RemoteState.

The platform returns every variable of a site in one unpaginated response. The reader turns
it into envsync's view of the site:

- A value equal to "" is an unset context (netlify-cli treats empty values as absent), so
  it is dropped. The variable itself stays, so that a later write updates it rather than
  creating it again.
- A secret's values outside the `dev` context are write-only (Netlify docs, secrets
  controller). They arrive with no `value` or with "", and become values of None.
- A secret holding exactly `production`, `deploy-preview` and `branch-deploy`, with `dev`
  empty or absent, is what envsync writes for a secret in the `all` context, because the
  platform requires explicit contexts for secrets. It is read back as one `all` value, so
  the planner sees what it asked for and finds no conflict.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from envsync.errors import IncompleteReadError
from envsync.model import ALL_CONTEXT, RemoteState, RemoteValue, RemoteVariable, TargetRef

from .client import PROVIDER, EnvScope, NetlifyClient, ValueRecord, VariableRecord

logger = logging.getLogger(__name__)

# The contexts a secret in `all` is written to, with `dev` set to "" beside them
# (netlify-cli's env:set expands `all` this way for secrets).
SECRET_ALL_CONTEXTS = ("production", "deploy-preview", "branch-deploy")
DEV_CONTEXT = "dev"


async def read_site(client: NetlifyClient, target: TargetRef) -> RemoteState:
    """Read every variable of the site, or raise. A partial state is never returned."""
    before = client.api.request_count
    scope = await site_scope(client, target)
    records = await client.list_env(scope)

    variables = remote_variables(records, scope)
    logger.debug("read %d variables of %s", len(variables), target.name)
    return RemoteState(
        target=target,
        variables=variables,
        requests=client.api.request_count - before,
    )


async def site_scope(client: NetlifyClient, target: TargetRef) -> EnvScope:
    """Build the scope of the target's env calls from its account and site id.

    A resolved target carries the site's account. A target without one costs a site lookup.
    """
    if target.account_id:
        return EnvScope(account=target.account_id, site_id=target.id, target=target.name)

    site = await client.get_site(target.id, target=target.name)
    if site.account is None:
        raise IncompleteReadError(
            "the site object names no account, so its variables cannot be reached",
            provider=PROVIDER,
            method="GET",
            path=f"/sites/{target.id}",
            target=target.name,
        )
    return EnvScope(account=site.account, site_id=target.id, target=target.name)


def remote_variables(
    records: Iterable[VariableRecord], scope: EnvScope
) -> dict[str, RemoteVariable]:
    variables: dict[str, RemoteVariable] = {}
    for record in records:
        if record.key in variables:
            raise IncompleteReadError(
                f"the response lists variable {record.key} twice",
                provider=PROVIDER,
                method="GET",
                path=f"/accounts/{scope.account}/env",
                target=scope.target,
            )
        variables[record.key] = remote_variable(record)
    return variables


def remote_variable(record: VariableRecord) -> RemoteVariable:
    converted = (_remote_value(item, record.is_secret) for item in record.values)
    values = tuple(value for value in converted if value is not None)
    if record.is_secret:
        values = _collapse_secret_all(values)

    return RemoteVariable(
        key=record.key,
        values=values,
        is_secret=record.is_secret,
        scopes=record.scopes,
        updated_at=record.updated_at,
    )


def _remote_value(item: ValueRecord, is_secret: bool) -> RemoteValue | None:
    """Convert one platform value, or return None for an unset context."""
    hidden = is_secret and item.context != DEV_CONTEXT
    if hidden and not item.value:
        return RemoteValue(context=item.context, value=None, value_id=item.value_id)
    if not item.value:
        return None
    return RemoteValue(context=item.context, value=item.value, value_id=item.value_id)


def _collapse_secret_all(values: tuple[RemoteValue, ...]) -> tuple[RemoteValue, ...]:
    if sorted(value.context or "" for value in values) != sorted(SECRET_ALL_CONTEXTS):
        return values
    if len({value.value for value in values}) != 1:
        return values
    return (RemoteValue(context=ALL_CONTEXT, value=values[0].value, value_id=None),)
