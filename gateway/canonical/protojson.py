"""Typed pydantic models derived from the proto descriptors, and the generic proto <-> JSON walk.

Why derive instead of hand-writing: the canonical API takes each RPC's request as its body, in
the proto's own snake_case names. A hand-written copy of 77 request messages would drift from the
protos; a model built from the descriptor cannot. So every body is typed (OpenAPI shows each
field, its type and its enum words; a wrong type is a 400 naming the field) and there is one
conversion both ways.

Conventions (the same as the hand-written resource mappings in ``gateway/resources``):
- enums are the value's word without the enum's prefix, lower case (``JOB_STATE_RUNNING`` ->
  ``running``, ``ENVIRONMENT_PRODUCTION`` -> ``production``);
- ``Timestamp`` is an ISO-8601 string, ``Duration`` a number of seconds, ``Struct``/``Value`` plain
  JSON, ``bytes`` base64 (the ONNX artifact has its own binary route instead);
- ``int64`` is a JSON number (not a string as proto3 JSON would make it).

Resources that have a mapping in ``gateway/resources`` (jobs, events, checkpoints, agents, versions,
deployments, evaluations, datasets, webhooks, tokens) are rendered with it; ``message_json`` is
only for messages that have none (benchmark runs, comparisons, reports, feedback, audit events...).
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, create_model

from trainhouse.gateway.convert import duration_s, struct_to_dict, ts_iso
from trainhouse.gateway.errors import INVALID, ApiError
from trainhouse.core.configs.base import Number

WELL_KNOWN_JSON = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"


def enum_prefix(enum: EnumDescriptor) -> str:
    """The common prefix of an enum's values ("JOB_STATE_"), from its zero value's name."""
    zero = enum.values_by_number.get(0)
    if zero is not None and zero.name.endswith("UNSPECIFIED"):
        return zero.name[: -len("UNSPECIFIED")]
    names = [v.name for v in enum.values]
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""


def enum_words(enum: EnumDescriptor) -> list[str]:
    prefix = enum_prefix(enum)
    return [v.name.removeprefix(prefix).lower() for v in enum.values if v.number != 0]


def enum_word_of(enum: EnumDescriptor, number: int) -> str | None:
    if number == 0:
        return None
    value = enum.values_by_number.get(number)
    return value.name.removeprefix(enum_prefix(enum)).lower() if value else str(number)


_MODELS: dict[tuple[str, frozenset[str]], type[BaseModel]] = {}


class ProtoModel(BaseModel):
    """Base of the derived models: unknown fields are refused (a typo is a 400, not ignored)."""

    model_config = ConfigDict(extra="forbid")


def _scalar_type(f: FieldDescriptor) -> Any:
    t = f.type
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return Number
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return _int_range(-(2 ** 31), 2 ** 31 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _int_range(0, 2 ** 32 - 1)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _int_range(-(2 ** 63), 2 ** 63 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _int_range(0, 2 ** 64 - 1)
    if t == FieldDescriptor.TYPE_BOOL:
        return StrictBool
    if t == FieldDescriptor.TYPE_ENUM:
        words = enum_words(f.enum_type)
        return Literal[tuple(words)] if words else StrictStr  # type: ignore[return-value]
    return StrictStr  # string; bytes travel as base64 text


def _int_range(lo: int, hi: int) -> Any:
    """A strict JSON integer within the protobuf field's width (out of range: a 400, not a 500)."""
    return Annotated[int, Field(strict=True, ge=lo, le=hi)]


def _field_type(f: FieldDescriptor, stack: tuple[str, ...]) -> Any:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        value_field = f.message_type.fields_by_name["value"]
        return dict[str, _single_type(value_field, stack)]  # type: ignore[misc]
    single = _single_type(f, stack)
    return list[single] if f.is_repeated else single  # type: ignore[valid-type]


def _single_type(f: FieldDescriptor, stack: tuple[str, ...]) -> Any:
    m = f.message_type
    if m is None:
        return _scalar_type(f)
    if m.full_name in WELL_KNOWN_JSON:
        return Any
    if m.full_name == TIMESTAMP:
        return StrictStr
    if m.full_name == DURATION:
        return Number
    if m.full_name in stack:  # a recursive message: plain JSON below the first level
        return dict[str, Any]
    return proto_model(m, stack=stack)


def proto_model(descriptor: Descriptor, exclude: frozenset[str] | set[str] = frozenset(),
                name: str | None = None, stack: tuple[str, ...] = ()) -> type[BaseModel]:
    """A pydantic model with the message's fields (all optional, as in proto3), minus `exclude`."""
    key = (descriptor.full_name if name is None else name, frozenset(exclude))
    if key in _MODELS:
        return _MODELS[key]
    stack = (*stack, descriptor.full_name)
    fields: dict[str, Any] = {}
    for f in descriptor.fields:
        if f.name in exclude:
            continue
        fields[f.name] = (Optional[_field_type(f, stack)], None)
    # "V1" + the message's name: the seed surfaces have models of their own with the proto's names
    # (CurriculumStage, TrainingConfig...), and a clash would rename both in /openapi.json.
    model = create_model(name or f"V1{descriptor.name}", __base__=ProtoModel, **fields)  # type: ignore[call-overload]
    model.__doc__ = f"Fields of trainhouse `{descriptor.full_name}` (snake_case, as in the proto)."
    _MODELS[key] = model
    return model


