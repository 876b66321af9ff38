"""The canonical REST API under /v1: one resource-oriented surface over every user-facing RPC.

Laid out by resource (jobs, events, agents, versions, deployments, evaluations, datasets,
trajectories, sweeps, tokens/webhooks). Conventions (common.py): snake_case fields named as in the
protos, one error shape, keyset pages, ``Idempotency-Key`` on creates (idempotency.py), long calls
as operations (operations.py). docs/api.md is the user's guide to it.
"""
from __future__ import annotations

from trainhouse.gateway.canonical import admin, agents, datasets, deployments, evaluations, events, jobs, sweeps, trajectories
from trainhouse.gateway.canonical import versions
from trainhouse.gateway.canonical.common import PREFIX, SURFACE

# Order matters where paths overlap: /v1/agents/stats before /v1/agents/{agent_id}, and
# /v1/trajectories/count|export before /v1/trajectories/{trajectory_id} (both within their router).
ROUTERS = [jobs.jobs, events.events, agents.agents, versions.versions, deployments.deployments,
           deployments.rollbacks, evaluations.evaluations, evaluations.analyses, evaluations.job_evaluations,
           evaluations.benchmarks, evaluations.comparisons, evaluations.reports, evaluations.operations,
           datasets.datasets, datasets.modules, datasets.scenarios, trajectories.trajectories, sweeps.sweeps,
           admin.tokens, admin.webhooks]

__all__ = ["PREFIX", "ROUTERS", "SURFACE"]
