"""Predict: route a request to a version, score it with the warm session, record each prediction.

Kept free of database reads: routes and pinned versions come from memory (serving.py), the
predictions go to the write-behind log.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import numpy as np

from trainhouse.core.errors import FailedPrecondition, InvalidArgument, ServingFailure
from trainhouse.core.abstention import OUT_OF_SCOPE, abstains, in_scope_ranking
from trainhouse.common.timeutil import now
from trainhouse.registry.convert import ARMS, ENVIRONMENT_ENUMS, ENVIRONMENTS
from trainhouse.registry.deployments import Deployments
from trainhouse.registry.resolve import resolve_version
from trainhouse.registry.rollout import bucket, takes_candidate
from trainhouse.registry.serving import PredictionLog, Served, SessionCache
from trainhouse.registry.store import RegistryStore, naive
from trainhouse.registry.versioning import VERSION_RE
from trainhouse.v1 import model_registry_pb2, model_version_pb2

MAX_INPUTS = 1000
MAX_INPUT_CHARS = 100_000
MAX_KEY_CHARS = 256
MAX_TOP_K = 100


def invalid_output(probs: np.ndarray, rows: int, outputs: int) -> str | None:
    """Why a model's answer cannot be served (wrong shape, non-finite or unnormalised
    probabilities), or None."""
    if probs.shape != (rows, outputs):
        return f"invalid output: shape {tuple(probs.shape)}, expected {(rows, outputs)}"
    if not np.isfinite(probs).all():
        return "invalid output: non-finite probabilities"
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3) or (probs < -1e-6).any():
        return "invalid output: probabilities that are negative or do not sum to 1"
    return None


class Predictor:
    def __init__(self, store: RegistryStore, deployments: Deployments, sessions: SessionCache, log: PredictionLog):
        self.store = store
        self.deployments = deployments
        self.sessions = sessions
        self.log = log
        self._pinned: dict[tuple[str, str], Served] = {}
        self._lock = threading.Lock()

    def _validate(self, request: model_registry_pb2.PredictRequest) -> str:
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        if not request.inputs:
            raise InvalidArgument("inputs", "at least one input is required")
        if len(request.inputs) > MAX_INPUTS:
            raise InvalidArgument("inputs", f"at most {MAX_INPUTS} inputs per call")
        for i, text in enumerate(request.inputs):
            if len(text) > MAX_INPUT_CHARS:
                raise InvalidArgument(f"inputs[{i}]", f"at most {MAX_INPUT_CHARS} characters")
        if request.top_k < 0 or request.top_k > MAX_TOP_K:
            raise InvalidArgument("top_k", f"must be between 0 and {MAX_TOP_K}")
        if len(request.request_key) > MAX_KEY_CHARS:
            raise InvalidArgument("request_key", f"at most {MAX_KEY_CHARS} characters")
        environment = ENVIRONMENTS.get(request.environment)
        if environment is None:
            raise InvalidArgument("environment", "unknown environment")
        return environment

    def _pinned_version(self, agent_id: str, ref: str) -> Served:
        """Exact version ids are immutable and cached; aliases and "latest" are looked up each time."""
        key = (agent_id, ref)
        served = self._pinned.get(key)
        if served is not None:
            return served
        served = Served.of(resolve_version(self.store, agent_id, ref, "", field="version_id"))
        if VERSION_RE.match(ref):
            with self._lock:
                self._pinned[key] = served
        return served

    def predict(self, request: model_registry_pb2.PredictRequest,
                deadline_passed: Callable[[], bool] = lambda: False) -> model_registry_pb2.PredictResponse:
        environment = self._validate(request)
        agent_id = request.agent_id
        self.store.visible_agent(agent_id)  # before any cache: another account's agent is NOT_FOUND
        deployment_id = ""
        if request.version_id:
            served, arm = self._pinned_version(agent_id, request.version_id), "pinned"
        else:
            route = self.deployments.router.route(agent_id, environment)
            if route.next_due is not None and now() >= route.next_due:
                self.deployments.tick(route.deployment_id)  # a step or the end fell due: move first
                route = self.deployments.router.route(agent_id, environment)
            key = request.request_key or uuid.uuid4().hex
            if route.candidate is not None and (
                    route.percentage >= 100
                    or takes_candidate(bucket(agent_id, route.deployment_id, key), route.percentage)):
                served, arm = route.candidate, "candidate"
            else:
                served, arm = route.stable, "stable"
            if served is None:
                if environment == "staging":
                    raise FailedPrecondition(f"nothing is deployed to staging for agent '{agent_id}'",
                                             metadata={"resource": "agent", "id": agent_id})
                raise FailedPrecondition(f"agent '{agent_id}' has no trained version yet",
                                         metadata={"resource": "agent", "id": agent_id})
            deployment_id = route.deployment_id
        model = self.sessions.get(served.path, served.sha256, f"{agent_id}/{served.version_id}")
        texts = list(request.inputs)
        states = None
        if request.episodes:
            if len(request.episodes) != len(texts):
                raise InvalidArgument("episodes", f"give one episode per input ({len(texts)}), or none")
            states = np.stack([model.episode_state([(s.tool, s.succeeded) for s in e.steps], f"episodes[{i}].steps")
                               for i, e in enumerate(request.episodes)])
        started = time.perf_counter()
        try:
            probs = model.predict_proba(texts, states=states)
            problem = invalid_output(probs, len(texts), len(model.labels))
        except Exception as exc:  # onnxruntime refused the inputs: the version failed to serve them
            probs, problem = None, f"exception: {type(exc).__name__}: {str(exc)[:300]}"
        latency_ms = (time.perf_counter() - started) * 1000.0
        created = naive()
        key = request.request_key
        if problem is None and deadline_passed():
            problem = "timeout: the caller's deadline passed before the answer was ready"
        if problem is not None:
            # Counted against the version's arm (a canary's analysis reads them), then reported.
            self.log.append([(f"pred-{uuid.uuid4().hex[:16]}", agent_id, served.version_id, deployment_id, arm,
                              environment, key, text, None, None, latency_ms, created, problem) for text in texts])
            if arm == "candidate":  # judge the rollout now, as feedback does: a failing canary stops at once
                self.deployments.check_guard(deployment_id)
            raise ServingFailure(f"version {served.version_id} of agent '{agent_id}' failed to serve the request "
                                 f"({problem})", metadata={"resource": "version",
                                                           "id": f"{agent_id}/{served.version_id}"})
        labels = model.labels
        predictions, rows = [], []
        classifier = model.kind == "classifier"
        threshold = model.out_of_scope_threshold if classifier else 0.0
        # A classifier's ``top`` ranks catalogue outputs only (a version trained with
        # __out_of_scope__ examples has that output as a column; it shows as ``outOfScope``).
        orders = in_scope_ranking(probs, labels) if classifier else np.argsort(probs, axis=1)[:, ::-1]
        abstaining = abstains(probs, labels, threshold) if classifier else np.zeros(len(texts), dtype=bool)
        k = min(request.top_k or 3, orders.shape[1])
        for text, p, ranked, out in zip(texts, probs, orders, abstaining):
            top = [model_version_pb2.ScoredOutput(output=labels[i], probability=float(p[i])) for i in ranked[:k]]
            prediction_id = f"pred-{uuid.uuid4().hex[:16]}"
            abstains_here = bool(out)
            output = OUT_OF_SCOPE if abstains_here else top[0].output
            predictions.append(model_version_pb2.Prediction(output=output, probability=top[0].probability,
                                                            top=top, prediction_id=prediction_id,
                                                            out_of_scope=abstains_here, out_of_scope_threshold=threshold))
            rows.append((prediction_id, agent_id, served.version_id, deployment_id, arm, environment, key, text,
                         output, top[0].probability, latency_ms, created, None))
        self.log.append(rows)
        return model_registry_pb2.PredictResponse(
            predictions=predictions, version_id=served.version_id, deployment_id=deployment_id, arm=ARMS[arm],
            environment=ENVIRONMENT_ENUMS[environment])
