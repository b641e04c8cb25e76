"""Replay recorded Render API traffic against the Render emulator and compare the responses.

The recordings are go-vcr cassettes that Render's Terraform provider made against Render's
testing API. Each interaction holds the request (method, URL, body) and the real response
(status, headers, body). Ids, cursors and times are issued anew by every server, so the
replay keeps a map from each recorded one to the one the emulator issued at the same place,
and rewrites later requests with it. Bodies are compared by shape (keys, JSON types, list
lengths) and by every value that is not issued by the server or tied to Render's testing
environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

# The headers compared on every response. Each must be present exactly when it was recorded.
# Content-Type and Ratelimit-Limit must also have the recorded value.
COMPARED_HEADERS = ("Content-Type", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset")
EQUAL_VALUE_HEADERS = ("Content-Type", "Ratelimit-Limit")

# Values a server issues: Render ids (`srv-` and 20 base32 characters), RFC 3339 times,
# 44-character base64 values from `generateValue`, and image digests.
_RENDER_ID = re.compile(r"^[a-z]{3}-[a-z0-9]{20}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_GENERATED = re.compile(r"^[A-Za-z0-9+/]{43}=$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

# Fields whose recorded value names Render's testing environment (a dashboard on localhost,
# `*.localhost.onrender.com` URLs, a placeholder SSH address), so only their type is compared.
_ENVIRONMENT_FIELDS = frozenset({"cursor", "dashboardUrl", "url", "sshAddress"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Render API path template for one method (`*` for any), and whether envsync calls it.

    `variables` marks the service env-var and env-group endpoints, every interaction of
    which must match.
    """

    method: str
    template: str
    in_scope: bool
    variables: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        expected, actual = self.template.split("/"), path.split("/")
        if len(expected) != len(actual):
            return False
        return all(
            part.startswith("{") or part == segment
            for part, segment in zip(expected, actual, strict=True)
        )


# Checked in order, so the first that matches names the endpoint.
_ENDPOINTS = (
    Endpoint("*", "/v1/services/{id}/secret-files", in_scope=False),
    Endpoint("*", "/v1/services/{id}/secret-files/{name}", in_scope=False),
    Endpoint("*", "/v1/env-groups/{id}/secret-files/{name}", in_scope=False),
    Endpoint("*", "/v1/services/{id}/custom-domains", in_scope=False),
    Endpoint("*", "/v1/notification-settings/overrides/services/{id}", in_scope=False),
    Endpoint("*", "/v1/logs/streams/resource/{id}", in_scope=False),
    # Service settings (build, image, plan) are Terraform's business, not envsync's.
    Endpoint("PATCH", "/v1/services/{id}", in_scope=False),
    Endpoint("*", "/v1/services/{id}/env-vars", in_scope=True, variables=True),
    Endpoint("*", "/v1/services/{id}/env-vars/{key}", in_scope=True, variables=True),
    Endpoint("*", "/v1/env-groups", in_scope=True, variables=True),
    Endpoint("*", "/v1/env-groups/{id}", in_scope=True, variables=True),
    Endpoint("*", "/v1/env-groups/{id}/env-vars/{key}", in_scope=True, variables=True),
    Endpoint("*", "/v1/env-groups/{id}/services/{id}", in_scope=True, variables=True),
    Endpoint("*", "/v1/services/{id}/deploys", in_scope=True),
    Endpoint("*", "/v1/services/{id}/deploys/{id}", in_scope=True),
    Endpoint("*", "/v1/services", in_scope=True),
    Endpoint("*", "/v1/services/{id}", in_scope=True),
    Endpoint("*", "/v1/owners", in_scope=True),
    Endpoint("*", "/v1/owners/{id}", in_scope=True),
)


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded request and its response."""

    cassette: str
    index: int
    method: str
    target: str
    request_headers: Mapping[str, str]
    request_body: str
    status: int
    response_headers: Mapping[str, str]
    response_body: str

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def label(self) -> str:
        return f"{self.cassette}#{self.index} {self.method} {self.path}"


def load_interactions(path: Path) -> list[Interaction]:
    """Read a go-vcr (version 2) cassette into interactions, in recorded order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    interactions: list[Interaction] = []
    for raw in document["interactions"]:
        request, response = raw["request"], raw["response"]
        url = str(request["url"])
        target = url[url.index("/v1/") :] if "/v1/" in url else url
        interactions.append(
            Interaction(
                cassette=path.name,
                index=int(raw["id"]),
                method=str(request["method"]),
                target=target,
                request_headers=_first_values(request.get("headers") or {}),
                request_body=str(request.get("body") or ""),
                status=int(response["code"]),
                response_headers=_first_values(response.get("headers") or {}),
                response_body=str(response.get("body") or ""),
            )
        )
    return interactions


def endpoint_of(method: str, path: str) -> Endpoint:
    """Return the endpoint a request path belongs to. An unlisted path is out of scope."""
    for endpoint in _ENDPOINTS:
        if endpoint.matches(method, path):
            return endpoint
    return Endpoint(method, path, in_scope=False)


