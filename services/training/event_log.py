"""The training store's write-ahead log of event appends: durable before anyone sees them, in
DuckDB a moment later.

Why: a DuckDB transaction that stores a batch of events (events, metric points, checkpoints,
the job rows: 5-9 statements) costs ~5 ms on an idle machine and ~13 ms while five jobs train
(profiled: while jobs stream it was 60-90% of a core of the TrainingService, and the whole of
an event's way to a live subscriber). An fsync'd write to a file costs ~0.2-0.5 ms. So an append
is acknowledged (and published to watchers) once its record is in this log; the store writes
the pending records to DuckDB in one transaction every few hundred milliseconds, and before any
read or other write of the file (store.py), so every query sees every acknowledged event.
A database's own WAL does the same.

Segments are preallocated, zero-filled files that are reused, as PostgreSQL does with its WAL:
a DuckDB write every 0.25 s would otherwise create, grow and delete a file each time (three
journalled metadata changes and a directory fsync). Measured on this VM, the fsync is ~0.5 ms at
p50 but ~20-35 ms at p99 either way while DuckDB's own commits flush the same virtual disk: that
tail is the device's, and it is the p99 of an event's way to a live subscriber.

Format: a segment file starts with its number (u64, the order segments were written in); each
record is ``length (u32) | crc32 of number + body (u32) | pickle``. A reused file still holds its
previous records past the new ones, and zeros past those: neither passes the crc check under the
new number, so reading stops at the end of what was written since the file was restarted. A
segment holds the records of one DuckDB write: it is sealed when that write starts and free for
reuse after it commits; after a crash every record is either in DuckDB (its cursor at or below
the file's last) or not, and the store replays exactly the latter. A torn last record (the
process died inside the write or its fsync) was never acknowledged and is dropped. The records
are this process's own, read back only by it: pickle keeps their values (datetimes, None) exact.
"""
from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

_NUMBER = struct.Struct("<Q")
_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 4 << 20  # preallocated per file; a batch that needs more grows its file


def _fsync_dir(directory: Path) -> None:
    """Make a created file name durable (the data's own fsync does not cover it)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class EventLog:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._files = sorted(directory.glob("wal-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        numbers = [self._number(p) for p in self._files]
        self._next = max((n for n in numbers if n is not None), default=0) + 1
        self._free = list(self._files)  # until the store's recovery, nothing is reused: see reuse()
        self._held: set[Path] = set(self._files)
        self._fd: int | None = None
        self._path: Path | None = None
        self._number_bytes = b""
        self._offset = 0
        self._written: list[Path] = []  # segments filled since the last seal

    @staticmethod
    def _number(path: Path) -> int | None:
        head = path.read_bytes()[:_NUMBER.size]
        return _NUMBER.unpack(head)[0] if len(head) == _NUMBER.size else None

    def segments(self) -> list[Path]:
        """The files that may hold records, in the order their current contents were written."""
        numbered = [(self._number(p), p) for p in self._files]
        return [p for n, p in sorted((n, p) for n, p in numbered if n)]

    def _start(self, size: int) -> None:
        """Open the next segment: a free file restarted under a new number, or a new zeroed one."""
        free = [p for p in self._free if p not in self._held]
        if free:
            path = free[0]
            self._free.remove(path)
            fd = os.open(path, os.O_RDWR)
        else:
            path = self.directory / f"wal-{len(self._files) + 1}.log"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            _write_all(fd, bytes(max(SEGMENT_BYTES, size)), 0)
            os.fsync(fd)
            _fsync_dir(self.directory)
            self._files.append(path)
        self._held.add(path)
        self._number_bytes = _NUMBER.pack(self._next)
        self._next += 1
        # The new number makes every record of the file's previous use fail its crc check.
        _write_all(fd, self._number_bytes, 0)
        self._fd, self._path, self._offset = fd, path, _NUMBER.size

    def append(self, record: Any) -> None:
        """Write one record and fsync it: when this returns, the record survives a crash."""
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        size = _HEADER.size + len(data)
        if self._fd is not None and self._offset > _NUMBER.size and self._offset + size > SEGMENT_BYTES:
            self._close_current()  # full: the record starts another (sealed together with this one)
        if self._fd is None:
            self._start(_NUMBER.size + size)
        framed = _HEADER.pack(len(data), zlib.crc32(data, zlib.crc32(self._number_bytes)))
        _write_all(self._fd, framed + data, self._offset)
        self._offset += size
        os.fdatasync(self._fd)

    def _close_current(self) -> None:
        os.close(self._fd)
        self._written.append(self._path)
        self._fd, self._path = None, None

    def seal(self) -> list[Path]:
        """Close the segment being written (its records are about to go to DuckDB); the next
        append starts another. Returns every segment written since the last seal."""
        if self._fd is not None:
            self._close_current()
        sealed, self._written = self._written, []
        return sealed

    def discard(self, paths: list[Path]) -> None:
        """Segments whose records DuckDB has committed: free for reuse (no disk write: a crash
        before reuse leaves records the store's recovery recognises as already stored)."""
        for path in paths:
            self._held.discard(path)
            if path not in self._free:
                self._free.append(path)

    def reuse_all(self) -> None:
        """After the store's recovery: every file is free for reuse."""
        self.discard(list(self._files))

    def close(self) -> None:
        self.seal()

    def read(self, path: Path) -> list[Any]:
        """The records written to a segment since it was last started, in order."""
        data = path.read_bytes()
        if len(data) < _NUMBER.size:
            return []
        number, records, offset = data[:_NUMBER.size], [], _NUMBER.size
        seed = zlib.crc32(number)
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            body = data[offset + _HEADER.size:offset + _HEADER.size + length]
            if not length or len(body) != length or zlib.crc32(body, seed) != crc:
                break
            records.append(pickle.loads(body))
            offset += _HEADER.size + length
        return records
