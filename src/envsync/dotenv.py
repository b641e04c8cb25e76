"""The canonical .env format: a strict reader, and a writer whose output reads back exactly.

A .env file is the canonical source that envsync pushes to platforms whose runtimes never
parse it. So a value must come out exactly as its author meant it, and a line that cannot
be read stops the run with a `DotenvParseError` instead of being dropped. The rules:

- Encoding: UTF-8, with a UTF-8 byte-order mark skipped. A file that starts with a UTF-16
  byte-order mark is decoded as UTF-16. Any other invalid byte, and any NUL, is an error.
- Line ends: LF, CRLF and a lone CR. Inside a quoted value, CRLF and a lone CR become LF.
- Blank lines and lines whose first non-blank character is `#` are skipped.
- `KEY=VALUE`, optionally preceded by `export` and whitespace. Keys match
  `[A-Za-z_][A-Za-z0-9_]*`. Spaces and tabs (and no other whitespace) around keys and
  unquoted values are trimmed.
- Unquoted values end at the line end or at a space or tab followed by `#`. Only `\\$` is
  an escape there, and every other backslash is literal.
- Single quotes are literal apart from the escapes `\\'` and `\\\\`.
- Double-quoted values decode the escapes `\\n`, `\\r`, `\\t`, `\\"`, `\\\\` and `\\$`. Any
  other backslash sequence stays as written.
- After a closing quote, only blanks and a `#` comment may follow. Quoted values may span
  lines. Backticks are ordinary characters.
- Interpolation in unquoted and double-quoted values: `${NAME}`, `${NAME:-default}` (when
  unset or empty) and `${NAME-default}` (when unset). A name resolves to a key defined
  earlier in the file, then to `environ`. An undefined name without a default is an error.
  A bare `$NAME` or `$` is literal. With interpolation on, a `${` that starts none of the
  three forms is an error, so a literal `${` is written `\\${`. Nothing is ever executed.
- A duplicate key: the last definition wins, and a warning names both lines.

This parser differs from python-dotenv 1.2.4 on purpose. It keeps unknown escapes such as
`\\v` as written, where python-dotenv turns `"C:\\Users\\v2"` into a vertical tab. It never
expands inside single quotes, and it rejects an undefined `${NAME}` instead of giving an
empty string. It raises on a malformed line, where python-dotenv logs a warning and skips
the line, or gives None for a line without '='.

Error messages name the file, the line and the problem, and may name a key or a referenced
variable, but never contain a value: callers may show them and log them as they are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

from envsync.errors import DotenvParseError, SourceError
from envsync.model import SecretValue

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))

_LINE_END_CHARACTER = re.compile(r"[\r\n]")
_FIRST_LINE_END = re.compile(r"\r\n|\r|\n")
_BLANKS = re.compile(r"[ \t]*")
_EXPORT_PREFIX = re.compile(r"export[ \t]+")
# Text before '=' that a person may have meant as a key: a name with a stray '-', '.' or
# brackets, such as OPTION-B or a[1].
_KEY_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,39}")
_INLINE_COMMENT = re.compile(r"[ \t]#")
_AFTER_CLOSING_QUOTE = re.compile(r"[ \t]*(?:#.*)?")

# One match reads the most common statement quickly: KEY=value on one line, where the
# value (quoted or not) contains nothing to unescape or expand. Every other statement goes
# through the full steps, which give the same result for the statements this pattern
# matches (a property test checks it).
_SIMPLE_STATEMENT = re.compile(
    r"""
    [ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*
    (?:
        "(?P<double>[^"\\$\r\n]*)"[ \t]*(?:\#[^\r\n]*)?
      | '(?P<single>[^'\\\r\n]*)'[ \t]*(?:\#[^\r\n]*)?
      | (?P<unquoted>[^ \t\r\n'"\\$\#][^ \t\r\n\\$]*)?[ \t]*(?:(?<=[ \t])\#[^\r\n]*)?
    )
    (?=[\r\n]|\Z)
    """,
    re.VERBOSE,
)

# The body of a quoted value up to its closing quote. A backslash always pairs with the
# next character, so an escaped quote never closes the value. Possessive quantifiers keep
# a failed match (an unterminated quote) linear in the length of the file.
_QUOTED_BODY = {
    "'": re.compile(r"([^'\\]*+(?:\\.[^'\\]*+)*+)'", re.DOTALL),
    '"': re.compile(r'([^"\\]*+(?:\\.[^"\\]*+)*+)"', re.DOTALL),
}
_QUOTE_NAMES = {"'": "single", '"': "double"}

# These limits turn pathological input into a parse error instead of a RecursionError or
# exhausted memory. The first caps nested defaults such as ${A:-${B:-x}}. The second stops
# values that reference an earlier value twice, and so double in size on every line.
_MAX_REFERENCE_DEPTH = 32
_MAX_EXPANDED_CHARS = 16 * 1024 * 1024

# A value made only of these characters is written without quotes.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_DOUBLE_QUOTED_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_LITERAL_HINT = "write \\$ for a literal $, or put the value in single quotes to keep it literal"

# No .env file comes near this size. A larger input is something else, such as /dev/zero
# or a log file, and reading all of it could exhaust memory before any line is parsed.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedDotenv:
    """The variables of one .env document.

    `values` keeps the order in which keys were first defined. `lines` maps each key to the
    line of the definition that won. `warnings` name keys and lines, never a value.
    """

    values: dict[str, SecretValue]
    lines: dict[str, int]
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------


def parse(
    text: str,
    *,
    origin: str = "<string>",
    environ: Mapping[str, str] | None = None,
    interpolate: bool = True,
) -> ParsedDotenv:
    """Parse .env text. `origin` names it in errors and warnings.

    `environ` is the fallback for `${NAME}` references (None means empty, which keeps the
    parser pure: callers pass `os.environ` explicitly). With `interpolate` false, `${...}`
    stays as written. Raises DotenvParseError on the first line that breaks the rules.
    """
    bindings = _scan_document(text.removeprefix("\ufeff"), origin, interpolate=interpolate)
    return _resolve(bindings, environ or {}, origin)


def parse_bytes(
    data: bytes,
    *,
    origin: str,
    environ: Mapping[str, str] | None = None,
    interpolate: bool = True,
) -> ParsedDotenv:
    """Decode .env bytes (UTF-8, or UTF-16 with a byte-order mark), then parse them."""
    text, _ = _decode(data, origin)
    return parse(text, origin=origin, environ=environ, interpolate=interpolate)


def read_file(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    interpolate: bool = True,
) -> ParsedDotenv:
    """Read and parse a .env file.

    Raises SourceError naming the file when it is missing, unreadable, a directory or larger
    than MAX_DOCUMENT_BYTES, and DotenvParseError when its content breaks the rules (a binary
    file among them).
    """
    data = _read_bytes(Path(path))
    return parse_bytes(data, origin=str(path), environ=environ, interpolate=interpolate)


def read_stream(
    stream: BinaryIO,
    *,
    origin: str = "<stdin>",
    environ: Mapping[str, str] | None = None,
    interpolate: bool = True,
) -> ParsedDotenv:
    """Read a whole .env document from a binary stream, such as standard input for `--file -`.

    Raises SourceError when the stream holds more than MAX_DOCUMENT_BYTES.
    """
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    _check_size(data, origin)
    return parse_bytes(data, origin=origin, environ=environ, interpolate=interpolate)


def strip_one_trailing_newline(text: str) -> str:
    """Remove exactly one trailing "\\n" or "\\r\\n", which `echo` and editors add to input."""
    if text.endswith("\r\n"):
        return text[:-2]

    if text.endswith("\n"):
        return text[:-1]

    return text


def format_value(value: str) -> str:
    """Return the right-hand side that parses back to exactly `value`, with or without
    interpolation.

    Raises ValueError when no .env file can hold the value: a NUL character (no environment
    variable can contain one) or a lone surrogate (UTF-8 cannot encode one).
    """
    _check_writable(value)

    if _PLAIN_VALUE.fullmatch(value):
        return value

    return '"' + value.translate(_DOUBLE_QUOTED_ESCAPES) + '"'


def format_line(key: str, value: str) -> str:
    """Return `KEY=value` without a line end. Raises ValueError naming an invalid key."""
    _check_key_for_writing(key)

    try:
        return f"{key}={format_value(value)}"
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None


def dumps(values: Mapping[str, SecretValue | str]) -> str:
    """Render variables as .env text, one `KEY=value` line each, in the mapping's order."""
    lines = [format_line(key, _plain(value)) + "\n" for key, value in values.items()]
    return "".join(lines)


def write_file(path: str | Path, values: Mapping[str, SecretValue | str]) -> None:
    """Write variables to a .env file atomically, keeping an existing file's mode.

    A new file gets mode 0600 because it contains secrets.
    """
    _write_atomically(Path(path), dumps(values).encode("utf-8"))


def set_value_in_file(path: str | Path, key: str, value: str) -> None:
    """Set one key in an existing .env file atomically, changing nothing else.

    The last definition of `key` gets the new right-hand side in place, keeping its
    `export`, blanks and comment. Without a definition, a line is appended with the file's
    own line end. Every other byte stays as it was, including the encoding and any
    byte-order mark. Raises DotenvParseError when the file does not parse, because an edit
    of a file whose structure is unknown could break another line.
    """
    path = Path(path)
    origin = str(path)
    replacement = format_line(key, value).partition("=")[2]

    text, encoding = _decode(_read_bytes(path), origin)
    bindings = _scan_document(text, origin, interpolate=False)
    last = _last_binding(bindings, key)

    if last is None:
        updated = _append_line(text, f"{key}={replacement}")
    else:
        start, end = last.span
        updated = text[:start] + replacement + text[end:]

    _write_atomically(path, encoding.bom + updated.encode(encoding.codec))


# ---------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Encoding:
    bom: bytes
    codec: str


def _detect_encoding(data: bytes) -> _Encoding:
    if data.startswith(_UTF8_BOM):
        return _Encoding(_UTF8_BOM, "utf-8")

    for bom, codec in _UTF16_BOMS:
        if data.startswith(bom):
            return _Encoding(bom, codec)

    return _Encoding(b"", "utf-8")


def _decode(data: bytes, origin: str) -> tuple[str, _Encoding]:
    """Decode a document and report the encoding it used, so a rewrite can keep it."""
    encoding = _detect_encoding(data)
    body = data[len(encoding.bom) :]

    if encoding.codec == "utf-8":
        _reject_nul_byte(body, origin)

    try:
        return body.decode(encoding.codec), encoding
    except UnicodeDecodeError as error:
        # `from None`: the decode error keeps the whole document in its `object` attribute.
        raise _invalid_encoding_error(body, error.start, encoding.codec, origin) from None


def _reject_nul_byte(body: bytes, origin: str) -> None:
    position = body.find(b"\x00")
    if position < 0:
        return

    line = _count_line_ends(body[:position].decode("latin-1")) + 1
    raise DotenvParseError(
        origin,
        line,
        "contains a NUL byte, so this is a binary file or UTF-16 without a byte-order mark",
        hint="point envsync at a .env text file saved as UTF-8",
    )


def _invalid_encoding_error(
    body: bytes, position: int, codec: str, origin: str
) -> DotenvParseError:
    prefix = body[:position].decode(codec, errors="replace")
    line = _count_line_ends(prefix) + 1
    name = "UTF-8" if codec == "utf-8" else "UTF-16"
    return DotenvParseError(
        origin,
        line,
        f"invalid {name}: a byte on this line cannot be decoded",
        hint="save the file as UTF-8 (a UTF-16 file needs a byte-order mark)",
    )


def _count_line_ends(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


# ---------------------------------------------------------------------------------------
# Scanning: lines, keys and the raw right-hand sides
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reference:
    """A `${name}`, `${name:-default}` or `${name-default}`, with `operator` "", ":-" or "-"."""

    name: str
    operator: str
    default: _Template


_Template: TypeAlias = tuple[str | _Reference, ...]


@dataclass(frozen=True, slots=True)
class _Binding:
    """One `KEY=VALUE` definition, with `span` the offsets of its right-hand side in the text."""

    key: str
    line: int
    template: _Template
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _ScannedValue:
    template: _Template
    span: tuple[int, int]
    next_start: int
    next_line: int


@dataclass(frozen=True, slots=True)
class _Syntax:
    """The escapes of one kind of value, and whether `${...}` expands in it.

    `keeps_unknown_pair` is true where an unknown escape such as `\\d` stays as both
    characters, and false where a backslash that starts no escape is a character alone.
    """

    escapes: Mapping[str, str]
    keeps_unknown_pair: bool
    interpolates: bool


_UNQUOTED = _Syntax({"$": "$"}, keeps_unknown_pair=False, interpolates=True)
_SINGLE_QUOTED = _Syntax({"'": "'", "\\": "\\"}, keeps_unknown_pair=True, interpolates=False)
_DOUBLE_QUOTED = _Syntax(
    {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"},
    keeps_unknown_pair=True,
    interpolates=True,
)
_SYNTAX_OF_QUOTE = {"'": _SINGLE_QUOTED, '"': _DOUBLE_QUOTED}


def _scan_document(text: str, origin: str, *, interpolate: bool) -> list[_Binding]:
    _reject_nul_character(text, origin)

    bindings: list[_Binding] = []
    position, line = 0, 1
    while position < len(text):
        binding, position, line = _scan_statement(text, position, line, origin, interpolate)
        if binding is not None:
            bindings.append(binding)

    return bindings


def _reject_nul_character(text: str, origin: str) -> None:
    position = text.find("\x00")
    if position < 0:
        return

    raise DotenvParseError(
        origin,
        _count_line_ends(text[:position]) + 1,
        "contains a NUL character, which no environment variable can hold",
        hint="point envsync at a .env text file, because a binary file cannot be read",
    )


def _find_line_end(text: str, start: int) -> tuple[int, int]:
    """Return where the line that begins at `start` ends, and where the next one begins."""
    match = _LINE_END_CHARACTER.search(text, start)
    if match is None:
        return len(text), len(text)

    end = match.start()
    if text.startswith("\r\n", end):
        return end, end + 2

    return end, end + 1


def _scan_statement(
    text: str, start: int, line: int, origin: str, interpolate: bool
) -> tuple[_Binding | None, int, int]:
    """Scan the statement that begins at `start`, which may span lines when a value is quoted.

    Returns the binding (None for a blank or comment line), and where the next statement
    begins, as an offset and a line number.
    """
    simple = _SIMPLE_STATEMENT.match(text, start)
    if simple is not None:
        return _simple_binding(simple, line), _skip_line_end(text, simple.end()), line + 1

    return _scan_full_statement(text, start, line, origin, interpolate)


def _simple_binding(match: re.Match[str], line: int) -> _Binding:
    key, double, single, unquoted = match.groups()
    quoted = double if double is not None else single
    if quoted is not None:
        start, end = match.span("double" if double is not None else "single")
        return _Binding(key, line, (quoted,) if quoted else (), (start - 1, end + 1))

    if unquoted is not None:
        return _Binding(key, line, (unquoted,), match.span("unquoted"))

    # An empty value gets an empty span right after the '=', as in _scan_unquoted.
    after_equals = match.string.index("=", match.end("key")) + 1
    return _Binding(key, line, (), (after_equals, after_equals))


def _skip_line_end(text: str, position: int) -> int:
    if text.startswith("\r\n", position):
        return position + 2

    return min(position + 1, len(text))


def _scan_full_statement(
    text: str, start: int, line: int, origin: str, interpolate: bool
) -> tuple[_Binding | None, int, int]:
    end, next_start = _find_line_end(text, start)
    content = text[start:end]
    first = _skip_blanks(content, 0, len(content))
    if first == len(content) or content[first] == "#":
        return None, next_start, line + 1

    equals = content.find("=")
    if equals < 0:
        raise DotenvParseError(
            origin,
            line,
            "the line has no '=': every line must be KEY=VALUE, a comment or blank",
            hint="add '=' after the key, or start the line with '#' to make it a comment",
        )

    key = _read_key(content[:equals], origin, line)
    value_start = start + equals + 1
    value = _scan_value(text, value_start, end, next_start, line, origin, interpolate)
    binding = _Binding(key, line, value.template, value.span)
    return binding, value.next_start, value.next_line


def _skip_blanks(text: str, start: int, end: int) -> int:
    """Return the offset of the first character that is not a space or tab, or `end`."""
    match = _BLANKS.match(text, start, end)
    return start if match is None else match.end()


def _read_key(left: str, origin: str, line: int) -> str:
    key = left.strip(" \t")
    export = _EXPORT_PREFIX.match(key)
    if export is not None:
        key = key[export.end() :]

    if not key:
        raise DotenvParseError(
            origin, line, "the line has no key before '='", hint="write the line as KEY=VALUE"
        )

    if not KEY_PATTERN.fullmatch(key):
        raise DotenvParseError(
            origin,
            line,
            _invalid_key_problem(key),
            hint="a key starts with a letter or '_' and has only letters, digits and '_'; "
            "a value of several lines must be in quotes",
        )

    return key


def _invalid_key_problem(key: str) -> str:
    """Describe an invalid key, quoting it only when it looks like a mistyped name.

    Other text before '=' is often part of a value on a line of its own, such as the last
    line of a PEM block pasted without quotes, so it is described and never shown.
    """
    if _KEY_LIKE.fullmatch(key):
        return f"invalid key {key!r}"

    position = next(end for end in range(1, len(key) + 1) if not KEY_PATTERN.fullmatch(key[:end]))
    return (
        f"invalid key: character {position} of the {len(key)} before '=' cannot be part of "
        "a key; the text is not shown, because it may be part of a value"
    )


def _scan_value(
    text: str, start: int, end: int, next_start: int, line: int, origin: str, interpolate: bool
) -> _ScannedValue:
    opening = _skip_blanks(text, start, end)
    if opening < end and text[opening] in _QUOTED_BODY:
        return _scan_quoted(text, opening, line, origin, interpolate)

    return _scan_unquoted(text, start, end, next_start, line, origin, interpolate)


def _scan_quoted(
    text: str, opening: int, line: int, origin: str, interpolate: bool
) -> _ScannedValue:
    quote = text[opening]
    match = _QUOTED_BODY[quote].match(text, opening + 1)
    if match is None:
        raise DotenvParseError(
            origin,
            line,
            f"the {_QUOTE_NAMES[quote]} quote opened on this line is never closed",
            hint=f"add the closing {quote}, or escape a {quote} inside the value as \\{quote}",
        )

    body = match.group(1)
    closing_line = line + _count_line_ends(body)
    end, next_start = _find_line_end(text, match.end())
    _check_after_closing_quote(text[match.end() : end], origin, closing_line, line)

    raw = body.replace("\r\n", "\n").replace("\r", "\n") if "\r" in body else body
    syntax = _SYNTAX_OF_QUOTE[quote]
    template = _read_template(raw, syntax, interpolate, origin, line)
    return _ScannedValue(template, (opening, match.end()), next_start, closing_line + 1)


def _check_after_closing_quote(rest: str, origin: str, line: int, opened_on: int) -> None:
    if _AFTER_CLOSING_QUOTE.fullmatch(rest):
        return

    hint = "only blanks and a '#' comment may follow a closing quote"
    if line != opened_on:
        hint += f". Check that the quote opened on line {opened_on} is closed where you meant"

    raise DotenvParseError(origin, line, "unexpected text after the closing quote", hint=hint)


def _scan_unquoted(
    text: str,
    start: int,
    end: int,
    next_start: int,
    line: int,
    origin: str,
    interpolate: bool,
) -> _ScannedValue:
    comment = _INLINE_COMMENT.search(text, start, end)
    stop = end if comment is None else comment.start()
    raw = text[start:stop]
    value = raw.strip(" \t")

    # The span covers the trimmed value, so that a rewrite keeps blanks and the comment.
    # An empty value gets an empty span right after the '='.
    value_start = start + len(raw) - len(raw.lstrip(" \t")) if value else start
    span = (value_start, value_start + len(value))

    template = _read_template(value, _UNQUOTED, interpolate, origin, line)
    return _ScannedValue(template, span, next_start, line + 1)


# ---------------------------------------------------------------------------------------
# Values: escapes and ${...} references
# ---------------------------------------------------------------------------------------

_SPECIAL = re.compile(r"[\\$]")
_SPECIAL_IN_DEFAULT = re.compile(r"[\\$}]")
_BACKSLASH = re.compile(r"\\")


def _read_template(
    raw: str, syntax: _Syntax, interpolate: bool, origin: str, line: int
) -> _Template:
    """Split one raw value into literal text and `${...}` references, decoding escapes."""
    interpolates = interpolate and syntax.interpolates
    if "\\" not in raw and not (interpolates and "$" in raw):
        return (raw,) if raw else ()

    return _TemplateReader(raw, syntax, interpolates, origin, line).read()


class _TemplateReader:
    def __init__(
        self, raw: str, syntax: _Syntax, interpolates: bool, origin: str, line: int
    ) -> None:
        self._raw = raw
        self._syntax = syntax
        self._interpolates = interpolates
        self._origin = origin
        self._line = line

    def read(self) -> _Template:
        template, _ = self._read_parts(0, depth=0)
        return template

    def _error(self, problem: str, hint: str) -> DotenvParseError:
        return DotenvParseError(self._origin, self._line, problem, hint=hint)

    def _read_parts(self, position: int, depth: int) -> tuple[_Template, int]:
        """Read until the end of the value, or at `depth` > 0 until the `}` closing a default."""
        special = self._special_characters(depth)
        parts: list[str | _Reference] = []
        literal: list[str] = []

        while True:
            match = special.search(self._raw, position)
            if match is None:
                if depth:
                    raise self._error("a '${' is not closed with '}'", _LITERAL_HINT)
                literal.append(self._raw[position:])
                return _join_parts(parts, literal), len(self._raw)

            literal.append(self._raw[position : match.start()])
            character = match.group()

            if character == "}":
                return _join_parts(parts, literal), match.end()

            if character == "\\":
                text, position = self._read_escape(match.start())
                literal.append(text)
                continue

            if not self._raw.startswith("{", match.end()):
                literal.append("$")
                position = match.end()
                continue

            _flush_literal(parts, literal)
            reference, position = self._read_reference(match.end() + 1, depth + 1)
            parts.append(reference)

    def _special_characters(self, depth: int) -> re.Pattern[str]:
        if not self._interpolates:
            return _BACKSLASH

        return _SPECIAL_IN_DEFAULT if depth else _SPECIAL

    def _read_escape(self, position: int) -> tuple[str, int]:
        following = self._raw[position + 1 : position + 2]
        if following and following in self._syntax.escapes:
            return self._syntax.escapes[following], position + 2

        if self._syntax.keeps_unknown_pair:
            return "\\" + following, position + 1 + len(following)

        return "\\", position + 1

    def _read_reference(self, position: int, depth: int) -> tuple[_Reference, int]:
        if depth > _MAX_REFERENCE_DEPTH:
            raise self._error(
                f"${{...}} defaults are nested more than {_MAX_REFERENCE_DEPTH} deep",
                "flatten the defaults",
            )

        match = KEY_PATTERN.match(self._raw, position)
        if match is None:
            raise self._error("'${' must be followed by a variable name", _LITERAL_HINT)

        name = match.group()
        after = match.end()
        if self._raw.startswith("}", after):
            return _Reference(name, "", ()), after + 1

        for operator in (":-", "-"):
            if self._raw.startswith(operator, after):
                default, end = self._read_parts(after + len(operator), depth)
                return _Reference(name, operator, default), end

        raise self._error(
            f"'${{{name}' must be followed by '}}', ':-' or '-'",
            "use ${NAME}, ${NAME:-default} or ${NAME-default}, or " + _LITERAL_HINT,
        )


def _flush_literal(parts: list[str | _Reference], literal: list[str]) -> None:
    text = "".join(literal)
    if text:
        parts.append(text)
    literal.clear()


def _join_parts(parts: list[str | _Reference], literal: list[str]) -> _Template:
    _flush_literal(parts, literal)
    return tuple(parts)


# ---------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------


def _resolve(bindings: list[_Binding], environ: Mapping[str, str], origin: str) -> ParsedDotenv:
    """Expand every binding in file order, so a reference can use only keys defined above it."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    warnings: list[str] = []

    for binding in bindings:
        value = _expand(binding.template, values, environ, origin, binding.line)
        previous = lines.get(binding.key)
        if previous is not None:
            warnings.append(
                f"{origin}: {binding.key} is defined on line {previous} and again on line "
                f"{binding.line}; the definition on line {binding.line} wins"
            )
        values[binding.key] = value
        lines[binding.key] = binding.line

    secrets = {key: SecretValue(value) for key, value in values.items()}
    return ParsedDotenv(values=secrets, lines=lines, warnings=tuple(warnings))


def _expand(
    template: _Template,
    known: Mapping[str, str],
    environ: Mapping[str, str],
    origin: str,
    line: int,
) -> str:
    # Most values contain no reference, and this skips building an _Expansion for each.
    if not template:
        return ""

    if len(template) == 1 and isinstance(template[0], str):
        return template[0]

    return _Expansion(known, environ, origin, line).expand(template)


@dataclass(frozen=True, slots=True)
class _Expansion:
    known: Mapping[str, str]
    environ: Mapping[str, str]
    origin: str
    line: int

    def expand(self, template: _Template) -> str:
        pieces = [part if isinstance(part, str) else self._lookup(part) for part in template]
        value = "".join(pieces)
        if len(value) > _MAX_EXPANDED_CHARS:
            raise DotenvParseError(
                self.origin,
                self.line,
                f"the value grows past {_MAX_EXPANDED_CHARS} characters through ${{...}}",
                hint="check for keys that refer to each other over and over",
            )

        return value

    def _lookup(self, reference: _Reference) -> str:
        name = reference.name
        value = self.known[name] if name in self.known else self.environ.get(name)

        if reference.operator == ":-" and not value:
            return self.expand(reference.default)

        if reference.operator == "-" and value is None:
            return self.expand(reference.default)

        if value is None:
            raise DotenvParseError(
                self.origin,
                self.line,
                f"${{{name}}} is not defined: no key {name} above this line and no {name} "
                "in the environment",
                hint=f"define {name}, give a default with ${{{name}:-default}}, or put the "
                "value in single quotes to keep the text literal",
            )

        return value


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------


def _plain(value: SecretValue | str) -> str:
    if isinstance(value, SecretValue):
        return value.reveal()

    return value


def _check_key_for_writing(key: str) -> None:
    if not KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"{_invalid_key_problem(key)}: a key starts with a letter or '_' and has only "
            "letters, digits and '_'"
        )


def _check_writable(value: str) -> None:
    if "\x00" in value:
        raise ValueError("the value contains a NUL character, which no environment variable allows")

    if _LONE_SURROGATE.search(value):
        raise ValueError("the value contains a lone surrogate, which UTF-8 cannot encode")


def _last_binding(bindings: list[_Binding], key: str) -> _Binding | None:
    for binding in reversed(bindings):
        if binding.key == key:
            return binding

    return None


def _append_line(text: str, line: str) -> str:
    """Append a line using the document's first line end (LF when it has none)."""
    match = _FIRST_LINE_END.search(text)
    newline = "\n" if match is None else match.group()
    if text and not text.endswith(("\n", "\r")):
        text += newline

    return text + line + newline


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError as error:
        raise SourceError(
            f"{path}: file not found",
            hint="create it, or point ENVSYNC_CANONICAL_FILE or --file at the .env file",
        ) from error
    except IsADirectoryError as error:
        raise SourceError(
            f"{path} is a directory, not a .env file",
            hint="point ENVSYNC_CANONICAL_FILE or --file at a file",
        ) from error
    except PermissionError as error:
        raise SourceError(
            f"{path}: permission denied",
            hint="make the file readable by the user that runs envsync",
        ) from error
    except OSError as error:
        raise SourceError(
            f"{path} could not be read: {error.strerror}",
            hint="check that the path names a readable .env file",
        ) from error

    _check_size(data, str(path))
    return data


def _check_size(data: bytes, origin: str) -> None:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"{origin} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB, so it is not "
            "a .env file",
            hint="point ENVSYNC_CANONICAL_FILE or --file at the .env file",
        )


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new one, never a mix.

    The data goes to a temporary file in the same folder (a rename is atomic only within
    one file system), is flushed to disk, and renamed over the target. A symbolic link is
    followed, so the link stays and its target is replaced.
    """
    target = Path(os.path.realpath(path))
    mode = _existing_mode(target)

    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _write_error(path, error) from error

    try:
        with os.fdopen(descriptor, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _write_error(path, error) from error
        raise

    _fsync_directory(target.parent)
    logger.debug("wrote %s", path)


def _existing_mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def _fsync_directory(directory: Path) -> None:
    """Flush the rename to disk, so that a crash right after it cannot bring back the old file.

    The new file is already in place when this runs, so a failure (some file systems reject
    fsync on a folder) is logged and not raised.
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        logger.warning("could not flush folder %s to disk: %s", directory, error.strerror)


def _write_error(path: Path, error: OSError) -> SourceError:
    return SourceError(
        f"{path} could not be written: {error.strerror}",
        hint="check that the folder exists and is writable by the user that runs envsync",
    )
