"""Properties of the .env reader and writer over generated values, documents and bytes."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envsync import dotenv
from envsync.errors import DotenvParseError

# Names that generated values mention, defined in the environment so that an expansion
# that should not happen would change the value instead of failing on an undefined name.
ENVIRON = {"X": "expanded-x", "HOME": "/home/user", "A": "", "B": "b"}

# Generated values use every character except NUL, which no environment variable allows,
# and lone surrogates, which UTF-8 cannot encode.
VALUE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")

# Pieces of text that matter to the format, mixed into generated values and documents.
FRAGMENTS = [
    "\n",
    "\r\n",
    "\r",
    "'",
    '"',
    "`",
    "$",
    "${X}",
    "${X:-y}",
    "${A-z}",
    "$X",
    "$(echo hi)",
    "\\",
    "\\\\",
    "\\$",
    "\\n",
    "\\'",
    '\\"',
    "#",
    " #",
    " ",
    "\t",
    "=",
    "{",
    "}",
    ":-",
    "export ",
    "\u2028",
    "\u2029",
    "\u0085",
    "\u00a0",
    "\ufeff",
    "\x0b",
    "\x0c",
    "à",
    "😀",
]

values = st.one_of(
    st.text(VALUE_CHARACTERS),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(VALUE_CHARACTERS, max_size=4))).map(
        "".join
    ),
)
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
variables = st.dictionaries(keys, values, max_size=8)

# Text shaped like .env documents, valid or not: keys, quotes, escapes, references and
# line ends in any order.
DOCUMENT_FRAGMENTS = [*FRAGMENTS, "A=", "B = ", "export C=", "\nD='", '\nE="', "# c\n", "\x00"]
document_texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(DOCUMENT_FRAGMENTS), st.text(max_size=3))).map("".join),
)

BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE]


def plain(parsed: dotenv.ParsedDotenv) -> dict[str, str]:
    return {key: value.reveal() for key, value in parsed.values.items()}


def line_count(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


@settings(max_examples=500, deadline=None)
@given(value=values)
def test_any_value_round_trips(value: str) -> None:
    parsed = dotenv.parse(dotenv.format_line("K", value), environ=ENVIRON)

    assert parsed.values["K"].reveal() == value


@settings(max_examples=200, deadline=None)
@given(value=values)
def test_any_value_round_trips_uninterpolated(value: str) -> None:
    parsed = dotenv.parse(dotenv.format_line("K", value), environ=ENVIRON, interpolate=False)

    assert parsed.values["K"].reveal() == value


@settings(max_examples=200, deadline=None)
@given(expected=variables)
def test_dumps_round_trips(expected: dict[str, str]) -> None:
    parsed = dotenv.parse(dotenv.dumps(expected), environ=ENVIRON)

    assert plain(parsed) == expected
    assert list(parsed.values) == list(expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expected=variables)
def test_write_file_round_trips(expected: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "canonical.env"

        dotenv.write_file(path, expected)
        parsed = dotenv.read_file(path, environ=ENVIRON)

    assert plain(parsed) == expected


@settings(max_examples=100, deadline=None)
@given(expected=variables, bom=st.sampled_from(BOMS[1:]))
def test_dumps_round_trips_through_other_encodings(expected: dict[str, str], bom: bytes) -> None:
    codec = {codecs.BOM_UTF8: "utf-8", codecs.BOM_UTF16_LE: "utf-16-le"}.get(bom, "utf-16-be")
    data = bom + dotenv.dumps(expected).encode(codec)

    parsed = dotenv.parse_bytes(data, origin="canonical.env", environ=ENVIRON)

    assert plain(parsed) == expected


@settings(max_examples=1000, deadline=None)
@given(text=document_texts, interpolate=st.booleans())
def test_any_text_parses_or_names_line(text: str, interpolate: bool) -> None:
    try:
        parsed = dotenv.parse(text, origin="any.env", environ=ENVIRON, interpolate=interpolate)
    except DotenvParseError as error:
        assert error.path == "any.env"
        assert 1 <= error.line <= line_count(text)
        return

    assert isinstance(parsed, dotenv.ParsedDotenv)
    for line in parsed.lines.values():
        assert 1 <= line <= line_count(text)


@settings(max_examples=1000, deadline=None)
@given(data=st.binary(), bom=st.sampled_from(BOMS))
def test_any_bytes_parse_or_name_line(data: bytes, bom: bytes) -> None:
    try:
        parsed = dotenv.parse_bytes(bom + data, origin="any.env", environ=ENVIRON)
    except DotenvParseError as error:
        assert error.path == "any.env"
        assert error.line >= 1
        return

    assert isinstance(parsed, dotenv.ParsedDotenv)


# Single statements shaped like KEY=value, so that many take the one-match path.
statement_lines = st.builds(
    lambda prefix, key, before, value, after: f"{prefix}{key}{before}={value}{after}",
    st.sampled_from(["", " ", "\t", "export ", " export\t", "export"]),
    keys,
    st.sampled_from(["", " ", "\t"]),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=6).map("".join),
    st.sampled_from(["", " ", " # note", "#note", "\t#", "\n", "\r\nB=1", "\rB=1"]),
).map(lambda line: line.replace("\x00", ""))


@settings(max_examples=1000, deadline=None)
@given(line=statement_lines)
def test_simple_statement_matches_full_scan(line: str) -> None:
    # The one-match reading of common statements must agree with the full steps.
    simple = dotenv._SIMPLE_STATEMENT.match(line)
    assume(simple is not None)
    assert simple is not None

    fast = dotenv._simple_binding(simple, 1)
    full, _, _ = dotenv._scan_full_statement(line, 0, 1, "any.env", True)

    assert full is not None
    assert fast.key == full.key
    assert fast.template == full.template
    assert fast.span == full.span


# Documents that rotation must edit: valid statements in several forms, with comments,
# blank lines and any of the three line ends.
statements = st.one_of(
    st.builds(lambda key, value: dotenv.format_line(key, value), keys, values),
    st.builds(lambda key, value: "export " + dotenv.format_line(key, value), keys, values),
    st.builds(
        lambda key, value: f"  {key} = '{value}'  # note",
        keys,
        st.from_regex(r"[a-z ]*", fullmatch=True),
    ),
    st.builds(lambda key: f"{key}= #empty", keys),
    st.just("# a comment"),
    st.just(""),
)
documents = st.builds(
    lambda lines, newline, final: newline.join(lines) + (newline if final else ""),
    st.lists(statements, max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, key=keys, value=values)
def test_set_value_in_file_changes_one_key(document: str, key: str, value: str) -> None:
    before = plain(dotenv.parse(document, interpolate=False))

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "canonical.env"
        path.write_bytes(document.encode())

        dotenv.set_value_in_file(path, key, value)
        after = plain(dotenv.read_file(path, interpolate=False))
        written = path.read_bytes().decode()

    assert after == {**before, key: value}
    if key not in before:
        assert written.startswith(document)
