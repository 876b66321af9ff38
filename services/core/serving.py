"""What serving a request means, in one place for every process that serves one.

The registry's Predict and a gateway's serving replica (docs/serving.md) both route a request and
shape its answer; they must agree to the bit, or a request key would land on different sides of
a canary depending on which process answered. So the pieces live here: the route of an
environment and the traffic split (``Route.pick``), the verified ONNX session cache, the check of
a model's output, and the ranking of an answer. No transport, no storage.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from trainhouse.core.abstention import OUT_OF_SCOPE, abstains, in_scope_ranking
from trainhouse.core.errors import FailedPrecondition
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.ids import random_id

# Traffic buckets: a request key hashes to one of 10 000, so shares have 0.01 % resolution.
BUCKETS = 10_000
MAX_INPUTS = 1000
MAX_INPUT_CHARS = 100_000
MAX_KEY_CHARS = 256
MAX_TOP_K = 100
DEFAULT_TOP_K = 3


def bucket(agent_id: str, deployment_id: str, request_key: str) -> int:
    """Stable traffic bucket in [0, BUCKETS) of a request key within one deployment.

    Salted with the deployment so each rollout picks a different set of users; within a rollout
    a key keeps its bucket, and as the share grows the candidate's buckets only grow, so a user
    never flips back to the old version during a rollout.
    """
    digest = hashlib.sha256(f"{agent_id}\x00{deployment_id}\x00{request_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def takes_candidate(bucket_value: int, percentage: float) -> bool:
    return bucket_value < round(percentage * BUCKETS / 100)


@dataclass(frozen=True)
class Served:
    """A version ready to serve: what Predict needs, and nothing that can change."""

    agent_id: str
    version_id: str
    path: str
    sha256: str


@dataclass(frozen=True)
class Route:
    """An environment's serving state: `stable` serves unless the request key's bucket falls in
    the candidate's `percentage` of a rollout."""

    stable: Served | None
    candidate: Served | None = None
    deployment_id: str = ""
    percentage: float = 0.0
    # When the rollout next needs a look (a step or its end falls due); None outside rollouts.
    next_due: dt.datetime | None = None

    def pick(self, agent_id: str, request_key: str) -> tuple[Served | None, str]:
        """(version, arm) for a request: the candidate when the key's bucket falls in its share
        (a random key when the request has none), else the stable version."""
        if self.candidate is not None and (
                self.percentage >= 100
                or takes_candidate(bucket(agent_id, self.deployment_id, request_key or uuid.uuid4().hex),
                                   self.percentage)):
            return self.candidate, "candidate"
        return self.stable, "stable"


class SessionCache:
    """Warm ONNX Runtime sessions, keyed by artifact sha256; a file is checked against its
    recorded sha256 when loaded, so a served model is always the registered one."""

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._models: OrderedDict[str, OnnxModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str, sha256: str, label: str = "") -> OnnxModel:
        """The warm session for an artifact; loads and verifies it on first use."""
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
                return model
        model = self._load(path, sha256, label)  # loaded outside the lock: other versions keep serving
        with self._lock:
            self._models[sha256] = model
            self._models.move_to_end(sha256)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model

    @classmethod
    def _load(cls, path: str, sha256: str, label: str) -> OnnxModel:
        return OnnxModel.from_bytes(cls.read_verified(path, sha256, label))

    @staticmethod
    def read_verified(path: str, sha256: str, label: str) -> bytes:
        """The artifact's bytes, refused unless they still hash to the registered sha256."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FailedPrecondition(f"artifact of {label or path} cannot be read: {exc.strerror}",
                                     metadata={"artifact": path}) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise FailedPrecondition(
                f"artifact of {label or path} failed its integrity check (sha256 {actual[:12]}..., "
                f"registered {sha256[:12]}...); it will not be served", metadata={"artifact": path})
        return data

    def warm(self, sha256: str) -> OnnxModel | None:
        """The session when it is loaded (a request on the event loop must not load one)."""
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
            return model


def invalid_output(probs: np.ndarray, rows: int, outputs: int) -> str | None:
    """Why a model's answer cannot be served (wrong shape, non-finite or unnormalised
    probabilities), or None."""
    if probs.shape != (rows, outputs):
        return f"invalid output: shape {tuple(probs.shape)}, expected {(rows, outputs)}"
    if not np.isfinite(probs).all():
        return "invalid output: non-finite probabilities"
    # |sum - 1| <= 1e-3 + 1e-5, as np.allclose(sums, 1.0, atol=1e-3) decides, at a tenth of its cost
    # (it runs on every served request; the values are finite here).
    if float(np.abs(probs.sum(axis=1) - 1.0).max()) > 1e-3 + 1e-5 or (probs < -1e-6).any():
        return "invalid output: probabilities that are negative or do not sum to 1"
    return None


@dataclass(frozen=True)
class Answer:
    """One input's answer: the served output (``OUT_OF_SCOPE`` when the classifier abstains), the
    probability of the best catalogue output, and the ``top`` outputs with their probabilities."""

    output: str
    probability: float
    top: list[tuple[str, float]]
    out_of_scope: bool
    threshold: float


def answers(model: OnnxModel, probs: np.ndarray, top_k: int) -> list[Answer]:
    """Rank a model's probabilities into answers. A classifier's ``top`` ranks catalogue outputs
    only (a version trained with __out_of_scope__ examples has that output as a column; it shows as
    ``out_of_scope``); a row abstains below the version's threshold."""
    labels: Sequence[str] = model.labels
    classifier = model.kind == "classifier"
    threshold = model.out_of_scope_threshold if classifier else 0.0
    orders = in_scope_ranking(probs, labels) if classifier else np.argsort(probs, axis=1)[:, ::-1]
    abstaining = abstains(probs, labels, threshold) if classifier else np.zeros(len(probs), dtype=bool)
    k = min(top_k or DEFAULT_TOP_K, orders.shape[1])
    out = []
    for p, ranked, abstain in zip(probs, orders, abstaining):
        top = [(labels[i], float(p[i])) for i in ranked[:k]]
        out.append(Answer(OUT_OF_SCOPE if abstain else top[0][0], top[0][1], top, bool(abstain), threshold))
    return out


def new_prediction_id() -> str:
    return random_id("pred")
