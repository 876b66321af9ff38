"""Naming a version: `model_id` ("<agent>@<version>") or agent + version id, alias ("champion" or
"@champion") or "latest"."""
from __future__ import annotations

import re
from typing import Any

from trainhouse.core.errors import InvalidArgument, NotFound
from trainhouse.registry.store import RegistryStore
from trainhouse.registry.versioning import VERSION_RE

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST = "latest"


def split_model_id(agent_id: str, version_id: str, model_id: str) -> tuple[str, str]:
    if model_id:
        agent, sep, version = model_id.partition("@")
        if not sep or not agent or not version:
            raise InvalidArgument("model_id", "must look like '<agentId>@<versionId>'")
        if agent_id and agent_id != agent:
            raise InvalidArgument("model_id", f"names agent '{agent}' but agent_id is '{agent_id}'")
        if version_id and version_id != version:
            raise InvalidArgument("model_id", f"names version '{version}' but version_id is '{version_id}'")
        return agent, version
    if not agent_id:
        raise InvalidArgument("agent_id", "is required (or give model_id)")
    if not version_id:
        raise InvalidArgument("version_id", "is required (or give model_id)")
    return agent_id, version_id


def resolve_version(store: RegistryStore, agent_id: str, version_id: str, model_id: str,
                    field: str = "version_id") -> dict[str, Any]:
    """The version row a request names; NOT_FOUND for an unknown agent, version or alias."""
    agent_id, ref = split_model_id(agent_id, version_id, model_id)
    store.get_agent(agent_id)
    if ref.startswith("@"):  # "@champion": explicitly an alias, never a version id
        alias = ref[1:]
        if not ALIAS_RE.match(alias) or alias == LATEST:
            raise InvalidArgument(field, "'@' must be followed by an alias ([a-z][a-z0-9_-]{0,63})")
        target = store.alias_target(agent_id, alias)
        if target is None:
            raise NotFound("version", f"{agent_id}/{ref}", f"agent '{agent_id}' has no alias '{alias}'")
        return store.get_version(agent_id, target)
    if ref == LATEST:
        row = store.newest_version(agent_id)
        if row is None:
            raise NotFound("version", f"{agent_id}/{LATEST}", f"agent '{agent_id}' has no versions yet")
        return row
    if VERSION_RE.match(ref):
        return store.get_version(agent_id, ref)
    if not ALIAS_RE.match(ref):
        raise InvalidArgument(field, "must be a version id like 'v1.2.0', an alias ('champion' or '@champion'), "
                                     "or 'latest'")
    target = store.alias_target(agent_id, ref)
    if target is None:
        raise NotFound("version", f"{agent_id}/{ref}", f"agent '{agent_id}' has no version or alias '{ref}'")
    return store.get_version(agent_id, target)


def check_alias(alias: str) -> str:
    if not ALIAS_RE.match(alias or ""):
        raise InvalidArgument("alias", "must match [a-z][a-z0-9_-]{0,63}")
    if alias == LATEST:
        raise InvalidArgument("alias", "'latest' is reserved (it always names the newest version)")
    return alias
