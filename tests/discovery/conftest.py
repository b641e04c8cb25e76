"""Fixtures of the discovery tests: loopback servers for bridge-style vaults and dashboards."""

from tests.sources.loopback import loopback_pair, other_origin, server

__all__ = ["loopback_pair", "other_origin", "server"]
