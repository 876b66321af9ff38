"""Job search: the filter and order_by language of ListJobs, parsed with a real grammar and compiled
to a parameterised DuckDB condition and keyset order over the TrainingService store (store.py's
`jobs` and `metrics` tables). The grammar is documented in docs/search.md.

Why a grammar (lark, LALR) and not a hand-written tokenizer: a syntax error names its line and
column, and the language can grow (new operators, fields) without a second parser drifting from the
documentation.

Why nothing the user typed ever reaches the SQL text: values are parameters; field names are
looked up in a fixed table; config, label and metric keys must match a pattern and travel as
parameters too (a JSON pointer or a metric name). The SQL text is built only from this module's
constants.

Missing values: a comparison whose field has no value (a job without that metric, label or config
key) is false, and NOT makes it true, so `NOT metrics.loss < 1` also lists jobs that never logged a
loss. IS NULL / IS NOT NULL ask about presence directly.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from trainhouse.common.pagination import Order, SortKey
from trainhouse.core.errors import InvalidArgument

MAX_QUERY = 4096  # characters of a filter or order_by
MAX_IN_VALUES = 200

GRAMMAR = r"""
?filter: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negation
         | atom
?atom: "(" or_expr ")"
     | field COMPARE value                                   -> compare
     | field NOT? _IN "(" value ("," value)* ")"          -> member
     | field NOT? _LIKE STRING                             -> like
     | field _IS NOT? _NULL                               -> missing

order: order_item ("," order_item)*
order_item: field DIRECTION?

field: FIELD ("@" _STEP "=" INT)?
?value: STRING | NUMBER | TRUE | FALSE

FIELD: /[A-Za-z_][A-Za-z0-9_.\/\-]*/
COMPARE: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
NUMBER: /-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/
INT: /\d+/

_OR.2: /or\b/i
_AND.2: /and\b/i
NOT.2: /not\b/i
_IN.2: /in\b/i
_LIKE.2: /like\b/i
_IS.2: /is\b/i
_NULL.2: /null\b/i
_STEP.2: /step\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
DIRECTION.2: /(asc|desc)\b/i

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, start=["filter", "order"], parser="lalr", propagate_positions=True,
               maybe_placeholders=False)

# How the parser's terminals read in an error message.
_TERMINAL_WORDS = {
    "FIELD": "a field", "COMPARE": "a comparison (= != < <= > >=)", "STRING": "a value", "NUMBER": "a value",
    "TRUE": "a value", "FALSE": "a value", "INT": "a step number", "LPAR": "'('", "RPAR": "')'",
    "COMMA": "','", "_OR": "OR", "_AND": "AND", "NOT": "NOT", "_IN": "IN", "_LIKE": "LIKE",
    "_IS": "IS", "_NULL": "NULL", "_STEP": "'step'", "AT": "'@'", "EQUAL": "'='", "DIRECTION": "ASC or DESC",
    "$END": "the end",
}

# --- the fields -------------------------------------------------------------------------------
STRING_COLUMNS = ("job_id", "agent_id", "account_id", "display_name", "state", "method", "dataset_id",
                  "model_version_id")
TIME_COLUMNS = ("create_time", "start_time", "end_time")
NUMBER_COLUMNS = ("cost_usd", "example_count")
REQUIRED_COLUMNS = ("job_id", "agent_id", "account_id", "state", "method", "create_time")  # never NULL
STATE_VALUES = ("queued", "initializing", "running", "validating", "completed", "failed", "cancelled", "paused")
METHOD_VALUES = ("supervised", "few_shot", "transfer", "reinforcement", "grpo")
# `.best` is the minimum for metrics whose name contains one of these, the maximum for the rest.
LOWER_IS_BETTER = ("loss", "error", "perplexity")
AGGREGATES = ("last", "best", "min", "max", "first")

_CONFIG_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_LABEL_KEY = re.compile(r"[a-z0-9_.\-]{1,64}")  # as StartJobRequest.labels allows (requests.job_labels)
_METRIC_NAME = re.compile(r"[A-Za-z0-9_.\/\-]{1,128}")

_METRIC_ROWS = "FROM metrics m WHERE m.job_id = jobs.job_id AND m.name = ?"


@dataclass(frozen=True)
class Position:
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class Field:
    """A resolved field: its SQL expression over one `jobs` row, that expression's parameters, and
    what kind of value it holds ("string", "number", "time" or "json": a config value typed by what
    it is compared with)."""

    name: str
    sql: str
    params: tuple[Any, ...]
    kind: str
    position: Position


