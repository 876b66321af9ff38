"""The training store's write-ahead log of event appends: durable before anyone sees them, in
DuckDB a moment later.

Why: a DuckDB transaction that stores a batch of events (events, metric points, checkpoints,
the job rows: 5-9 statements) costs ~5 ms on an idle machine and ~13 ms while five jobs train
(profiled: while jobs stream it was 60-90% of a core of the TrainingService, and the whole of
an event's way to a live subscriber). An fsync'd append to a file costs ~0.2 ms. So an append
is acknowledged (and published to watchers) once its record is in this log; the store writes
the pending records to DuckDB in one transaction every few hundred milliseconds, and before any
read or other write of the file (store.py), so every query still sees every acknowledged event.
A database's own WAL does the same.

Format: numbered segment files ``<n>.log``; each record is ``length (u32) | crc32 (u32) | pickle``.
A segment holds the records of one DuckDB write: it is sealed when that write starts and deleted
after it commits, so after a crash every segment left is either wholly in DuckDB (its first
cursor is at or below the file's last) or wholly not. A torn last record (the process died
inside the write or its fsync) was never acknowledged and is dropped. The records are this
process's own, read back only by it: pickle keeps their values (datetimes, None) exact.
"""
from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<II")


def _fsync_dir(directory: Path) -> None:
    """Make a created or deleted file name durable (the data's own fsync does not cover it)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EventLog:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        existing = self.segments()
        self._next = int(existing[-1].stem) + 1 if existing else 1
        self._fd: int | None = None
        self._path: Path | None = None

    def segments(self) -> list[Path]:
        """The segment files in the order they were written."""
        return sorted(self.directory.glob("*.log"), key=lambda p: int(p.stem))

    def append(self, record: Any) -> None:
        """Write one record and fsync it: when this returns, the record survives a crash."""
        if self._fd is None:
            self._path = self.directory / f"{self._next:012d}.log"
            self._next += 1
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            _fsync_dir(self.directory)
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(data), zlib.crc32(data)) + data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fdatasync(self._fd)

    def seal(self) -> Path | None:
        """Close the segment being written (its records are about to go to DuckDB); the next
        append starts a new one. Returns the sealed segment, None when nothing was written."""
        if self._fd is None:
            return None
        os.close(self._fd)
        path, self._fd, self._path = self._path, None, None
        return path

    def discard(self, paths: list[Path]) -> None:
        """Delete segments whose records DuckDB has committed."""
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            _fsync_dir(self.directory)

    def close(self) -> None:
        self.seal()

    @staticmethod
    def read(path: Path) -> list[Any]:
        """The whole records of a segment, in order; a torn or corrupt tail ends it."""
        data = path.read_bytes()
        records, offset = [], 0
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            body = data[offset + _HEADER.size:offset + _HEADER.size + length]
            if len(body) != length or zlib.crc32(body) != crc:
                break
            records.append(pickle.loads(body))
            offset += _HEADER.size + length
        return records