def response_model(descriptor: Descriptor, name: str | None = None) -> type[BaseModel]:
    """The model documenting ``message_json`` of a message (extra keys allowed for forward compatibility)."""
    return proto_model(descriptor, name=name or f"V1{descriptor.name}Json")


# ---- JSON -> proto --------------------------------------------------------------------------

def _to_proto_json(value: Any, descriptor: Descriptor) -> Any:
    """Respell our JSON conventions into proto3 JSON (enum words -> names, durations -> "Ns")."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, v in value.items():
        f = descriptor.fields_by_name.get(key)
        if f is None or v is None:
            if v is not None:
                out[key] = v
            continue
        out[key] = _field_json(f, v)
    return out


def _field_json(f: FieldDescriptor, v: Any) -> Any:
    m = f.message_type
    if m is not None and m.GetOptions().map_entry:
        value_field = m.fields_by_name["value"]
        return {k: _single_json(value_field, x) for k, x in v.items()}
    if f.is_repeated:
        return [_single_json(f, x) for x in v]
    return _single_json(f, v)


def _single_json(f: FieldDescriptor, v: Any) -> Any:
    if f.type == FieldDescriptor.TYPE_ENUM and isinstance(v, str):
        return enum_prefix(f.enum_type) + v.upper()
    m = f.message_type
    if m is None or m.full_name in WELL_KNOWN_JSON or m.full_name == TIMESTAMP:
        return v
    if m.full_name == DURATION:
        return f"{float(v):.9f}s"
    return _to_proto_json(v, m)


def to_proto(data: BaseModel | dict[str, Any] | None, message_class: type[Message], **fields: Any) -> Message:
    """Build the request message from a body model plus path fields; a value protobuf refuses is a 400."""
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_none=True)
    payload = {**(data or {}), **{k: v for k, v in fields.items() if v is not None}}
    msg = message_class()
    try:
        json_format.ParseDict(_to_proto_json(payload, msg.DESCRIPTOR), msg)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        text = str(exc)
        raise ApiError(INVALID, f"invalid request: {text}", field=_field_of(text), issue=text) from None
    return msg


def _field_of(text: str) -> str | None:
    # ParseError says 'Failed to parse <field> field: ...' or '... at Message.<field>'.
    for marker in ("Failed to parse ", " at "):
        if marker in text:
            rest = text.split(marker, 1)[1]
            return rest.split(" ", 1)[0].split(".")[-1].rstrip(":") or None
    return None


# ---- proto -> JSON --------------------------------------------------------------------------

def message_json(msg: Message, *, include_bytes: bool = False) -> dict[str, Any]:
    """Every field of a message (unset scalars as their zero value, unset messages as null)."""
    out: dict[str, Any] = {}
    for name, kind, convert in _plan(msg.DESCRIPTOR, include_bytes):
        value = getattr(msg, name)
        if kind == _MAP:
            out[name] = {k: value[k] if convert is None else convert(value[k]) for k in sorted(value)}
        elif kind == _REPEATED:
            out[name] = list(value) if convert is None else [convert(x) for x in value]
        elif kind == _PRESENCE and not msg.HasField(name):
            out[name] = None
        else:
            out[name] = value if convert is None else convert(value)
    return out


# How message_json walks a message type, worked out once per type: it renders every canonical
# answer without a resource mapping, the served Predict's among them, and reading the
# descriptor's options and types per field and per call cost more than the values themselves.
_MAP, _REPEATED, _PRESENCE, _PLAIN = range(4)


@functools.cache
def _plan(descriptor: Descriptor, include_bytes: bool
          ) -> tuple[tuple[str, int, Callable[[Any], Any] | None], ...]:
    """(field name, kind, converter of one value or None for as-is), in field order."""
    plan = []
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_BYTES and not include_bytes:
            continue
        m = f.message_type
        if m is not None and m.GetOptions().map_entry:
            plan.append((f.name, _MAP, _converter(m.fields_by_name["value"])))
        elif f.is_repeated:
            plan.append((f.name, _REPEATED, _converter(f)))
        elif m is not None or f.has_presence:  # unset: null
            plan.append((f.name, _PRESENCE, _converter(f)))
        else:
            plan.append((f.name, _PLAIN, _converter(f)))
    return tuple(plan)


def value_json(f: FieldDescriptor, value: Any) -> Any:
    """One value of a field as the canonical API writes it (the CLI builds request bodies with it)."""
    convert = _converter(f)
    return value if convert is None else convert(value)


@functools.cache
def _converter(f: FieldDescriptor) -> Callable[[Any], Any] | None:
    """How one value of the field becomes JSON; None: it already is."""
    m = f.message_type
    if m is None:
        if f.type == FieldDescriptor.TYPE_ENUM:
            words = {v.number: enum_word_of(f.enum_type, v.number) for v in f.enum_type.values}
            return lambda number: words[number] if number in words else str(number)
        if f.type == FieldDescriptor.TYPE_BYTES:
            return lambda raw: base64.b64encode(raw).decode()
        return None
    if m.full_name == "google.protobuf.Struct":
        return struct_to_dict
    if m.full_name in WELL_KNOWN_JSON:
        return json_format.MessageToDict
    if m.full_name == TIMESTAMP:
        return ts_iso
    if m.full_name == DURATION:
        return duration_s
    return message_json


def iso_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