class Substitutions:
    """Recorded ids, cursors and times mapped to the ones the emulator issued in their place."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._issued: dict[str, str] = dict(initial or {})

    def apply(self, text: str) -> str:
        """Rewrite every recorded value in text with the issued one, longest first.

        Longest first matters because a recorded time with nanoseconds starts with the same
        time in microseconds.
        """
        for recorded in sorted(self._issued, key=len, reverse=True):
            text = text.replace(recorded, self._issued[recorded])
        return text

    def learn(self, recorded: Any, issued: Any, field: str = "") -> None:
        """Walk both documents in step and map each differing issued value. The first one wins."""
        if isinstance(recorded, dict) and isinstance(issued, dict):
            for name in recorded.keys() & issued.keys():
                self.learn(recorded[name], issued[name], name)
            return

        if isinstance(recorded, list) and isinstance(issued, list):
            for recorded_item, issued_item in zip(recorded, issued, strict=False):
                self.learn(recorded_item, issued_item, field)
            return

        is_text = isinstance(recorded, str) and isinstance(issued, str)
        if is_text and recorded != issued and is_issued_value(recorded, field):
            self._issued.setdefault(recorded, issued)


def is_issued_value(recorded: str, field: str) -> bool:
    """Tell whether a recorded value was chosen by the server, so the emulator's may differ."""
    if field in _ENVIRONMENT_FIELDS:
        return True
    patterns = (_RENDER_ID, _TIMESTAMP, _GENERATED, _DIGEST)
    return any(pattern.match(recorded) for pattern in patterns)


def compare_bodies(
    recorded: Any,
    served: Any,
    substitutions: Substitutions,
    where: str = "$",
    field: str = "",
) -> list[str]:
    """List how the served body differs from the recorded one, by JSON path, without values.

    A recorded value that the substitutions map must be served as the mapped value.
    """
    if _json_type(recorded) != _json_type(served):
        return [f"{where}: recorded a {_json_type(recorded)}, served a {_json_type(served)}"]

    if isinstance(recorded, dict):
        return list(_compare_objects(recorded, served, substitutions, where))

    if isinstance(recorded, list):
        if len(recorded) != len(served):
            return [f"{where}: recorded {len(recorded)} items, served {len(served)}"]
        differences: list[str] = []
        for position, (old, new) in enumerate(zip(recorded, served, strict=True)):
            differences.extend(
                compare_bodies(old, new, substitutions, f"{where}[{position}]", field)
            )
        return differences

    if isinstance(recorded, str) and is_issued_value(recorded, field):
        return (
            []
            if _same_kind_of_issued_value(recorded, served, field)
            else [f"{where}: served value is not the same kind of issued value"]
        )
    if isinstance(recorded, str) and substitutions.apply(recorded) == served:
        return []
    if recorded != served:
        return [f"{where}: value differs"]
    return []


def compare_headers(recorded: Mapping[str, str], served: Mapping[str, str]) -> list[str]:
    """List the compared headers that are missing, unexpected or (where it matters) unequal."""
    recorded_lower = {name.lower(): value for name, value in recorded.items()}
    served_lower = {name.lower(): value for name, value in served.items()}
    differences: list[str] = []
    for name in COMPARED_HEADERS:
        was, now = recorded_lower.get(name.lower()), served_lower.get(name.lower())
        if (was is None) != (now is None):
            state = "missing" if now is None else "not recorded but served"
            differences.append(f"header {name}: {state}")
        elif was is not None and name in EQUAL_VALUE_HEADERS and was != now:
            differences.append(f"header {name}: recorded {was!r}, served {now!r}")
    return differences


def parse_body(text: str) -> Any:
    """Parse a JSON body, or return None for an empty body."""
    return json.loads(text) if text.strip() else None


def _compare_objects(
    recorded: dict[str, Any], served: dict[str, Any], substitutions: Substitutions, where: str
) -> Iterator[str]:
    for name in sorted(recorded.keys() - served.keys()):
        yield f"{where}.{name}: recorded but not served"
    for name in sorted(served.keys() - recorded.keys()):
        yield f"{where}.{name}: served but not recorded"
    for name in sorted(recorded.keys() & served.keys()):
        yield from compare_bodies(
            recorded[name], served[name], substitutions, f"{where}.{name}", name
        )


def _same_kind_of_issued_value(recorded: str, served: Any, field: str) -> bool:
    if not isinstance(served, str):
        return False
    if field in _ENVIRONMENT_FIELDS:
        return True
    for pattern in (_RENDER_ID, _TIMESTAMP, _GENERATED, _DIGEST):
        if pattern.match(recorded):
            return bool(pattern.match(served)) and (
                pattern is not _RENDER_ID or served[:4] == recorded[:4]
            )
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _first_values(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(name): str(values[0]) for name, values in headers.items() if values}
