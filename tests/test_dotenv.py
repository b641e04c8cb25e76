"""The canonical .env reader and writer: every case of the format's table, its rules, and files."""

from __future__ import annotations

import codecs
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envsync import dotenv
from envsync.errors import DotenvParseError, SourceError
from envsync.model import SecretValue

CANARY = "canary-Zq81vX-do-not-print"


def plain(parsed: dotenv.ParsedDotenv) -> dict[str, str]:
    return {key: value.reveal() for key, value in parsed.values.items()}


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: dict[str, str]
    environ: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorCase:
    id: str
    text: str
    line: int
    names: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict)


# The table of the canonical format, row by row. A "\n" in a Python string below is a real
# line break, and a backslash followed by n in the file is written "\\n".
VALUE_CASES = [
    Case("row-1-single-quotes-keep-spaces", "a='b c '", {"a": "b c "}),
    Case("row-2-double-quotes-keep-spaces", 'a="b c "', {"a": "b c "}),
    Case("row-3-unquoted-is-trimmed", "a=b c ", {"a": "b c"}),
    Case(
        "row-4-leading-spaces-trimmed",
        "K=    some spaced out string",
        {"K": "some spaced out string"},
    ),
    Case(
        "row-5-inner-quotes-of-unquoted-stay",
        'RETAIN_INNER_QUOTES={"foo": "bar"}',
        {"RETAIN_INNER_QUOTES": '{"foo": "bar"}'},
    ),
    Case("row-6-single-inside-double", "FOO=\"'d'\"", {"FOO": "'d'"}),
    Case("row-7-empty-single-quotes", "E1=''", {"E1": ""}),
    Case("row-7-empty-double-quotes", 'E2=""', {"E2": ""}),
    Case("row-7-empty-unquoted", "E3=", {"E3": ""}),
    Case(
        "row-8-escaped-double-quotes",
        'VAR="{\\"hello\\": \\"json\\"}"',
        {"VAR": '{"hello": "json"}'},
    ),
    Case("row-9-double-quoted-newline-escape", 'a="b\\nc"', {"a": "b\nc"}),
    Case("row-10-single-quotes-are-literal", "a='b\\nc'", {"a": "b\\nc"}),
    Case(
        "row-11-unquoted-backslash-literal",
        "X=dontexpand\\nnewlines",
        {"X": "dontexpand\\nnewlines"},
    ),
    Case("row-12-tab-escape", 'FOO="a\\tb"', {"FOO": "a\tb"}),
    Case("row-13-escaped-double-quote", 'a="b\\"c"', {"a": 'b"c'}),
    Case("row-14-escaped-single-quote", "a='b\\'c'", {"a": "b'c"}),
    Case("row-15-escaped-backslash", 'FOO="bar\\\\"', {"FOO": "bar\\"}),
    Case("row-16-escaped-dollar", 'FOO="bar\\$ \\$\\$"', {"FOO": "bar$ $$"}),
    Case("row-17-lone-dollar", 'FOO="bar $ "', {"FOO": "bar $ "}),
    Case("row-18-unknown-escapes-stay", 'A="\\d+ and \\x07"', {"A": "\\d+ and \\x07"}),
    Case("row-19-double-quoted-multiline", 'a="b\nc"', {"a": "b\nc"}),
    Case("row-20-single-quoted-multiline", "a='b\nc'", {"a": "b\nc"}),
    Case("row-22-export", "export a=b", {"a": "b"}),
    Case("row-23-export-then-export-key", "export export_a=1", {"export_a": "1"}),
    Case("row-23-export-without-space", "exportFOO=2", {"exportFOO": "2"}),
    Case("row-24-comment-line", "# a=b", {}),
    Case("row-25-hash-without-space", "a=b#c", {"a": "b#c"}),
    Case("row-26-inline-comment-space", "a=b #c", {"a": "b"}),
    Case("row-26-inline-comment-tab", "a=b\t#c", {"a": "b"}),
    Case("row-26-empty-inline-comment", "FOO=bar #", {"FOO": "bar"}),
    Case("row-27-hash-inside-quotes", 'foo="bar#baz" # comment', {"foo": "bar#baz"}),
    Case("row-28-comment-after-quote", 'baz="foo"#bar', {"baz": "foo"}),
    Case("row-29-spaces-around-key", " a = b ", {"a": "b"}),
    Case("row-30-empty-value", "a=", {"a": ""}),
    Case("row-30-empty-value-with-spaces", "OPTION_F = ", {"OPTION_F": ""}),
    Case("row-36-file-keys-first", "FOO=test\nBAR=${FOO}", {"FOO": "test", "BAR": "test"}),
    Case("row-37-bare-dollar-name", "FOO=test\nBAR=$FOO", {"FOO": "test", "BAR": "$FOO"}),
    Case("row-38-process-environment", "a=${b}", {"a": "c"}, {"b": "c"}),
    Case("row-39-colon-default-unset", "a=${b:-d}", {"a": "d"}),
    Case("row-39-colon-default-empty", "a=${b:-d}", {"a": "d"}, {"b": ""}),
    Case("row-40-dash-default-unset", "a=${b-d}", {"a": "d"}),
    Case("row-40-dash-default-empty", "a=${b-d}", {"a": ""}, {"b": ""}),
    Case(
        "row-42-no-interpolation-in-single-quotes",
        "BAR='quote ${FOO}'",
        {"BAR": "quote ${FOO}"},
        {"FOO": "test"},
    ),
    Case("row-43-escaped-reference", 'BAR="foo\\${FOO}"', {"BAR": "foo${FOO}"}, {"FOO": "test"}),
    Case("row-44-file-wins", "b=d\na=${b}", {"b": "d", "a": "d"}, {"b": "c"}),
    Case("row-45-duplicate-refers-to-earlier", "P=first\nP=${P}-second", {"P": "first-second"}),
    Case("row-46-nothing-executed", "echo=$(echo hello)", {"echo": "$(echo hello)"}),
    Case("row-47-last-duplicate-wins", "DUP=one\nDUP=two", {"DUP": "two"}),
    Case("row-48-crlf-line-ends", "a=b\r\nc=d\r\n", {"a": "b", "c": "d"}),
    Case("row-49-non-ascii", "a=à", {"a": "à"}),
    Case("row-50-no-break-space-kept", "a=\u00a0b\u00a0", {"a": "\u00a0b\u00a0"}),
    Case(
        "row-51-pem-keeps-every-line",
        'K="-----BEGIN KEY-----\nabc\n-----END KEY-----"',
        {"K": "-----BEGIN KEY-----\nabc\n-----END KEY-----"},
    ),
    Case("row-52-only-first-equals-splits", "KEY=abc==", {"KEY": "abc=="}),
    Case("row-53-quotes-not-kept", 'KEY="abc"', {"KEY": "abc"}),
    Case("row-54-unquoted-escaped-dollar", "a=\\${HOME}", {"a": "${HOME}"}, {"HOME": "/root"}),
    Case("row-55-nested-default", "a=${U1:-${U2:-x}}", {"a": "x"}),
]

