"""The API's JSON parser: Python's json module parses nested arrays and objects by recursion, so a
body nested about a thousand levels deep ends in a RecursionError (a 500). A body nested deeper
than MAX_DEPTH levels is refused with a 400 before that, found by a scan that does not recurse; no
body Canopy takes is deeper than a few levels. (DRF reads the body through Django's request.body,
so DATA_UPLOAD_MAX_MEMORY_SIZE bounds what is scanned: a larger body is a 400 before.)

An object naming one key twice (`{"gpu": 1, "gpu": 5}`) is a 400 too: json keeps the last silently,
while a proxy, a log or a reviewer reading the body may take the first."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # not in the stubs
from rest_framework.utils import json

MAX_DEPTH = 32
# What changes the nesting outside strings: brackets and braces, quotes, and the backslash that
# escapes a quote inside a string.
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects in this JSON text nest more than `limit` levels deep. One pass
    that stops at the first level too deep; brackets inside strings do not count."""
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _STRUCTURE.finditer(text):
        position, char = match.start(), match.group()
        if position == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _object_naming_each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"JSON parse error - the key {key!r} is given more than once in one object.")
        result[key] = value
    return result


class StrictJSONParser(JSONParser):
    """DRF's JSON parser behind a depth check that does not recurse, refusing repeated keys
    (REST_FRAMEWORK's default)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        body = stream.read()
        try:
            text = body.decode(get_encoding(parser_context or {}))
        except (UnicodeDecodeError, LookupError) as error:
            raise ParseError(f"JSON parse error - {error}") from error
        if nesting_deeper_than(text, MAX_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels is refused.")
        try:
            return json.loads(
                text,
                object_pairs_hook=_object_naming_each_key_once,
                parse_constant=json.strict_constant if self.strict else None,
            )
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
