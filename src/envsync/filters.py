"""Include and exclude key prefixes, which decide the keys envsync manages on a target."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Prefix filters: a key is managed when no exclude prefix matches it and, if any
    include prefixes are set, one of them does. Exclude wins. Matching is case-sensitive,
    because both platforms treat keys as case-sensitive.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def manages(self, key: str) -> bool:
        if key.startswith(self.exclude) and self.exclude:
            return False
        if not self.include:
            return True
        return key.startswith(self.include)

    def count_skipped(self, keys: Iterable[str]) -> int:
        return sum(1 for key in keys if not self.manages(key))