ERROR_CASES = [
    ErrorCase("row-21-unterminated-quote", 'a="\nb=c', line=1),
    ErrorCase("row-31-no-equals", "no_value_var", line=1),
    ErrorCase("row-32-no-key", '="value"', line=1),
    ErrorCase("row-33-colon-instead-of-equals", "OPTION_A: 1", line=1),
    ErrorCase("row-34-dash-in-key", "OPTION-B=def", line=1, names=("OPTION-B",)),
    ErrorCase("row-34-brackets-in-key", "a[1]=c", line=1, names=("a[1]",)),
    ErrorCase("row-34-dot-in-key", "a.b=c", line=1, names=("a.b",)),
    ErrorCase("row-35-text-after-closing-quote", "A='b' junk", line=1),
    ErrorCase("row-41-undefined-reference", "a=${b}", line=1, names=("${b}",)),
]


@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda case: case.id)
def test_table_row_value(case: Case) -> None:
    parsed = dotenv.parse(case.text, environ=case.environ)

    assert plain(parsed) == case.expected


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
def test_table_row_error(case: ErrorCase) -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse(case.text, origin="app.env", environ=case.environ)

    assert raised.value.line == case.line
    assert raised.value.path == "app.env"
    for name in case.names:
        assert name in str(raised.value)


