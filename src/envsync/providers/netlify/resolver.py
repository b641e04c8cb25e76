"""Turn a configured Netlify target (a site id, a site name or `auto`) into a TargetRef."""

from __future__ import annotations

import logging

from envsync.config import TargetSpec
from envsync.errors import NotFoundError, ResolutionError, UnexpectedResponseError
from envsync.model import TargetRef

from .client import PROVIDER, NetlifyClient, SiteRecord

logger = logging.getLogger(__name__)

SITE_HINT = "set NETLIFY_SITE_ID (or site_id in envsync.toml) to one site's id"


async def resolve_site(client: NetlifyClient, spec: TargetSpec) -> TargetRef:
    """Find the one site `spec` names; raise ResolutionError listing candidates otherwise.

    A site given by id costs one call, which also returns the account that every env call
    needs. A name or `auto` lists the sites the token can see, page by page.
    """
    if spec.selector_kind == "id":
        site = await _site_by_id(client, spec)
    elif spec.selector_kind == "name":
        site = await _site_by_name(client, spec)
    else:
        site = await _only_site(client, spec)

    _check_account(site, spec)
    return _target_ref(site, spec)


async def _site_by_id(client: NetlifyClient, spec: TargetSpec) -> SiteRecord:
    try:
        return await client.get_site(spec.selector, target=spec.name)
    except NotFoundError:
        candidates = await client.list_sites(target=spec.name)
        raise ResolutionError(
            f"no Netlify site with id {spec.selector} is visible to the token",
            [site.label for site in _in_account(candidates, spec)],
            hint=SITE_HINT,
        ) from None


async def _site_by_name(client: NetlifyClient, spec: TargetSpec) -> SiteRecord:
    # The platform's `name` filter also matches parts of names, so only exact names count.
    listed = _in_account(await client.list_sites(name=spec.selector, target=spec.name), spec)
    matches = [site for site in listed if site.name == spec.selector]
    if len(matches) == 1:
        return matches[0]
    raise ResolutionError(
        f"Netlify site name {spec.selector} matched {len(matches)} sites",
        [site.label for site in (matches or listed)],
        hint=SITE_HINT,
    )


async def _only_site(client: NetlifyClient, spec: TargetSpec) -> SiteRecord:
    sites = _in_account(await client.list_sites(target=spec.name), spec)
    if len(sites) == 1:
        logger.debug("NETLIFY_SITE_ID=auto resolved to %s", sites[0].label)
        return sites[0]

    where = f" in team {spec.account_id}" if spec.account_id else ""
    raise ResolutionError(
        f"NETLIFY_SITE_ID=auto needs exactly one site{where}, but the token can see {len(sites)}",
        [site.label for site in sites],
        hint=SITE_HINT,
    )


def _in_account(sites: list[SiteRecord], spec: TargetSpec) -> list[SiteRecord]:
    if spec.account_id is None:
        return sites
    return [site for site in sites if spec.account_id in (site.account_id, site.account_slug)]


def _check_account(site: SiteRecord, spec: TargetSpec) -> None:
    if site.account is None:
        raise UnexpectedResponseError(
            f"site {site.label} names no account, so its variables cannot be reached",
            provider=PROVIDER,
            method="GET",
            path=f"/sites/{site.id}",
            target=spec.name,
        )
    if spec.account_id is not None and spec.account_id not in (site.account_id, site.account_slug):
        raise ResolutionError(
            f"Netlify site {site.label} belongs to team {site.account_slug or site.account_id}, "
            f"not to NETLIFY_TEAM_ID {spec.account_id}",
            [site.label],
            hint="fix NETLIFY_TEAM_ID or NETLIFY_SITE_ID",
        )


def _target_ref(site: SiteRecord, spec: TargetSpec) -> TargetRef:
    extra = {"site_name": site.name}
    if site.account_slug:
        extra["account_slug"] = site.account_slug
    return TargetRef(
        provider=PROVIDER,
        kind="site",
        id=site.id,
        name=spec.name or f"netlify/{site.name}",
        account_id=site.account,
        extra=extra,
    )
