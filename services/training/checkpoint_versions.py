"""Any checkpoint of a job as a model version (TrainingService.RegisterCheckpoint, issue 18 item 3).

A checkpoint holds the full training state (services/core/trainer/checkpoint.py); its weights are
exported to ONNX the way a completed job's model is, and registered as a new version of the job's
agent with its lineage (job, checkpoint id, step, epoch, the checkpoint's metrics).

What a checkpoint version gets that the run computes only at its end:

* classifiers (supervised, few_shot, transfer): the temperature and the out-of-scope threshold are
  fitted now, on the job's own validation split, with the checkpoint's weights, by the trainer's
  own ``calibrate`` (the same procedure as a completed job); their figures go into the version's
  metrics, and ``calibrated_at`` = "registration" into the model's metadata. A job without
  held-out examples gives temperature 1 and the configured (else no) threshold, as a completed job.
* reinforcement and GRPO runs calibrate nothing at their end either: the weights are served as they are.
* a config ``refit`` (retrain on train + validation) is never applied: a checkpoint is the first run's.

Which checkpoint (``select``): an id, a step, "best" (the one the loop rewrites whenever the value
the job selects on improves: validation loss, reinforcement's validation objective, GRPO's
evaluation success rate then average reward; a classifier's loop writes it at most every 5 s and
before any other checkpoint or the end, so a running job's "best" may trail its newest best by
that much) or "last" (most steps). The registry keeps one
version per (job, checkpoint id, step): "best" names new weights each time it improves, so the
same id at a later step is a new version, and the same id at the same step is the same version.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainhouse.core.errors import FailedPrecondition, InvalidArgument, NotFound
from trainhouse.training import peers
from trainhouse.training.store import JobStore
from trainhouse.v1 import model_version_pb2, training_service_pb2

WHICH = ("best", "last")
MAX_NOTE = 256
# The worker writes a checkpoint file before the service stores its row: reading both while the
# job runs may catch "best" between the two. Re-read this often before giving up.
CONSISTENT_READS, READ_PAUSE_S = 20, 0.25
PARITY_TOLERANCE = 1e-5
CLASSIFIER_METRICS = ("loss", "accuracy", "validation_loss", "validation_accuracy")


@dataclass
class CheckpointModel:
    """A checkpoint exported for serving: its row (as stored when it was read), the ONNX bytes and
    the version's metrics."""
    row: dict[str, Any]
    onnx_model: bytes
    metrics: dict[str, float]

    def lineage(self) -> model_version_pb2.CheckpointLineage:
        return model_version_pb2.CheckpointLineage(
            checkpoint_id=self.row["checkpoint_id"], step=int(self.row["step"] or 0),
            epoch=int(self.row["epoch"] or 0), kind=self.row["kind"] or "")


def selector(request: training_service_pb2.RegisterCheckpointRequest) -> tuple[str, Any]:
    """(field, value) of the request's checkpoint selector, validated."""
    field = request.WhichOneof("selector")
    if field is None:
        raise InvalidArgument("selector", "give one of checkpoint_id, step or which ('best' or 'last')")
    value = getattr(request, field)
    if field == "checkpoint_id" and not value.strip():
        raise InvalidArgument("checkpoint_id", "must not be empty")
    if field == "step" and value < 1:
        raise InvalidArgument("step", "must be >= 1")
    if field == "which" and value not in WHICH:
        raise InvalidArgument("which", f"must be one of {', '.join(WHICH)}")
    if len(request.note) > MAX_NOTE:
        raise InvalidArgument("note", f"at most {MAX_NOTE} characters")
    return field, value


def select(job: dict[str, Any], rows: list[dict[str, Any]], field: str, value: Any) -> dict[str, Any]:
    """The checkpoint row the selector names; NOT_FOUND when there is none."""
    if field == "checkpoint_id":
        for row in rows:
            if row["checkpoint_id"] == value:
                return row
        raise NotFound("checkpoint", value)
    # Rows that name their weights for good ("best" is rewritten) come first among equals.
    stable_first = sorted(rows, key=lambda r: (r["step"] or 0, r["kind"] != "best", r["create_time"]), reverse=True)
    if field == "step":
        for row in stable_first:
            if (row["step"] or 0) == value:
                return row
        raise NotFound("checkpoint", f"step {value}")
    if value == "best":
        for row in rows:
            if row["checkpoint_id"] == job.get("best_checkpoint_id") or row["kind"] == "best":
                return row
        started = job["state"] not in ("queued", "initializing")
        if started and job["method"] != "grpo" and not job.get("validation_examples"):
            raise FailedPrecondition(f"job {job['job_id']} validates on nothing, so it has no best checkpoint; "
                                     "register 'last' or a step", metadata={"resource": "job", "id": job["job_id"]})
        raise NotFound("checkpoint", "best")
    if not stable_first:
        raise NotFound("checkpoint", "last")
    return stable_first[0]