def test_duplicate_key_warning_names_both_lines() -> None:
    parsed = dotenv.parse("DUP=one\nDUP=two", origin="app.env")

    assert len(parsed.warnings) == 1
    assert "DUP" in parsed.warnings[0]
    assert "line 1" in parsed.warnings[0]
    assert "line 2" in parsed.warnings[0]
    assert parsed.lines["DUP"] == 2


def test_duplicate_warning_omits_value() -> None:
    parsed = dotenv.parse(f"DUP={CANARY}\nDUP={CANARY}2")

    assert CANARY not in parsed.warnings[0]


def test_duplicate_keeps_first_definition_order() -> None:
    parsed = dotenv.parse("A=1\nB=2\nA=3\n")

    assert list(parsed.values) == ["A", "B"]
    assert parsed.lines == {"A": 3, "B": 2}


def test_each_later_duplicate_names_previous_line() -> None:
    parsed = dotenv.parse("K=1\nK=2\n\nK=3\n")

    assert len(parsed.warnings) == 2
    assert "line 1 and again on line 2" in parsed.warnings[0]
    assert "line 2 and again on line 4" in parsed.warnings[1]


def test_undefined_reference_suggests_single_quotes() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse("A=1\nB=x${MISSING}y", origin="app.env")

    message = str(raised.value)
    assert raised.value.line == 2
    assert "MISSING" in message
    assert "single quotes" in message


def test_environ_defaults_to_empty_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVSYNC_TEST_PRESENT", "from-process")

    with pytest.raises(DotenvParseError):
        dotenv.parse("a=${ENVSYNC_TEST_PRESENT}")


# Line ends and encodings


def test_lone_cr_ends_lines() -> None:
    parsed = dotenv.parse("a=1\rb=2\r\rc=3")

    assert plain(parsed) == {"a": "1", "b": "2", "c": "3"}
    assert parsed.lines == {"a": 1, "b": 2, "c": 4}


def test_mixed_line_ends_count_lines() -> None:
    parsed = dotenv.parse("a=1\r\nb=2\rc=3\nd=4")

    assert parsed.lines == {"a": 1, "b": 2, "c": 3, "d": 4}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a="x\r\ny"', "x\ny"),
        ('a="x\ry"', "x\ny"),
        ("a='x\r\ny'", "x\ny"),
        ("a='x\ry'", "x\ny"),
        ('a="x\r\n\r\ny"', "x\n\ny"),
    ],
    ids=["double-crlf", "double-cr", "single-crlf", "single-cr", "double-blank-line"],
)
def test_quoted_line_ends_become_lf(text: str, expected: str) -> None:
    assert plain(dotenv.parse(text)) == {"a": expected}


def test_escaped_cr_stays_cr() -> None:
    assert plain(dotenv.parse('a="x\\ry"')) == {"a": "x\ry"}


def test_multiline_value_keeps_line_numbers() -> None:
    parsed = dotenv.parse('A="one\r\ntwo\rthree"\nB=1\n')

    assert parsed.lines == {"A": 1, "B": 4}


def test_multiline_blank_lines_kept() -> None:
    parsed = dotenv.parse("K='a\n\n# not a comment\n\nb'\n")

    assert plain(parsed) == {"K": "a\n\n# not a comment\n\nb"}


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
    ids=["utf-16-le", "utf-16-be"],
)
def test_utf16_with_bom_decoded(bom: bytes, codec: str) -> None:
    data = bom + "A=à\r\nB='x y'\n".encode(codec)

    parsed = dotenv.parse_bytes(data, origin="app.env")

    assert plain(parsed) == {"A": "à", "B": "x y"}


def test_utf8_bom_skipped() -> None:
    parsed = dotenv.parse_bytes(codecs.BOM_UTF8 + b"A=1\n", origin="app.env")

    assert plain(parsed) == {"A": "1"}


def test_text_bom_skipped() -> None:
    assert plain(dotenv.parse("\ufeffA=1")) == {"A": "1"}


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"A=1\nB=\xff\n", 2),
        (b"A=1\rB=2\r\nC=ok\xc3\n", 3),
        (b"\x80A=1", 1),
        (b"A='x\ny\xfez'", 2),
    ],
    ids=["lf", "mixed-line-ends", "first-byte", "inside-quotes"],
)
def test_invalid_utf8_names_line(data: bytes, line: int) -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse_bytes(data, origin="app.env")

    assert raised.value.line == line
    assert "UTF-8" in str(raised.value)


