"""The `env` step: the provider's token variable in envsync's environment."""

from __future__ import annotations

from envsync.discovery.base import StepContext, StepResult, miss, token_result


async def find(context: StepContext) -> StepResult:
    where = f"env {context.token_name}"
    raw = context.environ.get(context.token_name)
    if raw is None:
        return miss(where, "not set")
    return token_result(raw, where)


def hint(context: StepContext) -> str | None:
    return f"set {context.token_name} in envsync's environment"
