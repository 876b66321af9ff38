"""The registry's serving generation, shared through a memory-mapped file with the gateways on its host.

Why a file and not a message: a gateway that serves Predict in its own process (docs/serving.md)
must never answer from a route older than a change the registry has acknowledged to anyone (a
client that deployed and then predicts must get the new version). The registry bumps the
generation in this file before the RPC that changed what serves answers; a replica compares it
with the generation of the last update it applied, a ~100 ns memory read per request, and leaves
the request to the registry whenever they differ. Messages alone cannot give that (the update may
still be in flight); a file in the same page cache can, on one host: hence the boot id (equal for
processes and containers on one kernel) and the nonce (the file a replica opened is the one the
registry writes).

Layout: 16 bytes, little endian: the nonce (uint64, written once), the generation (uint64, an
aligned 8-byte store, so a reader never sees half of one).
"""
from __future__ import annotations

import mmap
import os
import secrets
import struct
import time
from pathlib import Path

_LAYOUT = struct.Struct("<QQ")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This host's boot id ("" where there is none: then no replica serves)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


class GenerationWriter:
    """The registry's side: creates the file with a fresh nonce; ``bump`` publishes a change."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.nonce = secrets.randbits(63) | 1
        # Starts from the clock: a restarted registry never repeats a generation a replica applied.
        self.generation = time.time_ns()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # a nonce and a counter: nothing secret
        try:
            os.ftruncate(fd, _LAYOUT.size)
            self._map = mmap.mmap(fd, _LAYOUT.size)
        finally:
            os.close(fd)
        _LAYOUT.pack_into(self._map, 0, self.nonce, self.generation)

    def bump(self) -> int:
        """The next generation, published (callers serialise bumps)."""
        self.generation += 1
        struct.pack_into("<Q", self._map, 8, self.generation)
        return self.generation

    def close(self) -> None:
        self._map.close()


class GenerationReader:
    """A replica's side: opens the file the registry named, if it is the registry's (nonce) on this
    host (boot id); ``current()`` then reads the generation."""

    def __init__(self, path: str, nonce: int, registry_boot_id: str):
        if not registry_boot_id or registry_boot_id != boot_id():
            raise OSError("the registry runs on another host")
        fd = os.open(path, os.O_RDONLY)
        try:
            if os.fstat(fd).st_size < _LAYOUT.size:  # (mmap would raise ValueError: not a reason to stop)
                raise OSError(f"{path} is not a generation file (too short)")
            self._map = mmap.mmap(fd, _LAYOUT.size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        found, _ = _LAYOUT.unpack_from(self._map, 0)
        if found != nonce:
            self._map.close()
            raise OSError("the generation file is not the one the registry writes")

    def current(self) -> int:
        return struct.unpack_from("<Q", self._map, 8)[0]

    def close(self) -> None:
        self._map.close()