def test_invalid_utf16_names_line() -> None:
    # A lone high surrogate (D800) followed by an ordinary character is invalid UTF-16.
    data = codecs.BOM_UTF16_LE + "A=1\nB=".encode("utf-16-le") + b"\x00\xd8A\x00"

    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse_bytes(data, origin="app.env")

    assert raised.value.line == 2


def test_nul_byte_names_line() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse_bytes(b"A=1\nB=2\x00\n", origin="app.env")

    assert raised.value.line == 2
    assert "binary" in str(raised.value)


def test_nul_character_in_text_names_line() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse("A=1\r\nB=2\r\nC='\x00'")

    assert raised.value.line == 3


# export, keys, blanks and tabs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("export a=b", {"a": "b"}),
        ("export\ta=b", {"a": "b"}),
        ("  export   a = b ", {"a": "b"}),
        ("export export_a=1", {"export_a": "1"}),
        ("exportFOO=2", {"exportFOO": "2"}),
        ("export_a=1", {"export_a": "1"}),
        ("export=1", {"export": "1"}),
        ("export =1", {"export": "1"}),
        ("export a='x y'", {"a": "x y"}),
    ],
    ids=[
        "space",
        "tab",
        "indented",
        "export-key-after-export",
        "no-space",
        "underscore",
        "key-named-export",
        "key-named-export-spaced",
        "quoted",
    ],
)
def test_export_forms(text: str, expected: dict[str, str]) -> None:
    assert plain(dotenv.parse(text)) == expected


def test_export_without_assignment_is_error() -> None:
    with pytest.raises(DotenvParseError):
        dotenv.parse("export A")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ta\t=\tb\t", {"a": "b"}),
        ("a=b\tc", {"a": "b\tc"}),
        ('a="\tb\t"', {"a": "\tb\t"}),
        ("a='\t'", {"a": "\t"}),
        ("a=\t#c", {"a": ""}),
        ("a= #c", {"a": ""}),
        ("a=#c", {"a": "#c"}),
        ("\t# comment\n\t\nA=1", {"A": "1"}),
    ],
    ids=[
        "around-key-and-value",
        "inside-unquoted",
        "inside-double-quotes",
        "single-quoted-tab",
        "tab-then-comment",
        "space-then-comment",
        "hash-value",
        "indented-comment-and-blank",
    ],
)
def test_tabs_and_blanks(text: str, expected: dict[str, str]) -> None:
    assert plain(dotenv.parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=`echo hi`", "`echo hi`"),
        ("a=`x y` #c", "`x y`"),
        ("a=\\x\\\\y", "\\x\\\\y"),
        ("a=\\\\${X}", "\\${X}"),
        ("a=x\\", "x\\"),
        ('a="x\\ay\\v"', "x\\ay\\v"),
        ("a='\\\\'", "\\"),
        ("a='x\\y'", "x\\y"),
        ("a='$HOME ${HOME}'", "$HOME ${HOME}"),
        ("a=\u2028x\u2028", "\u2028x\u2028"),
        ("a=x\fy\v", "x\fy\v"),
        ("a=$", "$"),
        ("a=${A:-}", ""),
        ("a=x}", "x}"),
    ],
    ids=[
        "backticks-are-literal",
        "backticks-with-comment",
        "unquoted-backslashes",
        "unquoted-backslash-before-escaped-dollar",
        "unquoted-trailing-backslash",
        "double-quoted-bell-and-vt-kept",
        "single-quoted-escaped-backslash",
        "single-quoted-unknown-escape",
        "single-quoted-dollar",
        "line-separator-kept",
        "form-feed-and-vertical-tab-kept",
        "lone-dollar-at-end",
        "empty-default",
        "closing-brace-alone",
    ],
)
def test_value_literals(text: str, expected: str) -> None:
    assert plain(dotenv.parse(text)) == {"a": expected}


