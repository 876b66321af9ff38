"""Wall-clock helpers: one source of 'now' and the protobuf Timestamp conversions."""
from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def to_timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    ts.FromDatetime(value.astimezone(dt.timezone.utc))
    return ts


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
