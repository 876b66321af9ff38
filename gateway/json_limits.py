"""The one JSON reader of request bodies: nesting depth and numbers are checked at the edge.

Python's ``json`` recurses once per nesting level, so a body of 10,000 ``[`` raises
RecursionError (a 500) before any model sees it, and a ``config.options`` nested 34 levels deep
parses but cannot be carried by protobuf (``Struct`` costs three message levels per JSON level
against a decoding limit of 100). So the raw bytes are scanned for their nesting depth first, by
a loop that keeps no stack and skips string contents, and only then parsed.

Numbers: a literal that overflows a double (``1e309`` reads as ``inf``), an integer outside the
signed 64-bit range, and on the REST surfaces the ``NaN`` / ``Infinity`` literals Python's parser
allows, are refused by :func:`number_problem`, which names where they are, so each surface
answers its own 400 naming the field (JSON-RPC refuses the literals as -32700, and the rest per
call: ``-32600`` for an id, ``-32602`` for a parameter).

Every route reads JSON through here: FastAPI's bodies through :class:`LimitedJsonRequest`
(installed by ``trainhouse.gateway.routing.GatewayRoute``), the routes that read their raw body themselves
(JSON-RPC, dataset uploads) through :func:`loads`.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request

from trainhouse.gateway.errors import INVALID, MALFORMED, ApiError, BodyValidationError
from trainhouse.gateway.fields import join_path

# Default and ceiling of TRAINHOUSE_MAX_JSON_DEPTH (a body `{"config": {"options": {...}}}` is 3 deep).
DEFAULT_MAX_DEPTH = 32
CEILING_MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
INT_DIGITS = 20  # "-9223372036854775808"
OUT_OF_RANGE = "number out of range: numbers must be finite doubles, integers within the signed 64-bit range"

_OUTSIDE = re.compile(rb'["\[\]{}]')
_INSIDE = re.compile(rb'["\\]')


class TooDeep(ValueError):
    """The body nests arrays/objects deeper than the limit."""

    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def nesting_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` opens more than ``limit`` arrays/objects at once, without parsing it.

    Brackets inside strings (escaped quotes included) do not count; unbalanced input is left to
    the parser to refuse. One regex search per structural character: linear and stack-free.
    """
    depth, i, n = 0, 0, len(raw)
    while i < n:
        match = _OUTSIDE.search(raw, i)
        if match is None:
            return False
        char = raw[match.start()]
        i = match.end()
        if char == 0x22:  # '"': skip to the closing quote, stepping over escapes
            while True:
                inside = _INSIDE.search(raw, i)
                if inside is None:
                    return False
                i = inside.end()
                if raw[inside.start()] == 0x22:
                    break
                i += 1  # the escaped character
        elif char in (0x5B, 0x7B):  # '[' '{'
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int | float:
    # More digits than any int64 has reads as inf, which number_problem refuses where it is (one
    # call of a batch, one field), instead of Python's whole-document error past 4,300 digits.
    return int(text) if len(text) <= INT_DIGITS else math.inf


def loads(raw: bytes | str, max_depth: int, constants: bool = False) -> Any:
    """Parse one JSON document: :class:`TooDeep` over ``max_depth`` levels, ValueError when it is not
    JSON (NaN/Infinity literals too, unless ``constants``: then they read as floats for
    :func:`number_problem` to name). Numbers are not judged here: see :func:`number_problem`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if nesting_depth_exceeds(data, max_depth):
        raise TooDeep(max_depth)
    text = raw if isinstance(raw, str) else raw.decode("utf-8")
    return json.loads(text, parse_constant=float if constants else _reject_constant, parse_int=_parse_int)


def number_problem(value: Any) -> tuple[str, str] | None:
    """(where, what) of the first number JSON clients and protobuf cannot carry, or None.

    ``where`` is the path in the body as written ("config.options.x", "examples[2].weight")."""
    found = number_location(value)
    return None if found is None else (join_path(found) or "body", OUT_OF_RANGE)


def number_location(value: Any) -> tuple[Any, ...] | None:
    """The location (keys and indexes) of the first such number, or None. Iterative, so it needs
    no recursion whatever the (already limited) depth."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT_MIN <= item <= INT_MAX:
                return path
        elif isinstance(item, dict):
            stack.extend(((*path, str(k)), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    return None


def parse_body(raw: bytes | str, max_depth: int) -> Any:
    """A REST body: parsed, or the ApiError every REST surface renders as its 400."""
    try:
        value = loads(raw, max_depth, constants=True)
    except TooDeep as exc:
        raise ApiError(INVALID, f"Request body is {exc}", field="body",
                       issue=f"nested deeper than {exc.limit} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(MALFORMED, "Request body is not valid JSON", field="body", issue=str(exc)[:300]) from None
    where = number_location(value)
    if where is not None:
        raise BodyValidationError(where, OUT_OF_RANGE)
    return value


def max_depth_of(request: Request) -> int:
    gate = getattr(request.app.state, "gate", None)
    return gate.settings.max_json_depth if gate is not None else DEFAULT_MAX_DEPTH


class LimitedJsonRequest(Request):
    """FastAPI parses JSON bodies with ``request.json()``: this one goes through :func:`parse_body`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_body(await self.body(), max_depth_of(self))
        return self._json