def export(job: dict[str, Any], job_dir: Path, store: JobStore, field: str, value: Any) -> CheckpointModel:
    """Read the selected checkpoint consistently with its row and export it."""
    for _ in range(CONSISTENT_READS):
        rows, _ = store.checkpoints(job["job_id"], 0, 100_000)
        row = select(store.get_job(job["job_id"]), rows, field, value)
        path = Path(row["path"] or "")
        if not path.exists():
            raise FailedPrecondition(f"checkpoint {row['checkpoint_id']} of job {job['job_id']} has no file any "
                                     "more; it cannot be served", metadata={"resource": "checkpoint",
                                                                            "id": row["checkpoint_id"]})
        if job["method"] == "grpo":
            exported = _policy(row, path)
        else:
            exported = _classifier(job, job_dir, row, path)
        if exported is not None:
            return exported
        time.sleep(READ_PAUSE_S)  # the file is newer than its row: the row follows
    raise FailedPrecondition(f"checkpoint {row['checkpoint_id']} is being rewritten; try again",
                             metadata={"resource": "checkpoint", "id": row["checkpoint_id"]})


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in json.loads(row["metrics_json"] or "{}").items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _policy(row: dict[str, Any], path: Path) -> CheckpointModel | None:
    """A GRPO checkpoint: the policy graph ExportPolicy gives EvaluationService, which the
    registry serves as it serves a completed GRPO job's policy."""
    from trainhouse.core.grpo.trainer import load_policy_checkpoint
    from trainhouse.core.trainer.checkpoint import load_checkpoint

    state = load_checkpoint(str(path))
    if state.global_step != (row["step"] or 0):
        return None
    return CheckpointModel(row, load_policy_checkpoint(str(path)).onnx_bytes(), _metrics(row))


def _classifier(job: dict[str, Any], job_dir: Path, row: dict[str, Any], path: Path) -> CheckpointModel | None:
    from trainhouse.core.featurizer import FeaturizerConfig
    from trainhouse.core.onnx_model import OnnxModel
    from trainhouse.core.trainer.checkpoint import load_checkpoint
    from trainhouse.core.trainer.dispatch import make_trainer
    from trainhouse.core.trainer.examples import LabelMap
    from trainhouse.core.trainer.mlp import MLP, TrainedModel
    from trainhouse.core.trainer.onnx_export import export_onnx_bytes
    from trainhouse.core.trainer.supervised_trainer import SupervisedTrainer

    state = load_checkpoint(str(path))
    if state.global_step != (row["step"] or 0):
        return None
    mlp = MLP.from_state_dict(state.params)
    if not all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in mlp.params):
        raise FailedPrecondition(f"checkpoint {row['checkpoint_id']} has non-finite weights; it cannot be served")
    metrics = _metrics(row)
    checkpoint = {"checkpoint_id": row["checkpoint_id"], "step": state.global_step, "epoch": state.epoch,
                  "kind": row["kind"]}
    model = TrainedModel(params=[(W.copy(), b.copy()) for W, b in mlp.params],
                         label_map=LabelMap.from_list(state.label_map),
                         featurizer_config=FeaturizerConfig.from_dict(state.featurizer),
                         hidden_sizes=tuple(mlp.hidden_sizes),
                         metadata={"paradigm": job["method"], "config": state.config, "checkpoint": checkpoint,
                                   "metrics": metrics})
    held_out: list[str] = []
    if job["method"] != "reinforcement":
        # The trainer as the job built it (same config and examples: the same deterministic split),
        # only for its held-out split and its calibration; nothing is trained here.
        data = json.loads((job_dir / "examples.json").read_text())
        base_file = job_dir / "base_model.onnx"
        trainer = make_trainer(job["method"], json.loads(job["config_json"])["resolved"], data["examples"],
                               data["validation_examples"] or None, None,
                               base_model_onnx=base_file.read_bytes() if base_file.exists() else None)
        if isinstance(trainer, SupervisedTrainer):
            model = trainer.calibrate(model, metrics)
            model.metadata["calibrated_at"] = "registration"
        held_out = [e.input for e in (trainer.validation_examples or trainer.train_examples)][:256]
    onnx_model = export_onnx_bytes(model)
    if held_out:  # the worker's parity check, on the same kind of inputs
        served = OnnxModel.from_bytes(onnx_model).predict_proba(held_out)
        diff = float(np.max(np.abs(model.predict_proba(held_out) - served)))
        if diff > PARITY_TOLERANCE:
            raise FailedPrecondition(f"ONNX export of checkpoint {row['checkpoint_id']} disagrees with NumPy "
                                     f"by {diff:.2e}")
        metrics["onnx_parity_max_abs_diff"] = diff
    metrics = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    return CheckpointModel(row, onnx_model, metrics)


def register(job: dict[str, Any], job_dir: Path, store: JobStore,
             request: training_service_pb2.RegisterCheckpointRequest) -> model_version_pb2.ModelVersion:
    """Select, export and register the checkpoint `request` names; the (possibly earlier) version."""
    field, value = selector(request)
    exported = export(job, job_dir, store, field, value)
    split_file = job_dir / "split.json"
    split = json.loads(split_file.read_text()) if split_file.exists() else None
    resolved = json.loads(job["config_json"])["resolved"]
    return peers.register_checkpoint(job, exported.onnx_model, exported.metrics, resolved, split,
                                     exported.lineage(), request.note)
