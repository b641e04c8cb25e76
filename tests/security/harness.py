"""Canary strings, and the search for them in everything envsync puts out.

A leak test gives every credential and every value its own canary and drives envsync.
Each output becomes a channel of a `LeakScan`: a subprocess's standard output, a log
stream, a log record, an HTTP response, a webhook delivery, an event, a store file or
table. `LeakScan.assert_clean()` searches every channel for every canary in each form an
output could carry it in, and fails naming the channel, the canary's label and the form,
never the canary itself.

The forms: the raw text, its JSON string escapes (with and without `ensure_ascii`), its
Python repr, three URL encodings, base64 (standard and URL-safe, at each of the three byte
alignments, so a canary inside a longer encoded text is found too), hex, and the canary's
random head and tail alone, which catch a canary cut short. Text channels are also
searched with every run of whitespace removed and ANSI escapes stripped, which finds a
canary that a terminal or a table wrapped onto several lines.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

# Characters that a bearer token may contain besides letters and digits (RFC 6750,
# b64token), so that the URL and JSON forms of a token canary differ from its raw form.
TOKEN_DECORATION = "+/._~-"

# Characters that change under JSON, repr and URL encoding, and one outside ASCII. There is
# no single quote, because the canonical .env file quotes values with single quotes, and no
# `[`, which Rich would read as markup in the plan table.
VALUE_DECORATION = ' "q" \\ & = \u00e9 + / <> % '

# Characters allowed unencoded in a URL path segment (RFC 3986, unreserved).
SEGMENT_DECORATION = "-._~"

DECORATIONS = {
    "token": TOKEN_DECORATION,
    "value": VALUE_DECORATION,
    "segment": SEGMENT_DECORATION,
}

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Canary:
    """A unique test string with a label that failure messages use in its place.

    `head` and `tail` are the random ends of `value`. Each is unique on its own, so a
    channel that holds only part of the canary is still caught.
    """

    label: str
    value: str
    head: str
    tail: str

    def __repr__(self) -> str:
        return f"Canary({self.label!r})"


def make_canary(label: str, kind: str = "value") -> Canary:
    """Make a canary of `kind`: `token` (fits a bearer header), `value` (any variable
    value) or `segment` (fits a URL path segment unencoded)."""
    head = "k" + secrets.token_hex(6)
    tail = secrets.token_hex(6) + "q"
    return Canary(label, f"{head}{DECORATIONS[kind]}{tail}", head, tail)


@dataclass(frozen=True)
class Needle:
    """One form of one canary to search for."""

    label: str
    form: str
    text: str


def _base64_forms(name: str, data: bytes) -> Iterator[tuple[str, str]]:
    """The part of `data`'s base64 encoding that stays the same wherever it sits in a
    longer input: for each of the three alignments, the complete groups of four
    characters that contain only bytes of `data`."""
    encoders = {"base64": base64.b64encode, "base64url": base64.urlsafe_b64encode}
    for encoder_name, encode in encoders.items():
        for shift in range(3):
            encoded = encode(b"\0" * shift + data).decode("ascii")
            start = 4 if shift else 0
            end = 4 * ((shift + len(data)) // 3)
            stable = encoded[start:end]
            if len(stable) >= 8:
                yield f"{name} {encoder_name} +{shift}", stable


def needles_of(canary: Canary) -> list[Needle]:
    """Every form of `canary` worth a search, without duplicates."""
    value = canary.value
    forms: dict[str, str] = {
        "raw": value,
        "json": json.dumps(value, ensure_ascii=False)[1:-1],
        "json ascii": json.dumps(value)[1:-1],
        "repr": repr(value)[1:-1],
        "url": quote(value, safe=""),
        "url path": quote(value),
        "url form": quote_plus(value),
        "hex": value.encode("utf-8").hex(),
        "head": canary.head,
        "tail": canary.tail,
    }
    forms.update(_base64_forms("value", value.encode("utf-8")))
    forms.update(_base64_forms("head", canary.head.encode("ascii")))

    unique: dict[str, str] = {}
    for form, text in forms.items():
        if text not in unique.values():
            unique[form] = text
    return [Needle(canary.label, form, text) for form, text in unique.items()]


def squash(text: str) -> str:
    """Remove ANSI escapes and every whitespace character, joining wrapped lines."""
    return _WHITESPACE.sub("", _ANSI_ESCAPE.sub("", text))


@dataclass(frozen=True)
class Channel:
    """One output of envsync. `allowed` lists the labels that may appear in it."""

    name: str
    data: str | bytes
    allowed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hit:
    channel: str
    label: str
    form: str

    def __str__(self) -> str:
        return f"{self.channel}: canary {self.label!r} found ({self.form})"


@dataclass
class ScanTotals:
    """Counts over every scan of the session, for the summary at the end of the run."""

    scans: int = 0
    channels: int = 0
    searches: int = 0
    hits: int = 0

    def add(self, channels: int, searches: int, hits: int) -> None:
        self.scans += 1
        self.channels += channels
        self.searches += searches
        self.hits += hits


SESSION_TOTALS = ScanTotals()

# Lines for the summary at the end of the run, such as the concurrency figures.
REPORT_LINES: list[str] = []


@dataclass
class LeakScan:
    """The channels of one test and the canaries to search them for."""

    canaries: list[Canary]
    channels: list[Channel] = field(default_factory=list)
    totals: ScanTotals = field(default_factory=lambda: SESSION_TOTALS)

    def add(self, name: str, data: str | bytes, *, allow: Iterable[str] = ()) -> None:
        self.channels.append(Channel(name, data, frozenset(allow)))

    def hits(self) -> tuple[list[Hit], int]:
        """Search every channel; return the hits and the number of searches made."""
        needles = [needle for canary in self.canaries for needle in needles_of(canary)]
        hits: list[Hit] = []
        searches = 0
        for channel in self.channels:
            wanted = [needle for needle in needles if needle.label not in channel.allowed]
            found, count = _search(channel, wanted)
            hits += found
            searches += count
        return hits, searches

    def assert_clean(self) -> None:
        """Fail listing every hit by channel, label and form; print the scan's size."""
        hits, searches = self.hits()
        self.totals.add(len(self.channels), searches, len(hits))
        print(
            f"leak scan: {len(self.channels)} channels, {len(self.canaries)} canaries, "
            f"{searches} searches, {len(hits)} hits"
        )
        assert not hits, "canaries leaked:\n" + "\n".join(str(hit) for hit in _first(hits))


def _first(hits: list[Hit], limit: int = 40) -> list[Hit]:
    """One hit per channel and label, at most `limit`, so a failure stays readable."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for hit in hits:
        if (hit.channel, hit.label) not in seen:
            seen.add((hit.channel, hit.label))
            kept.append(hit)
    return kept[:limit]


def _search(channel: Channel, needles: list[Needle]) -> tuple[list[Hit], int]:
    if isinstance(channel.data, bytes):
        return _search_bytes(channel, channel.data, needles)

    hits = [
        Hit(channel.name, needle.label, needle.form)
        for needle in needles
        if needle.text in channel.data
    ]
    squashed = squash(channel.data)
    hits += [
        Hit(channel.name, needle.label, f"{needle.form}, joined across lines")
        for needle in needles
        if squash(needle.text) and squash(needle.text) in squashed
    ]
    return hits, 2 * len(needles)


def _search_bytes(channel: Channel, data: bytes, needles: list[Needle]) -> tuple[list[Hit], int]:
    hits = [
        Hit(channel.name, needle.label, needle.form)
        for needle in needles
        if needle.text.encode("utf-8") in data
    ]
    return hits, len(needles)
