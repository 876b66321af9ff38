"""JSONL dataset uploads: one example object per non-blank line, every bad line reported.

Errors name the first bad line as the field ("line 7"), list every bad line number in the
``lines`` metadata entry and describe up to ``MAX_REPORTED`` of them in the message, so a user
can fix the whole file in one pass. Nothing is stored unless every line is valid.
"""
from __future__ import annotations

import json
from typing import Any

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.examples import Example, parse_examples

MAX_REPORTED = 10
MAX_LISTED = 1000


def _line_error(number: int, line: str) -> tuple[Example | None, str | None]:
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:  # gRPC callers reach this without the gateway's depth limit
        return None, f"line {number}: JSON nested too deeply"
    try:
        return parse_examples([obj], "item")[0], None
    except InvalidArgument as exc:
        where = (exc.field or "").removeprefix("item[0]").lstrip(".")
        return None, f"line {number}: {where + ' ' if where else ''}{exc.message}"


def parse_jsonl(content: bytes, field: str = "content") -> tuple[list[Example], int]:
    """(examples, non-blank line count); InvalidArgument naming the first bad line otherwise."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(field, f"not UTF-8 text (byte {exc.start})") from None
    examples: list[Example] = []
    bad: list[tuple[int, str]] = []
    lines = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        lines += 1
        example, error = _line_error(number, line)
        if error is not None:
            bad.append((number, error))
        elif not bad:
            examples.append(example)
    if bad:
        shown = "; ".join(msg for _, msg in bad[:MAX_REPORTED])
        more = f" (and {len(bad) - MAX_REPORTED} more bad lines)" if len(bad) > MAX_REPORTED else ""
        raise InvalidArgument(f"line {bad[0][0]}", f"{len(bad)} malformed line(s): {shown}{more}",
                              metadata={"lines": ",".join(str(n) for n, _ in bad[:MAX_LISTED]),
                                        "error_count": str(len(bad))})
    if not examples:
        raise InvalidArgument(field, "no examples: the content has no non-blank lines")
    return examples, lines
