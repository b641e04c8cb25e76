"""The token discovery chain: where each provider's API token is looked up, in order.

    env           RENDER_API_TOKEN or NETLIFY_API_TOKEN in envsync's environment
    secret_files  render.token or netlify.token in /etc/secrets, then ./secrets
    vault         a field of a HashiCorp Vault KV v2 secret, or a bridge-style vault
    dashboard     each URL of ENVSYNC_DASHBOARD_TOKEN_URLS, asked for the token by name

ENVSYNC_DISCOVERY_ORDER sets the order. The chain stops at the first step that has the
token and reports which one did, never the token. A step that fails, such as a vault that
returns HTTP 500 or an unreadable file, is listed with its reason and the chain goes on.
An unsafe setting, such as a plain http:// URL to another host, raises ConfigError at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from envsync.config import PROVIDER_NAMES, Settings, settings_environ
from envsync.discovery import dashboard, env, secret_files
from envsync.discovery.base import (
    PROVIDER_TITLES,
    TOKEN_NAMES,
    Attempt,
    DiscoveryStep,
    StepContext,
    StepResult,
    miss,
)
from envsync.errors import ConfigError, DiscoveryError, SourceError, SourceFetchError
from envsync.model import SecretValue

logger = logging.getLogger(__name__)


async def _find_in_vault(context: StepContext) -> StepResult:
    # Imported on use, because the Vault step loads requests, which the other steps do not
    # need, and a chain that finds the token earlier never reaches this step.
    from envsync.discovery import vault

    return await vault.find(context)


def _vault_hint(context: StepContext) -> str | None:
    from envsync.discovery import vault

    return vault.hint(context)


DISCOVERY_STEPS: dict[str, DiscoveryStep] = {
    "env": DiscoveryStep(env.find, env.hint),
    "secret_files": DiscoveryStep(secret_files.find, secret_files.hint),
    "vault": DiscoveryStep(_find_in_vault, _vault_hint),
    "dashboard": DiscoveryStep(dashboard.find, dashboard.hint),
}


@dataclass(frozen=True)
class Discovery:
    """The outcome of the chain for one provider.

    `source` names the step and place that had the token, such as
    `secret_files /etc/secrets/render.token`, and never contains the token or a query string.
    `attempts` lists, for every place tried before it, why that place had nothing. `hint`
    names where a user could put the token.
    """

    provider: str
    token: SecretValue | None
    source: str | None
    attempts: tuple[Attempt, ...]
    warnings: tuple[str, ...]
    hint: str = ""


async def discover_token(
    settings: Settings, provider: str, *, environ: Mapping[str, str] | None = None
) -> Discovery:
    """Look up `provider`'s API token through the steps of ENVSYNC_DISCOVERY_ORDER.

    `environ` is the process environment by default. Raises ConfigError for an unknown
    provider or an unsafe setting; every other failure is an attempt of the result.
    """
    if provider not in TOKEN_NAMES:
        raise ConfigError(
            "ENVSYNC_TARGETS",
            f"unknown provider {provider!r}; accepted: {', '.join(PROVIDER_NAMES)}",
        )

    context = StepContext(
        settings=settings,
        provider=provider,
        token_name=TOKEN_NAMES[provider],
        environ=settings_environ() if environ is None else environ,
    )
    attempts: list[Attempt] = []
    warnings: list[str] = []
    for name in settings.discovery_order:
        result = await _run_step(name, context)
        # A step that tried several places lists the ones before its hit as attempts too.
        attempts += result.attempts
        warnings += result.warnings
        for where, reason in result.attempts:
            logger.debug("%s API token not at %s: %s", provider, where, reason)

        if result.token is not None:
            logger.info("%s API token found via %s", provider, result.source)
            return Discovery(
                provider, result.token, result.source, tuple(attempts), tuple(warnings)
            )

    return Discovery(provider, None, None, tuple(attempts), tuple(warnings), _where_to_put(context))


async def _run_step(name: str, context: StepContext) -> StepResult:
    """Run one step; a source that cannot be read is a miss with its reason."""
    try:
        return await DISCOVERY_STEPS[name].find(context)
    except SourceFetchError as error:
        return miss(error.where, error.reason)
    except SourceError as error:
        return miss(name, error.message)


def _where_to_put(context: StepContext) -> str:
    places = []
    for name in context.settings.discovery_order:
        place = DISCOVERY_STEPS[name].hint(context)
        if place:
            places.append(place)
    if not places:
        return "add env to ENVSYNC_DISCOVERY_ORDER and set " + context.token_name
    return ", or ".join(places)


async def discover_tokens(
    settings: Settings,
    providers: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Discovery]:
    """Run discover_token for each provider, concurrently, keyed by provider."""
    names = list(dict.fromkeys(providers))
    found = await asyncio.gather(
        *(discover_token(settings, name, environ=environ) for name in names)
    )
    return dict(zip(names, found, strict=True))


# The steps that look only on this machine, without a request to a vault or dashboard.
LOCAL_STEPS = ("env", "secret_files")


async def local_tokens(
    settings: Settings, providers: Iterable[str], *, environ: Mapping[str, str] | None = None
) -> dict[str, SecretValue]:
    """Return the tokens of `providers` that the environment or a secret file holds.

    The engine counts them among envsync's credentials even for providers that a run does
    not sync, so that a sync to one platform cannot carry another platform's token. No
    vault or dashboard is asked, whatever ENVSYNC_DISCOVERY_ORDER says.
    """
    found: dict[str, SecretValue] = {}
    for provider in providers:
        context = StepContext(
            settings=settings,
            provider=provider,
            token_name=TOKEN_NAMES[provider],
            environ=settings_environ() if environ is None else environ,
        )
        for name in LOCAL_STEPS:
            result = await _run_step(name, context)
            if result.token is not None:
                found[provider] = result.token
                break
    return found


def require_token(discovery: Discovery) -> SecretValue:
    """Return the token that was found, or raise DiscoveryError listing every attempt."""
    if discovery.token is not None:
        return discovery.token

    title = PROVIDER_TITLES.get(discovery.provider, discovery.provider)
    raise DiscoveryError(
        f"{title} API token not found via discovery chain",
        list(discovery.attempts),
        hint=discovery.hint,
    )


__all__ = [
    "DISCOVERY_STEPS",
    "Discovery",
    "discover_token",
    "discover_tokens",
    "local_tokens",
    "require_token",
]
