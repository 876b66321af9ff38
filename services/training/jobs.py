"""Starting a job and reading the examples it trains on.

One path for every caller that starts a job — StartJob, AdaptAgent and auto-training (which runs
inside this process and so starts its jobs here, not over gRPC) — and one reader of a job's
examples for ListJobExamples and auto-training's replay.

A job's folder holds ``examples.json`` (what it was started with) and, once the worker split
them, ``split.json`` (the train / validation split it really used).
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from trainhouse.common import identity
from trainhouse.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from trainhouse.training import peers
from trainhouse.training.events import EventHub
from trainhouse.training.requests import check_references, module_source, parse_start_request
from trainhouse.training.runner import JobRunner
from trainhouse.training.store import JobStore
from trainhouse.v1 import training_service_pb2

SPLITS = ("all", "train", "validation")


def job_account(requested: str, agent_id: str) -> str:
    """The account a job started by the current caller belongs to: its own. Admin (and the service's
    own work, which runs as SYSTEM) may name another, and otherwise trains an existing agent for the
    agent's account, so a job is always its agent's account's. A non-admin naming another account is
    refused, so jobs cannot be started under made-up accounts (bypassing the per-account cap)."""
    caller = identity.current()
    if requested and not caller.is_admin and requested != caller.account:
        raise PermissionDenied("account_id must be your own account", field="account_id")
    if not caller.is_admin or not agent_id:
        return caller.owner_for(requested)
    owner = peers.agent_account(agent_id)
    if owner is None:
        return caller.owner_for(requested)
    if requested and requested != owner:
        raise InvalidArgument("account_id", f"agent '{agent_id}' belongs to account '{owner}'; a job of account "
                                            f"'{requested}' cannot train it (leave account_id empty)")
    return owner


def visible_job(store: JobStore, job_id: str) -> dict[str, Any]:
    """The job as the current caller sees it: NOT_FOUND for another account's job, exactly as for a
    job that does not exist (admin sees every account's)."""
    if not job_id:
        raise InvalidArgument("job_id", "is required")
    return store.get_job(job_id, identity.current().account_filter)


class Jobs:
    def __init__(self, store: JobStore, hub: EventHub, runner: JobRunner):
        self.store = store
        self.hub = hub
        self.runner = runner

    def start(self, request: training_service_pb2.StartJobRequest) -> str:
        """Validate, record the job as queued and wake the runner; the new job's id."""
        account = job_account(request.account_id, request.agent_id)
        check_references(request)
        dataset_examples, dataset_id = None, request.dataset_id
        module = module_source(request)
        if module is not None:
            dataset_id, dataset_examples = peers.module_dataset(*module)
        elif not request.examples and request.dataset_id:
            dataset_id, dataset_examples = peers.fetch_dataset(request.dataset_id)
        spec = parse_start_request(request, dataset_examples)
        peers.ensure_agent(spec.agent_id, account)  # a new agent is the job's account's
        base = self._base_model(spec)
        job_id = f"job-{uuid.uuid4()}"
        job_dir = self.runner.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "examples.json").write_text(json.dumps(spec.data))
        base_version_id = spec.base_version_id
        if base is not None:
            base_version_id, onnx_bytes = base
            (job_dir / "base_model.onnx").write_bytes(onnx_bytes)
        self.store.create_job({
            "job_id": job_id, "agent_id": spec.agent_id, "account_id": account,
            "display_name": spec.display_name, "method": spec.method, "state": "queued",
            # Only the resolved config is kept: the worker, GetJob and the registry all read it;
            # beside it, the promotion the registration asks for (if any).
            "config_json": json.dumps({"resolved": spec.resolved_config(),
                                       **({"promotion": spec.promotion.to_dict()} if spec.promotion else {}),
                                       **({"labels": spec.labels} if spec.labels else {})}),
            "dataset_id": dataset_id, "base_version_id": base_version_id,
            "example_count": spec.example_count, "budget_usd": spec.budget_usd,
            "train_examples": 0, "validation_examples": 0, "total_epochs": spec.total_epochs,
            **spec.planned,
        })
        self.hub.status(job_id, "queued", message="waiting for a free slot")
        self.runner.kick()
        return job_id

    @staticmethod
    def _base_model(spec) -> tuple[str, bytes] | None:
        """transfer starts from a version (named, else the one served); reinforcement adapts the
        served version when there is one, else learns from scratch."""
        if spec.method not in ("transfer", "reinforcement"):
            if spec.base_version_id:
                raise InvalidArgument("base_version_id", f"only transfer and reinforcement start from a version, "
                                      f"not {spec.method}")
            return None
        base = peers.fetch_base_model(spec.agent_id, spec.base_version_id)
        if base is None and spec.method == "transfer":
            raise FailedPrecondition(f"agent '{spec.agent_id}' has no trained version to transfer from; "
                                     "train it (supervised or few_shot) first or name base_version_id",
                                     metadata={"resource": "agent", "id": spec.agent_id})
        return base

    def examples(self, job_id: str, split: str) -> list[dict[str, Any]]:
        """The labelled examples a job trained on ("train"), was validated on ("validation") or both
        ("all"): the split it used once it started, else what it was started with. A job whose model was
        refit on train + validation (config ``refit``) held nothing out: "train" is every example and
        "validation" is empty, so evaluations and comparisons do not score it on examples it trained on."""
        job = self.store.get_job(job_id)
        if job["method"] in ("grpo", "reinforcement"):
            raise FailedPrecondition("grpo and reinforcement jobs learn from queries / rated feedback, "
                                     "not labelled examples")
        if split not in SPLITS:
            raise InvalidArgument("split", f"must be one of {', '.join(SPLITS)}")
        job_dir = self.runner.job_dir(job_id)
        split_file = job_dir / "split.json"
        if split_file.exists():
            data = json.loads(split_file.read_text())
        else:  # not started yet: only the submitted examples are known
            raw = json.loads((job_dir / "examples.json").read_text())
            data = {"train": raw["examples"], "validation": raw["validation_examples"]}
            if split != "all" and not raw["validation_examples"]:
                raise FailedPrecondition("the job has not split its examples yet; ask for split 'all'")
        if split_file.exists() and json.loads(job.get("config_json") or "{}").get("resolved", {}).get("refit"):
            # A refit model trained on its validation split too (config refit): nothing is held out.
            data = {"train": data["train"] + data["validation"], "validation": []}
        return data["train"] + data["validation"] if split == "all" else data[split]
