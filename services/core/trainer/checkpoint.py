"""Full training state in one ``.npz`` file, written atomically.

Everything a run needs to continue *bit-identically* is saved: parameters, optimizer moments,
scheduler step, epoch/step counters, the NumPy Generator's bit-generator state, the current
epoch's data permutation and position in it, early-stopping bookkeeping (best loss and weights,
counter), running epoch sums, history, label map, featurizer and training config.

Arrays are stored as NumPy arrays (exact bits); everything else as one JSON document in the
``__meta__`` entry (a uint8 array), so loading never needs pickle. The file is written to a
temporary name in the same directory, fsynced, then ``os.replace``d: a crash mid-write leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

FORMAT = "trainhouse.checkpoint/1"


@dataclass
class TrainingState:
    params: dict[str, Any]                 # MLP.state_dict()
    optimizer: dict[str, Any]              # Optimizer.state_dict()
    scheduler: dict[str, Any]              # LRScheduler.state_dict()
    rng_state: dict[str, Any]              # Generator.bit_generator.state
    epoch: int                             # completed epochs
    global_step: int                       # completed optimizer steps
    order: np.ndarray | None               # permutation of the current epoch (None between epochs)
    position: int                          # batches of `order` already trained
    label_map: list[str]
    featurizer: dict[str, Any]
    config: dict[str, Any]
    best_val_loss: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    best_params: dict[str, Any] | None = None
    bad_evals: int = 0                     # validations since the last improvement
    stopped_early: bool = False
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_accum: dict[str, float] = field(default_factory=dict)
    last_validation: dict[str, Any] | None = None
    elapsed_s: float = 0.0
    data_fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            raise ValueError("reserved key '__ndarray__' in checkpoint data")
        return {str(k): _encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return np.array(arrays[obj["__ndarray__"]])
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def save_checkpoint(path: str, state: TrainingState) -> int:
    """Write ``state`` to ``path`` atomically; returns the file size in bytes."""
    arrays: dict[str, np.ndarray] = {}
    tree = {f.name: _encode(getattr(state, f.name), arrays) for f in fields(state)}
    meta = json.dumps({"format": FORMAT, "state": tree}, allow_nan=True).encode("utf-8")
    arrays["__meta__"] = np.frombuffer(meta, dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return os.path.getsize(path)


def load_checkpoint(path: str) -> TrainingState:
    """Read a checkpoint written by ``save_checkpoint`` (no pickle involved)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a trainhouse checkpoint (format {meta.get('format')!r})")
        tree = _decode(meta["state"], data)
    known = {f.name for f in fields(TrainingState)}
    return TrainingState(**{k: v for k, v in tree.items() if k in known})
