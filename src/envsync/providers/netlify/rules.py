"""Netlify's rules for keys, values and function sizes, as the planner needs them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from envsync.model import LedgerSlot, PlanWarning, RemoteState, SecretValue

if TYPE_CHECKING:
    from envsync.config import TargetSpec

# netlify-cli accepts keys of at most 255 characters that match this pattern
# (netlify/cli, src/utils/env/deploy-env-vars.ts).
KEY_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
MAX_KEY_LENGTH = 255

# Names the platform sets itself and rejects, compared after upper-casing (netlify/cli,
# src/utils/env/deploy-env-vars.ts; Netlify's functions environment-variable docs).
RESERVED_KEYS = frozenset(
    {
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "NETLIFY",
        "BUILD_ID",
        "CONTEXT",
        "REPOSITORY_URL",
        "BRANCH",
        "HEAD",
        "COMMIT_REF",
        "CACHED_COMMIT_REF",
        "PULL_REQUEST",
        "REVIEW_ID",
        "URL",
        "DEPLOY_URL",
        "DEPLOY_PRIME_URL",
        "DEPLOY_ID",
        "SITE_NAME",
        "SITE_ID",
        "NETLIFY_IMAGES_CDN_DOMAIN",
        "INCOMING_HOOK_TITLE",
        "INCOMING_HOOK_URL",
        "INCOMING_HOOK_BODY",
    }
)

# AWS Lambda, which runs Netlify Functions, allows 4 KB of environment in total; more fails
# the deploy, not the write (netlify/cli issues 6791 and 6962).
FUNCTION_ENV_LIMIT_BYTES = 4096


class NetlifyRules:
    uses_contexts: ClassVar[bool] = True

    def reject_key(self, key: str) -> str | None:
        if key.upper() in RESERVED_KEYS:
            return "reserved by Netlify, which sets it on every build"
        if len(key) > MAX_KEY_LENGTH:
            return f"longer than Netlify's limit of {MAX_KEY_LENGTH} characters"
        if not KEY_PATTERN.fullmatch(key):
            return "Netlify keys start with a letter and hold only letters, digits and _"
        return None

    def skip_value(self, key: str, value: SecretValue) -> str | None:
        # Netlify shows unset contexts as empty values and its CLI treats "" as absent, so an
        # empty value could never be told apart from a missing one.
        if not value:
            return "Netlify treats an empty value as unset; the key is left as it is"
        return None

    def size_warnings(
        self, desired: Mapping[LedgerSlot, SecretValue], remote: RemoteState, spec: TargetSpec
    ) -> list[PlanWarning]:
        """Warn per context when function-scoped values will exceed Lambda's 4 KB total."""
        totals: dict[str | None, list[tuple[int, str]]] = {}
        for (key, context), value in desired.items():
            if not _reaches_functions(key, remote, spec):
                continue
            size = len(key.encode()) + len(value.reveal().encode())
            totals.setdefault(context, []).append((size, key))

        warnings = []
        for context, sizes in sorted(totals.items(), key=lambda item: str(item[0])):
            total = sum(size for size, _ in sizes)
            if total <= FUNCTION_ENV_LIMIT_BYTES:
                continue
            largest = ", ".join(key for _, key in sorted(sizes, reverse=True)[:3])
            warnings.append(
                PlanWarning(
                    f"function-scoped variables in context {context} total {total} bytes, over "
                    f"the {FUNCTION_ENV_LIMIT_BYTES}-byte limit of AWS Lambda; deploys of "
                    f"functions will fail. Largest: {largest}. Narrow their scopes "
                    "(NETLIFY_SCOPES) or move large values out of functions"
                )
            )
        return warnings


def _reaches_functions(key: str, remote: RemoteState, spec: TargetSpec) -> bool:
    variable = remote.variables.get(key)
    if variable is not None and variable.scopes is not None:
        return "functions" in variable.scopes
    return "functions" in spec.scopes
