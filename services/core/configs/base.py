"""What every config model shares: strict scalar types, the accepted spellings, and one way to fail.

A config field is declared once, as a pydantic field: its type, range (``ge/gt/le/lt``), enum
(``Literal``), default, help text (``description``) and the spellings callers may use for it. From
that one declaration come the validation at the service's edge, the JSON schema the gateway
publishes, and the resolved config a job stores (``to_dict``: every field, canonical snake_case).

Two ways in, on purpose:

* ``Model(**kwargs)`` is the Python API: strict, a float is never an integer.
* ``Model.from_dict(data)`` decodes what arrived over a transport (JSON, a protobuf ``Struct``):
  ``Struct`` carries every number as a double, so an integral float counts as an integer there;
  ``null`` (and ``""`` for a name) means "not set"; two spellings of one field must agree.

Both raise the domain ``InvalidArgument(field, message)``, never pydantic's error, and name the
field as the caller wrote it (``learningRate``, ``learning_rate``, ``validation.split``,
``hiddenSizes[1]``). Validators inside the models raise ``PydanticCustomError`` so that the same
types can validate a gateway request body, where FastAPI expects pydantic's errors.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, Literal, Optional, Self, Union, get_args, get_origin

import annotated_types
from pydantic import (AliasChoices, AliasGenerator, AliasPath, BaseModel, BeforeValidator, ConfigDict, Field,
                      Strict, ValidationError)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from trainhouse.core.errors import InvalidArgument


def _name(value: Any) -> Any:
    """Enum values are names: surrounding blanks and case carry no meaning ("Adam " is "adam")."""
    return value.strip().lower() if isinstance(value, str) else value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# Strict scalars: JSON ``true`` is not an integer, "5" is not a number, NaN and infinities are refused.
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, BeforeValidator(_stripped), Strict()]


def choice(*values: str) -> Any:
    """An enum field's type: one of ``values``, published as a JSON-schema ``enum``."""
    return Annotated[Literal[values], BeforeValidator(_name)]


def spellings(*, camel_first: bool, first: Mapping[str, Iterable[str | AliasPath]] | None = None,
              extra: Mapping[str, Iterable[str | AliasPath]] | None = None) -> AliasGenerator:
    """The names a field is accepted under: camelCase and snake_case (in the order the config's seed
    documents them), with ``first`` / ``extra`` seed spellings before / after them. The first flat
    one is the published name; when two are given, the earlier one is taken and the later one named
    in the error if they disagree."""
    first, extra = dict(first or {}), dict(extra or {})

    def choices(name: str) -> AliasChoices:
        pair = (to_camel(name), name) if camel_first else (name, to_camel(name))
        ordered: list[str | AliasPath] = []
        for spelling in (*first.get(name, ()), *pair, *extra.get(name, ())):
            if spelling not in ordered:
                ordered.append(spelling)
        return AliasChoices(*ordered)

    return AliasGenerator(validation_alias=choices)


def custom_error(message: str, suffix: str = "") -> PydanticCustomError:
    """A validator's failure; ``suffix`` points below the field (``"[2].name"``, ``".dim"``)."""
    return PydanticCustomError("config", "{message}", {"message": message, "suffix": suffix})


def from_domain(err: InvalidArgument, field: str) -> PydanticCustomError:
    """A helper's ``InvalidArgument`` about ``field`` (e.g. "tools[0].name") as a validator failure."""
    at = err.field or field
    return custom_error(err.message, at[len(field):] if at.startswith(field) else "")