# Interpolation


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("a=${B:-x y}", {}, "x y"),
        ('a="${B:-\\$x}"', {}, "$x"),
        ('a="${B-\\"}"', {}, '"'),
        ("a=${B:-${C}}", {"C": "c"}, "c"),
        ("a=${B:-${MISSING}}", {"B": "b"}, "b"),
        ("a=${B}${B}", {"B": "b"}, "bb"),
        ('a="${B}\\n"', {"B": "b"}, "b\n"),
        ("a=pre${B}post", {"B": "b"}, "prebpost"),
        ("a=${B-${C-${D-deep}}}", {}, "deep"),
    ],
    ids=[
        "default-with-space",
        "escaped-dollar-in-default",
        "escaped-quote-in-default",
        "reference-in-default",
        "unused-default-not-resolved",
        "two-references",
        "reference-and-escape",
        "text-around-reference",
        "three-levels",
    ],
)
def test_interpolation_forms(text: str, environ: dict[str, str], expected: str) -> None:
    assert plain(dotenv.parse(text, environ=environ)) == {"a": expected}


def test_interpolation_off_keeps_references() -> None:
    parsed = dotenv.parse('a=${A}\nb="${B:-x}\\$"\nc=${', interpolate=False)

    assert plain(parsed) == {"a": "${A}", "b": "${B:-x}$", "c": "${"}


def test_reference_uses_only_keys_above() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse("A=${B}\nB=1")

    assert raised.value.line == 1


@pytest.mark.parametrize(
    "text",
    ["a=${", "a=${}", "a=${1A}", "a=${A:?x}", 'a="${A:-x"', "a=${A:-x #comment}", "a=${A B}"],
    ids=[
        "unclosed",
        "empty-name",
        "digit-first",
        "unknown-operator",
        "unclosed-default",
        "comment-cuts-default",
        "space-in-name",
    ],
)
def test_malformed_reference_is_error(text: str) -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse(text)

    assert raised.value.line == 1


def test_deep_nesting_is_error() -> None:
    text = "a=" + "${A:-" * 200 + "x" + "}" * 200

    with pytest.raises(DotenvParseError):
        dotenv.parse(text)


def test_doubling_references_stop() -> None:
    lines = ["K0=" + "x" * 1024]
    lines += [f"K{i}=${{K{i - 1}}}${{K{i - 1}}}" for i in range(1, 40)]

    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse("\n".join(lines))

    assert raised.value.line < 40


# Error messages


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"A=1\n{CANARY}\n", 2),
        (f"A=1\nB='{CANARY}\n", 2),
        (f'A=1\nB="{CANARY}" {CANARY}\n', 2),
        (f"A=1\nB=x\nC={CANARY}${{UNSET_NAME}}\n", 3),
        (f"BAD-KEY = {CANARY}\n", 1),
        (f"A=1\nB={CANARY}${{\n", 2),
        (f"A=1\nB={CANARY}${{X:?{CANARY}}}\n", 2),
        (f"A=1\nB={CANARY}\x00\n", 2),
    ],
    ids=[
        "no-equals",
        "unterminated-quote",
        "text-after-quote",
        "undefined-reference",
        "invalid-key",
        "unclosed-reference",
        "unknown-operator",
        "nul-character",
    ],
)
def test_error_names_file_and_line_not_value(text: str, line: int) -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse(text, origin="deploy/prod.env")

    error = raised.value
    assert error.line == line
    assert str(error).startswith(f"deploy/prod.env, line {line}: ")
    assert CANARY.split("-")[1] not in str(error)
    assert CANARY.split("-")[1] not in repr(error)


def test_invalid_utf8_error_omits_value() -> None:
    data = b"A=1\nB=" + CANARY.encode() + b"\xff\n"

    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse_bytes(data, origin="app.env")

    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert "Zq81vX" not in str(raised.value)


def test_unterminated_quote_names_opening_line() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse("A=1\nB=2\nC='x\nD=4\nE=5\n")

    assert raised.value.line == 3
    assert "never closed" in str(raised.value)


def test_stray_quote_after_multiline_points_to_opening() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.parse('A="x\nB="y"\n')

    assert raised.value.line == 2
    assert "line 1" in str(raised.value)


# Standard input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k\n", "k"),
        ("k\r\n", "k"),
        ("k\n\n", "k\n"),
        ("k", "k"),
        ("", ""),
        ("\n", ""),
        ("k\r", "k\r"),
    ],
    ids=["lf", "crlf", "two-lf", "none", "empty", "only-lf", "lone-cr-kept"],
)
def test_strip_one_trailing_newline(text: str, expected: str) -> None:
    assert dotenv.strip_one_trailing_newline(text) == expected


