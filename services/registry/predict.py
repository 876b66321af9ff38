"""Predict: route a request to a version, score it with the warm session, record each prediction.

Kept free of database reads: routes and pinned versions come from memory (serving.py), the
predictions go to the write-behind log.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from trainhouse.core.errors import FailedPrecondition, InvalidArgument, ServingFailure
from trainhouse.core.serving import (MAX_INPUT_CHARS, MAX_INPUTS, MAX_KEY_CHARS, MAX_TOP_K, Served, answers,
                                     SessionCache, invalid_output, new_prediction_id)
from trainhouse.common import tracing
from trainhouse.common.predictions import ARMS, ENVIRONMENT_ENUMS, ENVIRONMENTS, prediction_message
from trainhouse.common.timeutil import now
from trainhouse.registry.deployments import Deployments
from trainhouse.registry.resolve import resolve_version
from trainhouse.registry.serving import PredictionLog, served_of
from trainhouse.registry.store import RegistryStore, naive
from trainhouse.registry.versioning import VERSION_RE
from trainhouse.v1 import model_registry_pb2


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
        served = served_of(resolve_version(self.store, agent_id, ref, "", field="version_id"))
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
            served, arm = route.pick(agent_id, request.request_key)
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
            with tracing.span("onnxruntime.run", **{"trainhouse.agent_id": agent_id,
                                                    "trainhouse.version_id": served.version_id,
                                                    "trainhouse.batch_size": len(texts)}):
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
            self.log.append([(new_prediction_id(), agent_id, served.version_id, deployment_id, arm,
                              environment, key, text, None, None, latency_ms, created, problem) for text in texts])
            if arm == "candidate":  # judge the rollout now, as feedback does: a failing canary stops at once
                self.deployments.check_guard(deployment_id)
            raise ServingFailure(f"version {served.version_id} of agent '{agent_id}' failed to serve the request "
                                 f"({problem})", metadata={"resource": "version",
                                                           "id": f"{agent_id}/{served.version_id}"})
        predictions, rows = [], []
        for text, answer in zip(texts, answers(model, probs, request.top_k)):
            prediction_id = new_prediction_id()
            predictions.append(prediction_message(answer, prediction_id))
            rows.append((prediction_id, agent_id, served.version_id, deployment_id, arm, environment, key, text,
                         answer.output, answer.probability, latency_ms, created, None))
        self.log.append(rows)
        return model_registry_pb2.PredictResponse(
            predictions=predictions, version_id=served.version_id, deployment_id=deployment_id, arm=ARMS[arm],
            environment=ENVIRONMENT_ENUMS[environment])