class ConfigModel(BaseModel):
    """Base of every config: strict types, caller keys ignored, errors as ``InvalidArgument``."""

    model_config = ConfigDict(extra="ignore", alias_generator=spellings(camel_first=True))

    # Which config this is, in the words of the API ("supervised", "grpo", ...).
    kind: ClassVar[str] = "config"
    # Whether ``from_dict`` refuses keys that are none of the fields' spellings.
    refuses_unknown_keys: ClassVar[bool] = False

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise invalid_argument(exc, type(self)) from None

    # Only ``Model(...)`` translates the error: for nested models and ``model_validate`` pydantic
    # must keep validating as for a plain model (its own errors, full locations), so it is told
    # that this is the base ``__init__``.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, strict: bool | None = None) -> Self:
        """Decode a transport's config object (see the module docstring). ``strict`` (default: the
        class's ``refuses_unknown_keys``) refuses unknown keys, so a misspelt option is not silently
        ignored; pass ``strict=False`` when ``data`` also holds the caller's own keys."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidArgument("config", "must be an object")
        prepared = _prepared(cls, data, cls.refuses_unknown_keys if strict is None else strict)
        try:
            return cls.model_validate(prepared)
        except ValidationError as exc:
            raise invalid_argument(exc, cls) from None

    def to_dict(self) -> dict[str, Any]:
        """The resolved config: every field, defaults filled in, canonical snake_case names,
        JSON-ready; ``from_dict`` reads it back to an equal config."""
        return self.model_dump(mode="json")

    @classmethod
    def help(cls) -> dict[str, str]:
        """Published field name -> help text (API docs, CLI ``--help``)."""
        return {published_name(f, name): f.description or "" for name, f in cls.model_fields.items()}


# ---- spellings ------------------------------------------------------------------------------------

def _choices(field: FieldInfo, name: str) -> list[tuple[str | int, ...]]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [tuple(c.path) if isinstance(c, AliasPath) else (c,) for c in alias.choices]
    if isinstance(alias, AliasPath):
        return [tuple(alias.path)]
    return [(alias or name,)]


def published_name(field: FieldInfo, name: str) -> str:
    """The spelling a field is documented under (its first flat spelling)."""
    return next((str(c[0]) for c in _choices(field, name) if len(c) == 1), name)


def flat_spellings(field: FieldInfo, name: str) -> AliasChoices:
    """A field's spellings without the nested ones (``validation.split``): for request models
    that describe the nesting with their own objects."""
    return AliasChoices(*[str(c[0]) for c in _choices(field, name) if len(c) == 1])


_MISSING = object()


def _lookup(data: Mapping[str, Any], path: tuple[str | int, ...]) -> Any:
    current: Any = data
    for i, key in enumerate(path):
        if not isinstance(current, Mapping):
            raise InvalidArgument(".".join(map(str, path[:i])), "must be an object")
        if key not in current:
            return _MISSING
        current = current[key]
    return current


def _drop(data: dict[str, Any], path: tuple[str | int, ...]) -> None:
    """Remove ``path`` from ``data``, copying the dicts along the way (the caller's stay untouched)."""
    head, *rest = path
    if not rest:
        data.pop(head, None)  # type: ignore[arg-type]
        return
    child = dict(data[head])  # type: ignore[index]
    data[head] = child  # type: ignore[index]
    _drop(child, tuple(rest))


def _put(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set ``path`` in ``data``, copying the dicts along the way."""
    head, *rest = path
    if not rest:
        data[head] = value  # type: ignore[index]
        return
    child = dict(data[head])  # type: ignore[index]
    data[head] = child  # type: ignore[index]
    _put(child, tuple(rest), value)


def _integers(annotation: Any, value: Any) -> Any:
    """``value`` with integral floats made integers where ``annotation`` wants an integer: a
    protobuf ``Struct`` (and a JSON decoder that only knows doubles) has no integers, so there
    3.0 is the 3 the caller sent. Nothing else is coerced."""
    bare, _ = _split(annotation)
    if bare is int:
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if get_origin(bare) in (tuple, list) and isinstance(value, (list, tuple)):
        item = get_args(bare)[0]
        return [_integers(item, v) for v in value]
    if isinstance(bare, type) and issubclass(bare, BaseModel) and isinstance(value, Mapping):
        out = dict(value)
        for name, field in bare.model_fields.items():
            for path in _choices(field, name):
                found = _lookup(value, path)
                if found is not _MISSING:
                    _put(out, path, _integers(field.annotation, found))
        return out
    return value


def _unwrapped(annotation: Any) -> list[Any]:
    """The members of a union (``X | None`` -> [X, None]), else [annotation]."""
    if get_origin(annotation) in (Union, UnionType):
        return list(get_args(annotation))
    return [annotation]


def _nullable(field: FieldInfo) -> bool:
    return NoneType in _unwrapped(field.annotation)


def _named(field: FieldInfo) -> bool:
    """A name-valued field (text or enum), whose proto3 default "" means "not set"."""
    for member in _unwrapped(field.annotation):
        if member is str or (get_origin(member) is Literal and all(isinstance(a, str) for a in get_args(member))):
            return True
    return False


def _unset(field: FieldInfo, value: Any) -> bool:
    return (value is None and not _nullable(field)) or (value == "" and _named(field))


def _spelled(path: tuple[str | int, ...]) -> str:
    return ".".join(map(str, path))


def _prepared(cls: type[BaseModel], data: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    """``data`` with unset values removed; refuses spellings that disagree and, if ``strict``,
    keys that are no field's."""
    out = dict(data)
    known: set[str] = set()
    for name, field in cls.model_fields.items():
        choices = _choices(field, name)
        known.update(str(c[0]) for c in choices)
        present: list[tuple[str, Any]] = []
        for path in choices:
            value = _lookup(data, path)
            if value is _MISSING:
                continue
            if _unset(field, value):
                _drop(out, path)
                continue
            value = _integers(field.annotation, value)
            _put(out, path, value)
            present.append((_spelled(path), value))
        for spelled, value in present[1:]:
            if value != present[0][1]:
                raise InvalidArgument(spelled, f"conflicts with {present[0][0]}")
    if strict:
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidArgument(unknown[0], f"unknown {getattr(cls, 'kind', 'config')} option; valid options: "
                                  + ", ".join(published_name(f, n) for n, f in cls.model_fields.items()))
    return out


# ---- errors ---------------------------------------------------------------------------------------

_INTEGER = ("int_type", "int_from_float", "int_parsing")
_NUMBER = ("float_type", "float_parsing", "finite_number")
_RANGE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def error_path(loc: Iterable[str | int]) -> str:
    """("curriculum", "stages", 0, "level") -> "curriculum.stages[0].level"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def invalid_argument(exc: ValidationError, model: type[BaseModel]) -> InvalidArgument:
    """The first error of ``exc`` as the domain error, naming the field as the caller wrote it."""
    first = exc.errors(include_url=False)[0]
    ctx = first.get("ctx") or {}
    field = error_path(first["loc"]) + str(ctx.get("suffix", ""))
    return InvalidArgument(field or "config", describe(first, model))


def describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """A pydantic error in the words the API uses everywhere ("must be in (0, 1], got 1.5")."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    annotation, bounds = _target(model, tuple(error["loc"]))
    integer = annotation is int
    if kind in _INTEGER:
        return f"must be an integer{_span(bounds, True)}, got {value!r}"
    if kind in _NUMBER:
        return f"must be a finite number{_span(bounds, False)}, got {value!r}"
    if kind in _RANGE:
        bounds = bounds or {k: ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx}
        shown = f"{value:g}" if isinstance(value, float) else value
        return f"must be{_span(bounds, integer)}, got {shown}"
    if kind == "literal_error":
        options = _literal_values(annotation)
        listed = ", ".join(options) if options else str(ctx.get("expected", ""))
        return f"must be one of {listed}, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be a boolean, got {value!r}"
    if kind == "string_type":
        return f"must be a string, got {value!r}"
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "missing":
        return "is required"
    return str(ctx["message"]) if kind == "config" else str(error.get("msg", "invalid value"))


def _span(bounds: Mapping[str, float], integer: bool) -> str:
    """" between 1 and 10000" for a closed integer range, else " in (0, 1]"; "" without bounds."""
    if not bounds:
        return ""
    if integer and "ge" in bounds and "le" in bounds:
        return f" between {bounds['ge']} and {bounds['le']}"
    low = f"({_num(bounds['gt'])}" if "gt" in bounds else f"[{_num(bounds.get('ge', -math.inf))}"
    high = f"{_num(bounds['lt'])})" if "lt" in bounds else f"{_num(bounds.get('le', math.inf))}]"
    return f" in {low}, {high}"


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(metadata: Iterable[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            out.update(_bounds(item.metadata))
        for key, kind in (("ge", annotated_types.Ge), ("gt", annotated_types.Gt), ("le", annotated_types.Le),
                          ("lt", annotated_types.Lt)):
            if isinstance(item, kind):
                out[key] = getattr(item, key)
    return out


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, its Annotated metadata), with ``X | None`` read as X."""
    members = [m for m in _unwrapped(annotation) if m is not NoneType]
    annotation = members[0] if len(members) == 1 else annotation
    if get_origin(annotation) is Annotated:
        bare, *metadata = get_args(annotation)
        inner, more = _split(bare)
        return inner, [*metadata, *more]
    return annotation, []


def _literal_values(annotation: Any) -> list[str]:
    return [str(v) for v in get_args(annotation)] if get_origin(annotation) is Literal else []


def _target(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[Any, dict[str, float]]:
    """(type, range) of what ``loc`` points at: a field, an item of a list field, or a field of a
    nested model; (None, {}) when it cannot be told."""
    for name, field in model.model_fields.items():
        for path in _choices(field, name):
            if loc[:len(path)] != path:
                continue
            annotation, metadata = _split(field.annotation)
            metadata = [*field.metadata, *metadata]
            rest = loc[len(path):]
            while rest and isinstance(rest[0], int) and get_origin(annotation) in (tuple, list):
                annotation, metadata = _split(get_args(annotation)[0])
                rest = rest[1:]
            if not rest:
                return annotation, _bounds(metadata)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return _target(annotation, rest)
            return None, {}
    return None, {}


# ---- request models -------------------------------------------------------------------------------

def optional_type(model: type[BaseModel], name: str, *, description: str | None = None) -> Any:
    """``model.name``'s type (range, enum, strictness) as an optional request field, default None
    ("the service's default"): a surface's own field reuses the rule instead of restating it."""
    field = model.model_fields[name]
    inner = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return Annotated[Optional[inner], Field(description=description or field.description)]


def request_fields(*models: type[ConfigModel], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Every field of ``models`` as an optional request field (for ``pydantic.create_model``):
    same type, range, enum and flat spellings; the help text says each model's default. The
    models' cross-field rules are not copied: the service applies them where the config is built."""
    skip = set(exclude)
    out: dict[str, Any] = {}
    for model in models:
        for name, field in model.model_fields.items():
            if name in out or name in skip:
                continue
            text = " ".join(filter(None, [field.description, _defaults(name, models)]))
            out[name] = (optional_type(model, name, description=text),
                         Field(None, validation_alias=flat_spellings(field, name)))
    return out


def _defaults(name: str, models: Iterable[type[ConfigModel]]) -> str:
    by_value: dict[str, list[str]] = {}
    for model in models:
        field = model.model_fields.get(name)
        if field is not None:
            value = model().to_dict()[name]
            # An unset field a config chooses from the data ("auto") or takes from the base model.
            shown = json.dumps(value) if value is not None else "auto"
            by_value.setdefault(shown, []).append(model.kind)
    if len(by_value) == 1:
        return f"Default: {next(iter(by_value))}."
    return "Default: " + "; ".join(f"{v} ({', '.join(kinds)})" for v, kinds in by_value.items()) + "."



# ---- reading a model's rules ----------------------------------------------------------------------

def field_bounds(model: type[BaseModel], name: str, *, item: bool = False) -> dict[str, float]:
    """The range of ``model.name`` (of its items with ``item``) as {"ge": 1, "le": 10000}."""
    return _target(model, (name, 0) if item else (name,))[1]


def within(model: type[BaseModel], name: str, value: float, *, item: bool = False) -> Any:
    """``value`` moved into the closed part of ``model.name``'s range: for values a program derives
    (a suggestion "1.5x the epochs" must stay one the service accepts), never for a caller's input,
    which is refused when out of range."""
    bounds = field_bounds(model, name, item=item)
    if "le" in bounds:
        value = min(value, bounds["le"])
    if "ge" in bounds:
        value = max(value, bounds["ge"])
    return value