def test_read_stream_parses_document() -> None:
    stream = io.BytesIO(b"K=k\nexport L='x y'\r\n")

    parsed = dotenv.read_stream(stream)

    assert plain(parsed) == {"K": "k", "L": "x y"}


def test_read_stream_names_stdin_in_errors() -> None:
    with pytest.raises(DotenvParseError) as raised:
        dotenv.read_stream(io.BytesIO(b"K=k\nbroken\n"))

    assert raised.value.path == "<stdin>"
    assert raised.value.line == 2


def test_read_stream_uses_environ() -> None:
    stream = io.BytesIO(codecs.BOM_UTF8 + b"K=${HOST}\n")

    parsed = dotenv.read_stream(stream, origin="-", environ={"HOST": "h"})

    assert plain(parsed) == {"K": "h"}


# Formatting


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("abc==", "abc=="),
        ("https://x.example/a-b_c,d@e%f+g", "https://x.example/a-b_c,d@e%f+g"),
        ("", '""'),
        ("a b", '"a b"'),
        ("a\nb", '"a\\nb"'),
        ("a\r\nb", '"a\\r\\nb"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("$HOME ${HOME}", '"\\$HOME \\${HOME}"'),
        ("C:\\Users\\v2", '"C:\\\\Users\\\\v2"'),
        ("#x", '"#x"'),
        ("it's", '"it\'s"'),
        ("\u00a0", '"\u00a0"'),
    ],
    ids=[
        "plain",
        "equals",
        "url",
        "empty",
        "space",
        "newline",
        "crlf",
        "double-quotes",
        "dollar",
        "backslashes",
        "hash",
        "single-quote",
        "no-break-space",
    ],
)
def test_format_value(value: str, expected: str) -> None:
    assert dotenv.format_value(value) == expected


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_format_value_rejects_unwritable(value: str) -> None:
    with pytest.raises(ValueError):
        dotenv.format_value(value)


def test_format_line_rejects_invalid_key() -> None:
    with pytest.raises(ValueError, match="OPTION-B"):
        dotenv.format_line("OPTION-B", "x")


def test_format_line_names_key_of_unwritable_value() -> None:
    with pytest.raises(ValueError, match=r"^K: "):
        dotenv.format_line("K", "\x00")


def test_dumps_keeps_order_and_reveals() -> None:
    text = dotenv.dumps({"B": SecretValue("two words"), "A": "1"})

    assert text == 'B="two words"\nA=1\n'


# Files


def test_read_file_names_origin(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\nB\n")

    with pytest.raises(DotenvParseError) as raised:
        dotenv.read_file(path)

    assert raised.value.path == str(path)
    assert str(path) in str(raised.value)


def test_read_file_utf16(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(codecs.BOM_UTF16_LE + 'A=à\nB="x\ny"\n'.encode("utf-16-le"))

    assert plain(dotenv.read_file(path)) == {"A": "à", "B": "x\ny"}


def test_read_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing.env"

    with pytest.raises(SourceError) as raised:
        dotenv.read_file(path)

    assert str(path) in str(raised.value)
    assert "not found" in str(raised.value)
    assert raised.value.hint


def test_read_file_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as raised:
        dotenv.read_file(tmp_path)

    assert str(tmp_path) in str(raised.value)
    assert "directory" in str(raised.value)


def test_read_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.env"
    path.write_text("A=1\n")
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        pass
    else:
        pytest.skip("this user reads files with mode 000 (root), so the error cannot happen")

    with pytest.raises(SourceError) as raised:
        dotenv.read_file(path)

    assert str(path) in str(raised.value)
    assert "permission denied" in str(raised.value)


def test_read_file_permission_error_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs as root too, where the mode-000 test above is skipped.
    path = tmp_path / "secret.env"
    path.write_text("A=1\n")

    def denied(self: Path, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)

    with pytest.raises(SourceError) as raised:
        dotenv.read_file(path)

    assert str(path) in str(raised.value)
    assert "permission denied" in str(raised.value)
    assert "readable" in str(raised.value)


def test_read_file_binary(tmp_path: Path) -> None:
    path = tmp_path / "image.env"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))

    with pytest.raises(SourceError) as raised:
        dotenv.read_file(path)

    assert isinstance(raised.value, DotenvParseError)
    assert str(path) in str(raised.value)
    assert "binary" in str(raised.value)


