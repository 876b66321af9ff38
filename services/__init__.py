"""trainhouse: train, evaluate, version and deploy the small learned parts of AI agents.

The installed namespace maps the source tree's top-level folders: ``services/`` is this package
(``trainhouse.core``, ``trainhouse.training``, ...), ``gateway/`` is ``trainhouse.gateway`` and the stubs
compiled from ``protos/`` are ``trainhouse.v1`` (setup.py). For clients, ``trainhouse.Client`` and
``trainhouse.AsyncClient`` are the SDK's (``trainhouse.sdk``), imported on first use so that a server
process does not load it.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("trainhouse")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_SDK_NAMES = ("Client", "AsyncClient")


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from trainhouse import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'trainhouse' has no attribute {name!r}")
