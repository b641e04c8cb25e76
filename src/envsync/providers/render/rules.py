"""Render's rules for keys and values, as the planner needs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from envsync.model import LedgerSlot, PlanWarning, RemoteState, SecretValue

if TYPE_CHECKING:
    from envsync.config import TargetSpec


class RenderRules:
    """Render documents no key format (recorded traffic shows lowercase and hyphenated keys
    accepted) and no value size limit, but it does not store empty values: Infisical's
    Render sync skips them for that reason, and the emulator answers 400."""

    uses_contexts: ClassVar[bool] = False

    def reject_key(self, key: str) -> str | None:
        if not key:
            return "an empty key name"
        return None

    def skip_value(self, key: str, value: SecretValue) -> str | None:
        if not value:
            return "Render does not store empty values; the key is left as it is"
        return None

    def size_warnings(
        self, desired: Mapping[LedgerSlot, SecretValue], remote: RemoteState, spec: TargetSpec
    ) -> list[PlanWarning]:
        return []