def test_read_file_huge(tmp_path: Path) -> None:
    path = tmp_path / "huge.env"
    lines = []
    for index in range(100_000):
        if index % 4 == 0:
            lines.append(f"# section {index}")
        elif index % 4 == 1:
            lines.append(f'K{index}="value {index} with ${{K{index - 1}:-x}}"')
        elif index % 4 == 2:
            lines.append(f"export K{index}=plain-{index} # note")
        else:
            lines.append(f"K{index}='single {index}'")
    path.write_text("\n".join(lines) + "\n")

    parsed = dotenv.read_file(path)

    assert len(parsed.values) == 75_000
    assert parsed.values["K99998"].reveal() == "plain-99998"
    assert parsed.lines["K99999"] == 100_000


def test_read_file_line_over_one_megabyte(tmp_path: Path) -> None:
    path = tmp_path / "long.env"
    value = "x" * (1024 * 1024 + 17)
    path.write_text(f'A=1\nLONG={value}\nQUOTED="{value}\\n"\nB=2\n')

    parsed = dotenv.read_file(path)

    assert parsed.values["LONG"].reveal() == value
    assert parsed.values["QUOTED"].reveal() == value + "\n"
    assert parsed.lines["B"] == 4


def test_unterminated_quote_in_long_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.env"
    path.write_text("A='open\n" + "B=x\n" * 50_000)

    with pytest.raises(DotenvParseError) as raised:
        dotenv.read_file(path)

    assert raised.value.line == 1


def test_write_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "out.env"
    expected = {
        "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
        "QUOTES": "both \" and ' and `",
        "DOLLAR": "${HOME} $HOME \\$",
    }
    values: dict[str, SecretValue | str] = {"PEM": SecretValue(expected["PEM"])}
    values.update({key: value for key, value in expected.items() if key != "PEM"})

    dotenv.write_file(path, values)

    assert plain(dotenv.read_file(path, environ={"HOME": "/root"})) == expected


def test_write_file_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.env"

    dotenv.write_file(path, {"A": "1"})

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_file_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.env"
    path.write_text("OLD=1\n")
    path.chmod(0o640)

    dotenv.write_file(path, {"A": "1"})

    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == "A=1\n"


def test_write_file_leaves_no_temporary(tmp_path: Path) -> None:
    dotenv.write_file(tmp_path / "a.env", {"A": "1"})

    assert [entry.name for entry in tmp_path.iterdir()] == ["a.env"]


def test_write_file_replaces_symlink_target(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("A=0\n")
    link = tmp_path / "link.env"
    link.symlink_to(real)

    dotenv.write_file(link, {"A": "1"})

    assert link.is_symlink()
    assert real.read_text() == "A=1\n"


def test_write_file_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.env"
    path.write_text("A=old\n")

    def failing_fsync(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)

    with pytest.raises(SourceError) as raised:
        dotenv.write_file(path, {"A": "new"})

    assert "could not be written" in str(raised.value)
    assert path.read_text() == "A=old\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["a.env"]


def test_write_file_folder_flush_failure_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The new file is in place when the folder flush fails, so the failure is only logged.
    path = tmp_path / "a.env"
    real_fsync = os.fsync

    def fsync_files_only(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync_files_only)

    dotenv.write_file(path, {"A": CANARY})

    assert path.read_text() == f"A={CANARY}\n"
    assert "could not flush folder" in caplog.text
    assert CANARY not in caplog.text


def test_write_file_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        dotenv.write_file(tmp_path / "absent" / "a.env", {"A": "1"})


# Rotating one key in place

ORIGINAL = (
    "# Production settings\r\n"
    "\r\n"
    "export API_URL = https://api.example   # the public API\r\n"
    "TOKEN=first\r\n"
    "  TOKEN = 'second'  # rotated monthly\r\n"
    'PEM="line one\r\n'
    'line two"\r\n'
    "EMPTY= #nothing yet\r\n"
)


def test_set_value_replaces_last_definition(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(ORIGINAL.encode())

    dotenv.set_value_in_file(path, "TOKEN", "new value")

    expected = ORIGINAL.replace("'second'", '"new value"')
    assert path.read_bytes() == expected.encode()


def test_set_value_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(ORIGINAL.encode())

    dotenv.set_value_in_file(path, "TOKEN", 'multi\nline "${X}"')

    parsed = dotenv.read_file(path)
    assert parsed.values["TOKEN"].reveal() == 'multi\nline "${X}"'
    assert parsed.values["PEM"].reveal() == "line one\nline two"
    assert parsed.values["API_URL"].reveal() == "https://api.example"


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("API_URL", "https://api.example", "https://api2.example"),
        ("PEM", '"line one\r\nline two"', '"a\\nb"'),
        ("EMPTY", "EMPTY=", "EMPTY=now"),
    ],
    ids=["export-and-comment-kept", "multiline-replaced", "empty-value-filled"],
)
def test_set_value_keeps_other_bytes(tmp_path: Path, key: str, old: str, new: str) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(ORIGINAL.encode())
    value = {"API_URL": "https://api2.example", "PEM": "a\nb", "EMPTY": "now"}[key]

    dotenv.set_value_in_file(path, key, value)

    assert path.read_bytes() == ORIGINAL.replace(old, new, 1).encode()


