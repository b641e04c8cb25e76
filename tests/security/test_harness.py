"""The leak scan finds a canary in every form it searches for, and names it only by label."""

from __future__ import annotations

import base64
import json
import textwrap
from urllib.parse import quote, quote_plus

import pytest

from tests.security.harness import LeakScan, ScanTotals, make_canary, needles_of

VALUE = make_canary("value sample", "value")
TOKEN = make_canary("token sample", "token")


def leaked_forms(data: str | bytes, *, allow: tuple[str, ...] = ()) -> set[str]:
    scan = LeakScan([VALUE, TOKEN])
    scan.add("channel", data, allow=allow)
    hits, _ = scan.hits()
    return {hit.label for hit in hits}


PLANTED = {
    "raw": VALUE.value,
    "json": json.dumps({"v": VALUE.value}, ensure_ascii=False),
    "json ascii": json.dumps({"v": VALUE.value}),
    "repr": repr({"v": VALUE.value}),
    "url": "https://example.com/x?v=" + quote(VALUE.value, safe=""),
    "url form": "v=" + quote_plus(VALUE.value),
    "hex": VALUE.value.encode().hex(),
    "head only": f"...{VALUE.head}",
    "tail only": f"{VALUE.tail}...",
}


@pytest.mark.parametrize("form", list(PLANTED))
def test_scan_finds_value_in_form(form: str) -> None:
    assert leaked_forms(f"before {PLANTED[form]} after") == {"value sample"}


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_scan_finds_value_inside_base64(offset: int) -> None:
    blob = b"x" * offset + f"user:{VALUE.value}:end".encode()

    assert leaked_forms(base64.b64encode(blob).decode()) == {"value sample"}
    assert leaked_forms(base64.urlsafe_b64encode(blob).decode()) == {"value sample"}


def test_scan_finds_value_wrapped_across_lines() -> None:
    wrapped = "\n".join(textwrap.wrap(f"| {VALUE.value} |", width=9))

    assert VALUE.value not in wrapped
    assert leaked_forms(f"\x1b[1m{wrapped}\x1b[0m") == {"value sample"}


def test_scan_finds_token_in_bytes() -> None:
    assert leaked_forms(b"\x00SQLite" + TOKEN.value.encode() + b"\xff") == {"token sample"}


def test_scan_respects_allowed_labels() -> None:
    text = f"{VALUE.value} {TOKEN.value}"

    assert leaked_forms(text, allow=("value sample",)) == {"token sample"}


def test_scan_of_clean_text_finds_nothing() -> None:
    assert leaked_forms("render: applied=True changes=3 errors=0 sha:3f2a9c (5 chars)") == set()


def test_failure_names_label_not_canary() -> None:
    scan = LeakScan([VALUE], totals=ScanTotals())
    scan.add("stdout", VALUE.value)

    with pytest.raises(AssertionError) as failure:
        scan.assert_clean()

    assert "value sample" in str(failure.value)
    assert "stdout" in str(failure.value)
    assert VALUE.head not in str(failure.value)


def test_value_forms_differ_from_raw() -> None:
    forms = {needle.form for needle in needles_of(VALUE)}

    assert {"raw", "json", "json ascii", "repr", "url", "url form", "head", "tail"} <= forms