@dataclass(frozen=True)
class Condition:
    """A compiled filter: one SQL boolean expression over a `jobs` row and its parameters."""

    sql: str
    params: tuple[Any, ...]


def search_error(field: str, position: Position | None, message: str) -> InvalidArgument:
    return InvalidArgument(field, f"{position}: {message}" if position else message)


def _position(token: Token) -> Position:
    return Position(token.line or 1, token.column or 1)


# --- parsing ---------------------------------------------------------------------------------
def _parse(text: str, start: str, request_field: str):
    if len(text) > MAX_QUERY:
        raise InvalidArgument(request_field, f"at most {MAX_QUERY} characters")
    try:
        return _PARSER.parse(text, start=start)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, request_field) from None


def _syntax_error(err: UnexpectedInput, text: str, request_field: str) -> InvalidArgument:
    expected = sorted({_TERMINAL_WORDS.get(t, t) for t in (getattr(err, "expected", None) or getattr(err, "allowed", None) or ())
                       if not t.startswith("__")})
    wanted = " or ".join(expected) if expected else "something else"
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        lines = text.split("\n")
        where = Position(len(lines), len(lines[-1]) + 1)
        return search_error(request_field, where, f"expected {wanted} at the end of the {request_field}")
    where = Position(err.line if err.line and err.line > 0 else 1, err.column if err.column and err.column > 0 else 1)
    if isinstance(err, UnexpectedCharacters):
        found = text[err.pos_in_stream] if err.pos_in_stream is not None else "?"
        if not expected:
            return search_error(request_field, where, f"unexpected character {found!r}")
        return search_error(request_field, where, f"unexpected character {found!r}; expected {wanted}")
    found = getattr(getattr(err, "token", None), "value", "") or "?"
    return search_error(request_field, where, f"expected {wanted}, found {found!r}")


@v_args(inline=True)
class _Compiler(Transformer):
    """Turns the parse tree into SQL bottom-up; semantic errors (an unknown field, a value of the
    wrong kind) name the position of what is wrong."""

    def __init__(self, request_field: str):
        super().__init__()
        self.request_field = request_field

    def _error(self, position: Position, message: str) -> InvalidArgument:
        return search_error(self.request_field, position, message)

    # fields
    def field(self, name: Token, step: Token | None = None) -> Field:
        return resolve_field(str(name), _position(name), int(step) if step is not None else None,
                             self.request_field)

    # boolean structure
    def or_expr(self, *items: Condition) -> Condition:
        return Condition("(" + " OR ".join(c.sql for c in items) + ")", tuple(p for c in items for p in c.params))

    def and_expr(self, *items: Condition) -> Condition:
        return Condition("(" + " AND ".join(c.sql for c in items) + ")", tuple(p for c in items for p in c.params))

    def negation(self, _not: Token, item: Condition) -> Condition:
        return Condition(f"(NOT {item.sql})", item.params)

    # predicates: each is two-valued (a missing value makes it false, never NULL)
    def compare(self, field: Field, op: Token, value: Token) -> Condition:
        sql_op = "!=" if op == "<>" else str(op)
        sql, params, param = self._typed(field, value, ordered=sql_op not in ("=", "!="))
        return Condition(f"coalesce({sql} {sql_op} ?, FALSE)", (*params, param))

    def member(self, field: Field, *rest: Token) -> Condition:
        negated = bool(rest) and rest[0].type == "NOT"
        values = rest[1:] if negated else rest
        if len(values) > MAX_IN_VALUES:
            raise self._error(field.position, f"IN takes at most {MAX_IN_VALUES} values")
        typed = [self._typed(field, v, ordered=False) for v in values]
        sql, params = typed[0][0], typed[0][1]
        kinds = {t[0] for t in typed}
        if len(kinds) > 1:  # a config value compared with both numbers and strings
            raise self._error(field.position, "IN values must all be numbers or all strings")
        marks = ", ".join("?" for _ in typed)
        return Condition(f"coalesce({sql} {'NOT IN' if negated else 'IN'} ({marks}), FALSE)",
                         (*params, *(t[2] for t in typed)))

    def like(self, field: Field, *rest: Token) -> Condition:
        negated = rest[0].type == "NOT"
        pattern = rest[-1]
        if field.kind not in ("string", "json"):
            raise self._error(field.position, f"LIKE compares text; {field.name} is a {field.kind}")
        sql = field.sql if field.kind == "string" else "json_extract_string(jobs.config_json, ?)"
        return Condition(f"coalesce({sql} {'NOT LIKE' if negated else 'LIKE'} ?, FALSE)",
                         (*field.params, _string(pattern)))

    def missing(self, field: Field, *rest: Token) -> Condition:
        negated = bool(rest)
        sql = field.sql if field.kind != "json" else "json_extract(jobs.config_json, ?)"
        return Condition(f"({sql} IS {'NOT ' if negated else ''}NULL)", field.params)

    def _typed(self, field: Field, value: Token, ordered: bool) -> tuple[str, tuple[Any, ...], Any]:
        """(SQL of the field, its parameters, the value as a parameter) for comparing `field` with the
        literal `value`; INVALID_ARGUMENT at the value when the kinds do not match."""
        where = _position(value)
        if field.kind == "json":  # a config value: compared as what the literal is
            if value.type == "NUMBER":
                return "TRY_CAST(json_extract_string(jobs.config_json, ?) AS DOUBLE)", field.params, float(value)
            if value.type in ("TRUE", "FALSE"):
                if ordered:
                    raise self._error(where, "true and false compare with = and != only")
                return "json_extract_string(jobs.config_json, ?)", field.params, value.type.lower()
            return "json_extract_string(jobs.config_json, ?)", field.params, _string(value)
        if value.type in ("TRUE", "FALSE"):
            raise self._error(where, f"{field.name} is a {field.kind}, not true/false")
        if field.kind == "number":
            if value.type != "NUMBER":
                raise self._error(where, f"{field.name} is a number; compare it with a number")
            return field.sql, field.params, float(value)
        if value.type != "STRING":
            raise self._error(where, f"{field.name} is {'a time' if field.kind == 'time' else 'text'}; "
                                     f"compare it with a quoted string")
        text = _string(value)
        if field.kind == "time":
            return field.sql, field.params, _timestamp(text, where, self.request_field)
        if field.name in ("state", "method") and not ordered:
            text = _enum_value(field.name, text, where, self.request_field)
        return field.sql, field.params, text

    # order_by
    def order_item(self, field: Field, direction: Token | None = None) -> tuple[Field, bool]:
        return field, direction is not None and direction.lower() == "desc"

    def order(self, *items: tuple[Field, bool]) -> list[tuple[Field, bool]]:
        return list(items)


