"""RecordFeedback: tie a judgement to the prediction (and so the rollout arm) it is about.

One feedback record per prediction: a second one for the same prediction is ALREADY_EXISTS, so a
retrying client cannot double-count a canary's errors. Feedback naming only a version is
attributed to the rollout in progress when that version is its candidate or its baseline.
"""
from __future__ import annotations

import math
from typing import Any

from trainhouse.core.errors import AlreadyExists, InvalidArgument, NotFound
from trainhouse.registry.deployments import PRODUCTION, ROLLING, Deployments
from trainhouse.registry.resolve import resolve_version
from trainhouse.registry.serving import PredictionLog
from trainhouse.core.ids import random_id
from trainhouse.registry.store import RegistryStore, naive
from trainhouse.v1 import model_registry_pb2

MAX_TEXT = 100_000
# How long feedback waits for the record of a prediction id this registry does not know yet: a
# gateway's serving replica sends its records within ~50 ms (PredictionLog.get). An id that never
# arrives is NOT_FOUND after this long.
RECORD_WAIT_S = 0.5


class FeedbackDesk:
    def __init__(self, store: RegistryStore, log: PredictionLog, deployments: Deployments):
        self.store = store
        self.log = log
        self.deployments = deployments

    def _attribution(self, agent_id: str, version_id: str) -> tuple[str, str]:
        dep = self.store.latest_deployment(agent_id, PRODUCTION)
        if dep is None or dep["state"] not in ROLLING:
            return "", ""
        if dep["version_id"] == version_id:
            return dep["deployment_id"], "candidate"
        if dep["previous_version_id"] == version_id:
            return dep["deployment_id"], "stable"
        return "", ""

    def record(self, request: model_registry_pb2.RecordFeedbackRequest) -> tuple[dict[str, Any], dict | None]:
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        if not request.HasField("correct"):
            raise InvalidArgument("correct", "is required (true when the served output was right)")
        if request.HasField("latency_ms") and (not math.isfinite(request.latency_ms) or request.latency_ms < 0):
            raise InvalidArgument("latency_ms", "must be a finite number >= 0")
        for name in ("expected_output", "input", "served_output"):
            if len(getattr(request, name)) > MAX_TEXT:
                raise InvalidArgument(name, f"at most {MAX_TEXT} characters")
        self.store.get_agent(request.agent_id)
        server_latency = None
        if request.prediction_id:
            pred = self.log.get(request.prediction_id, wait_s=RECORD_WAIT_S)
            if pred is None or pred["agent_id"] != request.agent_id:
                raise NotFound("prediction", request.prediction_id)
            if request.version_id and request.version_id != pred["version_id"]:
                raise InvalidArgument("version_id", f"prediction {request.prediction_id} was served by "
                                                    f"{pred['version_id']}, not {request.version_id}")
            for name in ("input", "served_output"):
                if getattr(request, name):
                    raise InvalidArgument(name, "comes from the prediction record; leave it empty with prediction_id")
            existing = self.store.db.query("SELECT feedback_id FROM feedback WHERE prediction_id = ?",
                                           [request.prediction_id])
            if existing:
                raise AlreadyExists(f"feedback for prediction {request.prediction_id} is already recorded "
                                    f"({existing[0][0]})", metadata={"resource": "feedback", "id": existing[0][0]})
            version_id, deployment_id, arm = pred["version_id"], pred["deployment_id"] or "", pred["arm"] or ""
            text, served, server_latency = pred["input"], pred["output"], pred["latency_ms"]
            if arm == "pinned":
                deployment_id = ""
        elif request.version_id:
            version_id = resolve_version(self.store, request.agent_id, request.version_id, "")["version_id"]
            deployment_id, arm = self._attribution(request.agent_id, version_id)
            text, served = request.input, request.served_output
        else:
            raise InvalidArgument("prediction_id", "give the prediction_id of the answer judged (or a version_id)")
        if request.correct and request.expected_output and served and request.expected_output != served:
            raise InvalidArgument("expected_output", f"differs from the served output '{served}' although "
                                                     "correct is true")
        row = self.store.add_feedback({
            "feedback_id": random_id("fb", 16), "agent_id": request.agent_id,
            "prediction_id": request.prediction_id or None, "version_id": version_id,
            "deployment_id": deployment_id or None, "arm": arm or None, "correct": request.correct,
            "expected_output": request.expected_output or None, "input": text or None,
            "served_output": served or None,
            "latency_ms": request.latency_ms if request.HasField("latency_ms") else None,
            "server_latency_ms": server_latency, "create_time": naive()})
        rolled_back = None
        if deployment_id and arm == "candidate":
            rolled_back = self.deployments.check_guard(deployment_id)
        return row, rolled_back
