"""Reading example files (JSONL) and turning example objects into protos.

Only the file's *shape* is checked here (valid JSON, one object per line, field types protobuf
can carry), naming the line; whether an example is acceptable for training is the services'
rule, and their errors come back naming the example, which the CLI maps back to its line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainhouse.cli.errors import CliError, ExitCode, invalid

_EXAMPLE_INDEX = re.compile(r"^(?:examples|validation_examples)\[(\d+)\]")


@dataclass
class ExampleFile:
    path: Path
    examples: list[dict[str, Any]]
    lines: list[int]   # file line number of each example

    def locate(self, error: CliError) -> CliError:
        """Add "(FILE line N)" to a service error that names examples[i]."""
        match = _EXAMPLE_INDEX.match(error.field or "")
        if match and int(match.group(1)) < len(self.lines):
            error.message = f"{error.message} ({self.path.name} line {self.lines[int(match.group(1))]})"
        return error


def read_examples(path: Path) -> ExampleFile:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CliError(ExitCode.USAGE, f"cannot read {path}: {exc.strerror}", field=str(path)) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(str(path), f"{path.name} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    examples: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise invalid(f"line {number}", f"{path.name} line {number} is not valid JSON: "
                                            f"{exc.msg} at column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise invalid(f"line {number}", f"{path.name} line {number} must be a JSON object "
                                            "with 'input' and 'expected_output'")
        examples.append(obj)
        lines.append(number)
    if not examples:
        raise invalid(str(path), f"{path.name} holds no examples (one JSON object per line)")
    return ExampleFile(path, examples, lines)


def _pick(item: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def example_proto(item: dict[str, Any], where: str) -> Any:
    """One example object -> trainhouse.v1.Example; accepts the same spellings as the gateway."""
    from google.protobuf import struct_pb2

    from trainhouse.v1 import example_pb2

    def text(name: str, value: Any, required: bool) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise invalid(f"{where}.{name}", f"{where}: '{name}' must be a string")
        return value

    try:
        ex = example_pb2.Example(
            input=text("input", item.get("input"), True),
            expected_output=text("expected_output", _pick(item, "expected_output", "expectedOutput", "expected"), True),
            feedback=text("feedback", item.get("feedback"), False))
        weight = item.get("weight")
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise invalid(f"{where}.weight", f"{where}: 'weight' must be a number")
            ex.weight = float(weight)
        level = _pick(item, "level", "difficulty")
        if level is not None:
            if isinstance(level, float) and level.is_integer():
                level = int(level)
            if isinstance(level, bool) or not isinstance(level, int):
                raise invalid(f"{where}.level", f"{where}: 'level' must be an integer")
            ex.level = level
        metadata = item.get("metadata")
        if metadata:
            if not isinstance(metadata, dict):
                raise invalid(f"{where}.metadata", f"{where}: 'metadata' must be an object")
            meta = struct_pb2.Struct()
            meta.update(metadata)
            ex.metadata.CopyFrom(meta)
    except (ValueError, TypeError) as exc:   # values protobuf cannot carry (lone surrogates, huge ints)
        raise invalid(where, f"{where}: {exc}") from None
    return ex


def examples_proto(file: ExampleFile) -> list[Any]:
    return [example_proto(item, f"line {line}") for item, line in zip(file.examples, file.lines)]
