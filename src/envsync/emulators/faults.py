"""Fault injection: rules that make the next matching requests fail in a chosen way.

A rule is posted to `POST /_emulator/faults` as
`{"match": {"method": "PUT", "path": "<regex>"}, "times": 3, "fault": F}`, where F is one of

- `{"status": 429, "headers": {...}, "body": ...}`: respond with that status, headers and
  JSON body instead of calling the API. `{"status": 200, "raw_body": "{not json"}` sends
  the text as it is, with the API's JSON content type, to test malformed responses.
- `{"latency_ms": 2000}`: wait that long, then respond normally. The request is carried
  out even when the client stops waiting, as a platform carries out a request it received.
- `{"drop": true}`: close the connection without sending any response.
- `{"truncate": true}`: send the real response's headers and only half of its body, then
  close the connection, so the body ends short of its Content-Length. A response with an
  empty body (a 204) cannot be cut, so it arrives whole before the connection closes.
- `{"repeat_cursor": true}`: on a Render list page requested with a cursor, hand back that
  same cursor as the last item's cursor, so a client that trusts it loops. Requests without
  a cursor do not match this rule.
- `{"hold": true}`: keep the request waiting until `POST /_emulator/release` (or a reset),
  then carry it out normally, even when its client has gone. A test uses it to stop a
  client at a known request, for example to kill the client's process there.

`method` and `path` are optional; `path` is a regular expression searched in the request
path (without the query string). `times` defaults to 1. `after` (default 0) lets that many
matching requests through untouched before the rule applies, so `{"after": 9, "fault":
{"hold": true}}` holds the tenth request. Rules are tried in the order they were added,
and each request the rule applies to uses up one of its `times`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_KINDS = ("status", "latency_ms", "drop", "truncate", "repeat_cursor", "hold")


class FaultSpecError(ValueError):
    """A fault rule that cannot be understood; the message names the field."""


@dataclass(slots=True)
class Fault:
    """One fault rule and how many more requests it applies to."""

    kind: str
    times: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    raw: bool = False
    latency_ms: int = 0
    after: int = 0

    def matches(self, method: str, path: str, has_cursor: bool) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and self.path.search(path) is None:
            return False
        return self.kind != "repeat_cursor" or has_cursor

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "kind": self.kind,
            "times": self.times,
            "method": self.method,
            "path": self.path.pattern if self.path is not None else None,
        }
        if self.after:
            described["after"] = self.after
        return described


class FaultBook:
    """The pending fault rules of one emulator, in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        return [fault.describe() for fault in self._faults]

    def take(self, method: str, path: str, has_cursor: bool) -> Fault | None:
        """Return the first rule that matches and use up one of its times."""
        for index, fault in enumerate(self._faults):
            if not fault.matches(method, path, has_cursor):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[index]
            return fault
        return None


def parse_fault(document: Any) -> Fault:
    """Build a Fault from the JSON body of `POST /_emulator/faults`; raise FaultSpecError."""
    if not isinstance(document, dict):
        raise FaultSpecError("the fault rule must be a JSON object")

    spec = document.get("fault")
    if not isinstance(spec, dict):
        raise FaultSpecError('"fault" must be an object such as {"status": 429}')

    kinds = [kind for kind in _KINDS if kind in spec and spec[kind] not in (None, False)]
    if len(kinds) != 1:
        raise FaultSpecError(f'"fault" must hold exactly one of {", ".join(_KINDS)}')

    fault = Fault(
        kind=kinds[0],
        times=_parse_times(document.get("times", 1)),
        after=_parse_after(document.get("after", 0)),
    )
    _parse_match(document.get("match"), fault)
    _parse_kind(spec, fault)
    return fault


def _parse_times(times: Any) -> int:
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise FaultSpecError('"times" must be a positive integer')
    return times


def _parse_after(after: Any) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise FaultSpecError('"after" must be a non-negative integer')
    return after


def _parse_match(match: Any, fault: Fault) -> None:
    if match is None:
        return
    if not isinstance(match, dict):
        raise FaultSpecError('"match" must be an object with "method" and/or "path"')

    method = match.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise FaultSpecError('"match.method" must be an HTTP method name')
        fault.method = method.upper()

    path = match.get("path")
    if path is not None:
        if not isinstance(path, str):
            raise FaultSpecError('"match.path" must be a regular expression string')
        try:
            fault.path = re.compile(path)
        except re.error as error:
            raise FaultSpecError(
                f'"match.path" is not a valid regular expression: {error}'
            ) from None


def _parse_kind(spec: dict[str, Any], fault: Fault) -> None:
    if fault.kind == "status":
        _parse_status_fault(spec, fault)
        return

    if fault.kind == "latency_ms":
        latency = spec["latency_ms"]
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise FaultSpecError('"latency_ms" must be a non-negative number')
        fault.latency_ms = int(latency)
        return

    if spec[fault.kind] is not True:
        raise FaultSpecError(f'"{fault.kind}" must be true')


def _parse_status_fault(spec: dict[str, Any], fault: Fault) -> None:
    status = spec["status"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FaultSpecError('"status" must be an HTTP status code between 100 and 599')
    fault.status = status

    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str | int) for v in headers.values()):
        raise FaultSpecError('"headers" must map header names to strings or integers')
    fault.headers = {str(name): str(value) for name, value in headers.items()}

    if "raw_body" in spec:
        raw_body = spec["raw_body"]
        if not isinstance(raw_body, str):
            raise FaultSpecError('"raw_body" must be a string')
        fault.body = raw_body.encode("utf-8")
        fault.raw = True
        return

    if "body" in spec:
        fault.body = json.dumps(spec["body"], separators=(",", ":")).encode("utf-8")
