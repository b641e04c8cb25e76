"""The `dashboard` step: `GET {url}?key=NAME` for each URL in ENVSYNC_DASHBOARD_TOKEN_URLS."""

from __future__ import annotations

from envsync.discovery.base import Attempt, StepContext, StepResult, miss, token_from_body
from envsync.errors import SourceFetchError
from envsync.sources.base import setting_secret
from envsync.sources.http import JsonEndpoint, get_json

STEP = "dashboard"


async def find(context: StepContext) -> StepResult:
    settings = context.settings
    if not settings.dashboard_token_urls:
        return miss(STEP, "no URL in ENVSYNC_DASHBOARD_TOKEN_URLS")

    attempts: list[Attempt] = []
    urls = settings.dashboard_token_urls
    for number, url in enumerate(urls, start=1):
        # Messages show a URL only by its origin, so several URLs are told apart by number.
        label = f"{STEP} #{number}" if len(urls) > 1 else STEP
        result = await _ask(context, url, label)
        if result.token is not None:
            return StepResult(result.token, result.source, tuple(attempts), result.warnings)
        attempts += result.attempts
    return StepResult(attempts=tuple(attempts))


async def _ask(context: StepContext, url: str, label: str) -> StepResult:
    endpoint = JsonEndpoint(
        label=label,
        url=url,
        setting="ENVSYNC_DASHBOARD_TOKEN_URLS",
        token=setting_secret(context.settings.dashboard_auth_token),
        token_setting="ENVSYNC_DASHBOARD_AUTH_TOKEN",
    )
    try:
        result = await get_json(
            endpoint, context.settings, params={"key": context.token_name}, not_found_ok=True
        )
    except SourceFetchError as error:
        return miss(endpoint.where, error.reason)

    if result.status == 404:
        return miss(endpoint.where, "not found (HTTP 404)")
    return token_from_body(result.body, context.token_name, endpoint.where)


def hint(context: StepContext) -> str | None:
    if not context.settings.dashboard_token_urls:
        return None
    return f"serve it for key {context.token_name} at ENVSYNC_DASHBOARD_TOKEN_URLS"