def test_set_value_appends_with_file_line_end(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(ORIGINAL.encode())

    dotenv.set_value_in_file(path, "NEW_KEY", "x y")

    assert path.read_bytes() == (ORIGINAL + 'NEW_KEY="x y"\r\n').encode()


def test_set_value_appends_after_last_line_without_end(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\nB=2")

    dotenv.set_value_in_file(path, "C", "3")

    assert path.read_bytes() == b"A=1\nB=2\nC=3\n"


def test_set_value_in_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"")

    dotenv.set_value_in_file(path, "C", "3")

    assert path.read_bytes() == b"C=3\n"


def test_set_value_keeps_utf16_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    original = "A=à\r\nB=old\r\n"
    path.write_bytes(codecs.BOM_UTF16_BE + original.encode("utf-16-be"))

    dotenv.set_value_in_file(path, "B", "né")

    expected = codecs.BOM_UTF16_BE + 'A=à\r\nB="né"\r\n'.encode("utf-16-be")
    assert path.read_bytes() == expected


def test_set_value_keeps_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(codecs.BOM_UTF8 + b"A=1\n")

    dotenv.set_value_in_file(path, "A", "2")

    assert path.read_bytes() == codecs.BOM_UTF8 + b"A=2\n"


def test_set_value_keeps_mode_and_replaces_inode(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\n")
    path.chmod(0o604)
    inode = path.stat().st_ino

    dotenv.set_value_in_file(path, "A", "2")

    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    assert path.stat().st_ino != inode
    assert [entry.name for entry in tmp_path.iterdir()] == ["app.env"]


def test_set_value_failure_keeps_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(ORIGINAL.encode())

    def failing_replace(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)

    with pytest.raises(SourceError):
        dotenv.set_value_in_file(path, "TOKEN", "new")

    assert path.read_bytes() == ORIGINAL.encode()
    assert [entry.name for entry in tmp_path.iterdir()] == ["app.env"]


def test_set_value_rejects_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\nbroken line\n")

    with pytest.raises(DotenvParseError) as raised:
        dotenv.set_value_in_file(path, "A", "2")

    assert raised.value.line == 2
    assert path.read_bytes() == b"A=1\nbroken line\n"


def test_set_value_ignores_interpolation_syntax(tmp_path: Path) -> None:
    # Rotation edits structure only, so a reference that would fail to resolve (or that
    # is meant literally with interpolation switched off) does not block it.
    path = tmp_path / "app.env"
    path.write_bytes(b"A=${UNSET}\nB=${\nC=1\n")

    dotenv.set_value_in_file(path, "C", "2")

    assert path.read_bytes() == b"A=${UNSET}\nB=${\nC=2\n"


def test_set_value_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        dotenv.set_value_in_file(tmp_path / "absent.env", "A", "1")


def test_set_value_rejects_invalid_key(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\n")

    with pytest.raises(ValueError):
        dotenv.set_value_in_file(path, "BAD-KEY", "1")

    assert path.read_bytes() == b"A=1\n"
