"""Typed answers of the canonical API (snake_case, as docs/api.md documents them).

Models allow unknown fields, so a newer gateway that adds a field never breaks an older SDK.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def get(self, name: str, default: Any = None) -> Any:
        """A field, or a field this model does not declare (an event's payload), by name."""
        extra = self.__pydantic_extra__ or {}
        if name in extra:
            return extra[name]
        return getattr(self, name) if name in type(self).model_fields else default


class Job(Model):
    job_id: str
    agent_id: str
    state: str
    status_reason: str | None = None
    error: str | None = None
    percent_complete: float = 0.0
    current_epoch: int = 0
    total_epochs: int = 0
    current_step: int = 0
    total_steps: int = 0
    metrics: dict[str, float | None] = {}  # null: not computable (NaN)
    model_version_id: str | None = None
    best_checkpoint_id: str | None = None
    dataset_id: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    labels: dict[str, str] = {}
    config: dict[str, Any] | None = None  # the resolved TrainingConfig
    last_sequence: int = 0  # the newest event's sequence when this record was read: follow events after it

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")


class JobAction(Model):
    job: Job
    checkpoint_saved: bool | None = None
    checkpoint_id: str | None = None


class Event(Model):
    """A job event; the payload's fields sit next to ``type`` (``event.get("loss")``...)."""

    sequence: int
    job_id: str
    type: str
    time: str | None = None
    agent_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """The job's last event (its final status)."""
        return self.type == "status" and bool(self.get("terminal"))


class Checkpoint(Model):
    checkpoint_id: str
    job_id: str
    epoch: int
    step: int
    metrics: dict[str, float | None] = {}  # null: not computable (NaN)
    best: bool = False
    kind: str = ""


class MetricPoint(Model):
    name: str
    value: float
    epoch: int
    step: int
    time: str | None = None


class Agent(Model):
    agent_id: str
    name: str = ""
    description: str = ""
    active_version_id: str | None = None
    version_count: int = 0


class Version(Model):
    version_id: str
    agent_id: str
    state: str
    serving: str | None = None
    aliases: list[str] = []
    tags: dict[str, str] = {}
    metrics: dict[str, float | None] = {}  # null: not computable (NaN)
    job_id: str | None = None
    size_bytes: int = 0
    sha256: str = ""


class Alias(Model):
    alias: str
    version_id: str


class AliasSet(Model):
    version: Version
    previous_version_id: str | None = None


class Deployment(Model):
    deployment_id: str
    agent_id: str
    version_id: str
    environment: str
    state: str
    strategy: str
    current_percentage: float = 0.0


class Evaluation(Model):
    evaluation_id: str
    agent_id: str
    metrics: dict[str, float | None] = {}  # null: not computable (NaN)


class Dataset(Model):
    dataset_id: str
    example_count: int = 0
    statistics: dict[str, Any] = {}


class Operation(Model):
    operation_id: str
    kind: str
    state: str
    done: bool
    resource_id: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Webhook(Model):
    webhook_id: str
    url: str
    events: list[str] = []


class Token(Model):
    token_id: str
    name: str
    scopes: list[str] = []


class Resource(Model):
    """An answer without a dedicated model (predictions, reports, benchmark runs...)."""


class Page(Model, Generic[T]):
    data: list[Any]
    has_more: bool
    next_cursor: str | None = None
