"""The `dashboard` source: GET ENVSYNC_DASHBOARD_URL, which returns a JSON object of strings."""

from __future__ import annotations

from envsync.errors import ConfigError
from envsync.model import CanonicalSet
from envsync.sources.base import SourceRequest, setting_secret, string_object
from envsync.sources.http import JsonEndpoint, get_json


async def load(request: SourceRequest) -> CanonicalSet:
    settings = request.settings
    if not settings.dashboard_url:
        raise ConfigError(
            "ENVSYNC_DASHBOARD_URL",
            "is not set, but the canonical source is dashboard",
            hint="set it to the URL that returns the canonical variables as a JSON object",
        )

    endpoint = JsonEndpoint(
        label="dashboard",
        url=settings.dashboard_url,
        setting="ENVSYNC_DASHBOARD_URL",
        token=setting_secret(settings.dashboard_auth_token),
        token_setting="ENVSYNC_DASHBOARD_AUTH_TOKEN",
    )
    result = await get_json(endpoint, settings)
    return CanonicalSet(endpoint.where, string_object(result.body, endpoint.where))
