"""Keyset page tokens (AIP-158), shared by every List RPC, and the client loop that follows them.

Why keyset and not offsets: an offset names a position, so a row inserted ahead of it shifts
every later page (a job created while a client pages newest-first pushes an already-returned job
onto the next page again), and knowing whether another page follows needs a count per page. A
keyset token names the last row returned by its sort key, so the next page starts strictly after
that row whatever was inserted meanwhile; one row fetched beyond the page says whether another
page follows, so no page counts anything unless the caller asks for ``total_size``.

A token is urlsafe base64 of JSON ``{"k": [sort key of the last row], "f": digest}``, where the
digest covers every field of the request except the paging ones: a token only continues the
request that produced it (another filter or order_by is INVALID_ARGUMENT naming ``page_token``).
Tokens are opaque to clients; nothing outside this module reads them.

``skip`` (AIP-158) skips that many rows after the token's position (or from the start): the
gateway translates the seed surfaces' page numbers and offsets into it.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from google.protobuf.message import Message

from trainhouse.core.errors import InvalidArgument

if TYPE_CHECKING:
    from trainhouse.common.duckdb_store import DuckStore

# Fields that move through a listing rather than choose it: left out of the token's digest.
PAGING_FIELDS = ("page_size", "page_token", "skip", "include_total_size")
_KEY_COLUMN = "__page_key"  # the sort key's columns in a page query: __page_key0, __page_key1, ...


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset order: an SQL expression that is never NULL, its direction, and the
    Python type of its value (how a token's copy of it is checked and decoded)."""

    expr: str
    descending: bool = False
    kind: type = str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Order:
    """A total order over a listing's rows: its keys together are unique per row (the last ones are
    the tiebreak, usually the id), so the last row of a page pins exactly where the next one starts."""

    keys: tuple[SortKey, ...]

    def decode(self, values: list[Any]) -> tuple[Any, ...]:
        """A token's sort key as SQL parameters; INVALID_ARGUMENT if it does not fit this order."""
        if len(values) != len(self.keys):
            raise _malformed()
        return tuple(_decode_value(v, key.kind) for v, key in zip(values, self.keys))

    def after(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """The condition "the row sorts after `values`" on the page query's key columns, each key in its
        own direction (so mixed directions work): (k0 > v0) OR (k0 = v0 AND k1 > v1) OR ... with
        "<" for a descending key."""
        clauses, params = [], []
        for i, key in enumerate(self.keys):
            equal = [f"{_KEY_COLUMN}{j} = ?" for j in range(i)]
            clauses.append("(" + " AND ".join([*equal, f"{_KEY_COLUMN}{i} {'<' if key.descending else '>'} ?"]) + ")")
            params += values[:i + 1]
        return "(" + " OR ".join(clauses) + ")", params

    def select(self) -> tuple[str, list[Any]]:
        return (", ".join(f"{k.expr} AS {_KEY_COLUMN}{i}" for i, k in enumerate(self.keys)),
                [p for k in self.keys for p in k.params])

    def order_by(self) -> str:
        return ", ".join(f"{_KEY_COLUMN}{i} {'DESC' if k.descending else 'ASC'}" for i, k in enumerate(self.keys))


@dataclass(frozen=True)
class PageRequest:
    """The paging part of a List request, validated: where to start and how much to return."""

    size: int
    skip: int = 0
    after: list[Any] | None = None  # the sort key a token carried, still undecoded (the store's Order decodes)
    digest: str = ""
    with_total: bool = False


class ColumnRows(Sequence[dict[str, Any]]):
    """A page's rows held as the columns DuckDB returned them (one NumPy array per column, masked
    where a value is NULL), for a caller that reads whole columns: turning a 10k-point metric page
    into protos from its columns never builds a dict, a tuple or a datetime per point. It is still
    a sequence of row dicts for everyone else; a row is built when it is read, with the values
    fetchall would give (Python ints, floats, str, naive datetimes for TIMESTAMP, None for NULL)
    for the column types NumPy holds as they are. Not for a TIMESTAMPTZ column, which fetchnumpy
    returns without its zone: page such a table in row mode."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self._columns = columns
        self._names = list(columns)
        self._len = len(next(iter(columns.values()))) if columns else 0
        self._lists: list[list[Any]] | None = None

    def column(self, name: str) -> np.ndarray:
        """One column as DuckDB returned it: a NumPy array, a masked one where the column has NULLs."""
        return self._columns[name]

    def _values(self) -> list[list[Any]]:
        if self._lists is None:  # each column converted to Python values once, by NumPy
            self._lists = [c.tolist() for c in self._columns.values()]
        return self._lists

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("row index out of range")
        return dict(zip(self._names, (values[index] for values in self._values())))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self._names
        return (dict(zip(names, row)) for row in zip(*self._values()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"ColumnRows({self._len} rows: {', '.join(self._names)})"


@dataclass(frozen=True)
class Page:
    """One page of rows, the token of the next page ("" on the last) and the total if it was asked for."""

    rows: Sequence[Any] = field(default_factory=list)  # a list, or a fetch_page(columnar=True)'s ColumnRows
    next_page_token: str = ""
    total_size: int = 0

    def map(self, convert: Callable[[Any], Any]) -> "Page":
        return replace(self, rows=[convert(r) for r in self.rows])


def page_size(value: int, default: int, maximum: int, field: str = "page_size") -> int:
    """0 means the RPC's default; more than its maximum is capped to it (AIP-158, documented per RPC)."""
    if value < 0:
        raise InvalidArgument(field, "must be >= 0")
    if value == 0:
        return default
    return min(value, maximum)


def page_request(request: Message, default_size: int, max_size: int) -> PageRequest:
    """Validate a List request's page_size, page_token and (where the request has them) skip and
    include_total_size; the token must come from a request with the same other fields."""
    names = request.DESCRIPTOR.fields_by_name
    skip = request.skip if "skip" in names else 0
    if skip < 0:
        raise InvalidArgument("skip", "must be >= 0")
    digest = request_digest(request)
    after = None
    if request.page_token:
        after, token_digest = _decode_token(request.page_token)
        if token_digest != digest:
            raise InvalidArgument("page_token", "was issued for a request with other filters or order_by; "
                                                "send the same fields with it, or start again without a token")
    return PageRequest(size=page_size(request.page_size, default_size, max_size), skip=skip, after=after,
                       digest=digest, with_total=bool("include_total_size" in names and request.include_total_size))


def request_digest(request: Message) -> str:
    """A digest of every field of the request except the paging ones (filters, order_by, ...)."""
    shape = type(request)()
    shape.CopyFrom(request)
    for name in PAGING_FIELDS:
        if name in shape.DESCRIPTOR.fields_by_name:
            shape.ClearField(name)
    data = shape.DESCRIPTOR.full_name.encode() + b"\0" + shape.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()[:16]


def fetch_page(db: "DuckStore", source: str, where: Sequence[str], params: Sequence[Any], order: Order,
               page: PageRequest, columns: str = "*", columnar: bool = False) -> Page:
    """One page of ``SELECT columns FROM source WHERE where`` in `order`: the rows after the token's
    key, `page.skip` more skipped, one extra row fetched to know whether a next page exists; a count
    over the same filters only if the request asked for total_size.

    The page's rows are dicts; with ``columnar`` they are a ColumnRows (the same rows, held as the
    NumPy columns DuckDB filled), for a caller that converts whole columns."""
    keys, key_params = order.select()
    filters = " AND ".join(f"({w})" for w in where) or "TRUE"
    outer, outer_params = "TRUE", []
    if page.after is not None:
        outer, outer_params = order.after(order.decode(page.after))
    sql = (f"SELECT * FROM (SELECT {columns}, {keys} FROM {source} WHERE {filters}) AS page_rows "
           f"WHERE {outer} ORDER BY {order.order_by()} LIMIT ? OFFSET ?")
    sql_params = [*key_params, *params, *outer_params, page.size + 1, page.skip]
    n_keys = len(order.keys)
    rows: Sequence[Any]
    if columnar:
        fetched = db.query_columns(sql, sql_params)
        names = list(fetched)
        count = len(fetched[names[0]])
        more = count > page.size
        # The key columns come last; the token takes the last shown row's key as Python values.
        last_key = [fetched[n][page.size - 1:page.size].tolist()[0] for n in names[len(names) - n_keys:]] if more \
            else []
        rows = ColumnRows({n: fetched[n][:page.size] for n in names[:len(names) - n_keys]})
    else:
        names, tuples = db.query_rows(sql, sql_params)
        more = len(tuples) > page.size
        tuples = tuples[:page.size]
        # The key columns come last: each row's dict is built once, from the columns before them (a
        # 10k-point metric page spent more time building and filtering dicts than in DuckDB).
        shown = names[:len(names) - n_keys]
        last_key = list(tuples[-1][len(shown):]) if more else []
        rows = [dict(zip(shown, row)) for row in tuples]
    token = _encode_token(last_key, page.digest) if more else ""
    total = db.query(f"SELECT count(*) FROM {source} WHERE {filters}", list(params))[0][0] if page.with_total else 0
    return Page(rows, token, total)


def list_page(items: Sequence[Any], page: PageRequest) -> Page:
    """A page of an immutable in-memory list (a job's example split), keyed by position; total is
    free here, so it is always set."""
    start = page.skip
    if page.after is not None:
        if len(page.after) != 1 or _decode_value(page.after[0], int) < 0:
            raise _malformed()
        start += page.after[0] + 1
    rows = list(items[start:start + page.size])
    more = start + page.size < len(items)
    return Page(rows, _encode_token([start + len(rows) - 1], page.digest) if more else "", len(items))


def collect_pages(call: Callable[[Any], Any], request: Message, field: str, page_size: int,
                  limit: int | None = None) -> list[Any]:
    """Every item of a List RPC's `field` (or the first `limit`), following next_page_token: `call`
    sends a copy of `request` once per page, with page_size and page_token filled in. The one paging
    loop of our gRPC clients, so none of them re-implements the end-of-list test."""
    out: list[Any] = []
    page = type(request)()
    page.CopyFrom(request)
    while limit is None or len(out) < limit:
        page.page_size = page_size if limit is None else min(page_size, limit - len(out))
        resp = call(page)
        items = getattr(resp, field)
        out.extend(items)
        page.page_token = resp.next_page_token
        if not page.page_token or not items:
            break
    return out if limit is None else out[:limit]


# ---- the token codec ---------------------------------------------------------------------------
def _malformed() -> InvalidArgument:
    return InvalidArgument("page_token", "malformed page token; use a next_page_token exactly as returned")


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _decode_value(value: Any, kind: type) -> Any:
    if kind is dt.datetime:
        if not isinstance(value, str):
            raise _malformed()
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _malformed() from None
        if parsed.tzinfo is not None:  # stored times are naive UTC; a token never carries an offset
            raise _malformed()
        return parsed
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:  # bool is not an int here, nor an int a str
        raise _malformed()
    return value


def _encode_token(key: list[Any], digest: str) -> str:
    body = json.dumps({"k": [_encode_value(v) for v in key], "f": digest}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[list[Any], str]:
    try:
        data = json.loads(base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):  # not base64, not UTF-8, not JSON
        raise _malformed() from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list) or not isinstance(data.get("f"), str):
        raise _malformed()
    return data["k"], data["f"]
