"""Serving in protobuf: predictions, prediction records and routes, the one mapping of the
registry's Predict and serving feed and of a gateway's serving replica (docs/serving.md), so both
sides answer, record and route with the same messages."""
from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from trainhouse.core.serving import Answer, Route, Served
from trainhouse.v1 import deployment_pb2, model_registry_pb2, model_version_pb2

ARMS = {"stable": deployment_pb2.SERVING_ARM_STABLE, "candidate": deployment_pb2.SERVING_ARM_CANDIDATE,
        "pinned": deployment_pb2.SERVING_ARM_PINNED}
ARM_NAMES = {value: name for name, value in ARMS.items()}
ENVIRONMENT_ENUMS = {"production": deployment_pb2.ENVIRONMENT_PRODUCTION,
                     "staging": deployment_pb2.ENVIRONMENT_STAGING}
# Request enum -> environment name; UNSPECIFIED means production.
ENVIRONMENTS = {deployment_pb2.ENVIRONMENT_UNSPECIFIED: "production", **{v: k for k, v in ENVIRONMENT_ENUMS.items()}}


def prediction_message(answer: Answer, prediction_id: str) -> model_version_pb2.Prediction:
    return model_version_pb2.Prediction(
        output=answer.output, probability=answer.probability,
        top=[model_version_pb2.ScoredOutput(output=o, probability=p) for o, p in answer.top],
        prediction_id=prediction_id, out_of_scope=answer.out_of_scope, out_of_scope_threshold=answer.threshold)


def record_message(prediction_id: str, agent_id: str, version_id: str, deployment_id: str, arm: str,
                   environment: str, request_key: str, text: str, answer: Answer, latency_ms: float,
                   created: dt.datetime) -> model_registry_pb2.PredictionRecord:
    """A prediction a replica served, as RecordPredictions takes it (``created`` in UTC)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(created)
    return model_registry_pb2.PredictionRecord(
        prediction_id=prediction_id, agent_id=agent_id, version_id=version_id, deployment_id=deployment_id,
        arm=ARMS[arm], environment=ENVIRONMENT_ENUMS[environment], request_key=request_key, input=text,
        output=answer.output, probability=answer.probability, latency_ms=latency_ms, create_time=stamp)


def _artifact(served: Served | None) -> model_registry_pb2.ServedArtifact | None:
    if served is None:
        return None
    return model_registry_pb2.ServedArtifact(version_id=served.version_id, path=served.path, sha256=served.sha256)


def route_message(agent_id: str, owner: str, environment: str, route: Route) -> model_registry_pb2.ServingRoute:
    msg = model_registry_pb2.ServingRoute(agent_id=agent_id, account_id=owner,
                                          environment=ENVIRONMENT_ENUMS[environment],
                                          deployment_id=route.deployment_id, percentage=route.percentage,
                                          stable=_artifact(route.stable), candidate=_artifact(route.candidate))
    if route.next_due is not None:
        msg.next_due.FromDatetime(route.next_due.astimezone(dt.timezone.utc))
    return msg


def route_of(msg: model_registry_pb2.ServingRoute) -> Route:
    """A ServingRoute as the route it describes (next_due timezone-aware UTC)."""
    def served(a: model_registry_pb2.ServedArtifact) -> Served:
        return Served(msg.agent_id, a.version_id, a.path, a.sha256)
    return Route(stable=served(msg.stable) if msg.HasField("stable") else None,
                 candidate=served(msg.candidate) if msg.HasField("candidate") else None,
                 deployment_id=msg.deployment_id, percentage=msg.percentage,
                 next_due=msg.next_due.ToDatetime(tzinfo=dt.timezone.utc) if msg.HasField("next_due") else None)