def _string(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _timestamp(text: str, where: Position, request_field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise search_error(request_field, where, f"{text!r} is not an ISO 8601 time "
                                                 f"(e.g. \"2025-01-31\" or \"2025-01-31T12:00:00Z\")") from None
    if value.tzinfo is not None:  # stored times are naive UTC
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _enum_value(name: str, text: str, where: Position, request_field: str) -> str:
    """"completed", "COMPLETED" and "JOB_STATE_COMPLETED" all name the stored "completed"."""
    prefix = "job_state_" if name == "state" else "training_method_"
    value = text.lower().removeprefix(prefix)
    allowed = STATE_VALUES if name == "state" else METHOD_VALUES
    if value not in allowed:
        raise search_error(request_field, where, f"{text!r} is not a {name}; one of {', '.join(allowed)}")
    return value


def resolve_field(name: str, position: Position, step: int | None, request_field: str = "filter") -> Field:
    """The SQL of a field name (see docs/search.md for the list); INVALID_ARGUMENT at `position` for a
    name that is not one."""
    def error(message: str) -> InvalidArgument:
        return search_error(request_field, position, message)

    head, _, rest = name.partition(".")
    if step is not None and head != "metrics":
        raise error("@step=N applies to metrics.<name> only")
    if name in STRING_COLUMNS:
        return Field(name, f"jobs.{name}", (), "string", position)
    if name in TIME_COLUMNS:
        return Field(name, f"jobs.{name}", (), "time", position)
    if name in NUMBER_COLUMNS:
        return Field(name, f"CAST(jobs.{name} AS DOUBLE)", (), "number", position)
    if head == "config":
        if not _CONFIG_PATH.fullmatch(rest):
            raise error("config.<field> names a field of the job's resolved config, e.g. config.learning_rate")
        return Field(name, "json_extract(jobs.config_json, ?)", ("/resolved/" + rest.replace(".", "/"),), "json",
                     position)
    if head == "labels":
        if not _LABEL_KEY.fullmatch(rest):
            raise error("labels.<key>: keys are 1..64 characters of [a-z0-9_.-]")
        return Field(name, "json_extract_string(jobs.config_json, ?)", ("/labels/" + rest,), "string", position)
    if head == "metrics":
        return _metric_field(name, rest, position, step, error)
    raise error(f"unknown field {name!r}; fields are {', '.join((*STRING_COLUMNS, *TIME_COLUMNS, *NUMBER_COLUMNS))}, "
                f"config.<field>, labels.<key>, metrics.<name>[.last|.best|.min|.max|.first] and "
                f"metrics.<name>@step=N")


def _metric_field(name: str, rest: str, position: Position, step: int | None, error) -> Field:
    metric, _, aggregate = rest.rpartition(".")
    if aggregate not in AGGREGATES:
        metric, aggregate = rest, "last"
    if not _METRIC_NAME.fullmatch(metric):
        raise error("metrics.<name> needs a metric name, e.g. metrics.validation_accuracy")
    if step is not None:
        if aggregate != "last":
            raise error("metrics.<name>@step=N is the value at that step; it takes no .best/.min/.max")
        return Field(name, f"(SELECT arg_max(m.value, m.sequence) {_METRIC_ROWS} AND m.step = ?)",
                     (metric, step), "number", position)
    if aggregate == "best":
        aggregate = "min" if any(word in metric.lower() for word in LOWER_IS_BETTER) else "max"
    sql = {"last": "arg_max(m.value, m.sequence)", "first": "arg_min(m.value, m.sequence)",
           "min": "min(m.value)", "max": "max(m.value)"}[aggregate]
    return Field(name, f"(SELECT {sql} {_METRIC_ROWS})", (metric,), "number", position)


def _compile(tree, request_field: str):
    try:
        return _Compiler(request_field).transform(tree)
    except VisitError as err:  # a Transformer wraps what its callbacks raise
        if isinstance(err.orig_exc, InvalidArgument):
            raise err.orig_exc from None
        raise


def compile_filter(text: str) -> Condition | None:
    """The SQL condition of a ListJobs filter (None for an empty one); INVALID_ARGUMENT naming `filter`
    and the line and column of what is wrong."""
    if not text.strip():
        return None
    return _compile(_parse(text, "filter", "filter"), "filter")


def compile_order(text: str) -> Order:
    """The keyset order of a ListJobs order_by ("create_time desc" when empty): each field's keys,
    then create_time and job_id as the tiebreak in the first field's direction. Jobs without a value
    of a field sort after those with one, in either direction."""
    items = _compile(_parse(text, "order", "order_by"), "order_by") if text.strip() else []
    if not items:
        items = [(resolve_field("create_time", Position(1, 1), None, "order_by"), True)]
    keys: list[SortKey] = []
    for field, descending in items:
        keys += _sort_keys(field, descending)
    tiebreak = items[0][1]
    keys += [SortKey("jobs.create_time", tiebreak, dt.datetime), SortKey("jobs.job_id", tiebreak)]
    keys = [k for i, k in enumerate(keys) if k not in keys[:i]]  # "create_time" then its own tiebreak
    return Order(tuple(keys))


def _sort_keys(field: Field, descending: bool) -> list[SortKey]:
    """Sort keys are never NULL (pagination.SortKey): a presence flag first, then the value."""
    if field.name in REQUIRED_COLUMNS:
        return [SortKey(field.sql, descending, dt.datetime if field.kind == "time" else str)]
    absent = SortKey(f"CASE WHEN {field.sql} IS NULL THEN 1 ELSE 0 END", False, int, field.params)
    if field.kind == "string":
        return [absent, SortKey(f"coalesce({field.sql}, '')", descending, str, field.params)]
    if field.kind == "time":
        return [absent, SortKey(f"coalesce({field.sql}, TIMESTAMP '1970-01-01')", descending, dt.datetime,
                                field.params)]
    if field.kind == "number":
        return [absent, SortKey(f"CAST(coalesce({field.sql}, 0) AS DOUBLE)", descending, float, field.params)]
    # a config value: numbers by value (before any text), then text
    number = "TRY_CAST(json_extract_string(jobs.config_json, ?) AS DOUBLE)"
    text = "json_extract_string(jobs.config_json, ?)"
    return [absent,
            SortKey(f"CASE WHEN {number} IS NULL THEN 1 ELSE 0 END", False, int, field.params),
            SortKey(f"coalesce({number}, 0)", descending, float, field.params),
            SortKey(f"coalesce({text}, '')", descending, str, field.params)]
