"""The semantic version rule: how a new version's id follows from the agent's newest version.

A version's "interface" is its output catalog: clients branch on the outputs it can give. So

- MAJOR when the new catalog lacks an output the newest version has (a client may depend on it);
- PATCH when the new version is a transfer from the newest version with the same catalog (a
  correction of the same model, e.g. auto-training on feedback);
- MINOR otherwise (a new training run, or outputs added).

Every bump starts from the agent's newest version, so ids increase strictly per agent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Bump:
    major: int
    minor: int
    patch: int
    reason: str

    @property
    def version_id(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


def parse_version(version_id: str) -> tuple[int, int, int] | None:
    m = VERSION_RE.match(version_id or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def next_version(newest_id: str | None, newest_labels: Sequence[str], labels: Sequence[str], method: str,
                 parent_version_id: str) -> Bump:
    """The id of a version with catalog ``labels`` registered after ``newest_id`` (None: first)."""
    if not newest_id:
        return Bump(1, 0, 0, "first version")
    parsed = parse_version(newest_id)
    if parsed is None:  # an id written by hand outside the rule: continue after it conservatively
        parsed = (1, 0, 0)
    major, minor, patch = parsed
    removed = sorted(set(newest_labels) - set(labels))
    if removed:
        shown = ", ".join(removed[:5]) + (" ..." if len(removed) > 5 else "")
        return Bump(major + 1, 0, 0, f"major: outputs removed since {newest_id}: {shown}")
    added = [x for x in labels if x not in set(newest_labels)]
    if not added and method == "transfer" and parent_version_id == newest_id:
        return Bump(major, minor, patch + 1, f"patch: transfer from {newest_id} with the same catalog")
    if added:
        shown = ", ".join(added[:5]) + (" ..." if len(added) > 5 else "")
        return Bump(major, minor + 1, 0, f"minor: outputs added since {newest_id}: {shown}")
    return Bump(major, minor + 1, 0, f"minor: new training run after {newest_id}")
