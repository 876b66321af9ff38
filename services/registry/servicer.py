"""ModelRegistry RPCs: validate, call the store or the session cache, build the response."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.pagination import decode_page_token, next_token, page_size
from services.common.timeutil import to_timestamp
from services.registry.serving import SessionCache
from services.registry.store import RegistryStore, loads
from services.common.validation import resource_id
from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc, model_version_pb2

VERSION_STATES = {
    "registered": model_version_pb2.VERSION_STATE_REGISTERED,
    "staging": model_version_pb2.VERSION_STATE_STAGING,
    "deployed": model_version_pb2.VERSION_STATE_DEPLOYED,
    "archived": model_version_pb2.VERSION_STATE_ARCHIVED,
    "rolled-back": model_version_pb2.VERSION_STATE_ROLLED_BACK,
}
STATE_NAMES = {v: k for k, v in VERSION_STATES.items()}
ORDER_COLUMNS = {"create_time": "create_time", "version_id": "ordinal"}
MAX_INPUTS = 1000
MAX_INPUT_CHARS = 100_000


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def agent_proto(row: dict[str, Any]) -> model_version_pb2.Agent:
    return model_version_pb2.Agent(
        agent_id=row["agent_id"], name=row["name"] or "", description=row["description"] or "",
        active_version_id=row["active_version_id"] or "", version_count=row.get("version_count") or 0,
        create_time=to_timestamp(_utc(row["create_time"])), update_time=to_timestamp(_utc(row["update_time"])))


def version_proto(row: dict[str, Any]) -> model_version_pb2.ModelVersion:
    config = struct_pb2.Struct()
    config.update(loads(row["config_json"], {}))
    featurizer = struct_pb2.Struct()
    featurizer.update(loads(row["featurizer_json"], {}))
    return model_version_pb2.ModelVersion(
        version_id=row["version_id"], agent_id=row["agent_id"], state=VERSION_STATES[row["state"]],
        metrics=loads(row["metrics_json"], {}), training_config=config, job_id=row["job_id"] or "",
        dataset_id=row["dataset_id"] or "", parent_version_id=row["parent_version_id"] or "",
        method=row["method"] or "", labels=loads(row["labels_json"], []), size_bytes=row["size_bytes"] or 0,
        sha256=row["sha256"] or "", create_time=to_timestamp(_utc(row["create_time"])), featurizer=featurizer)


class RegistryServicer(model_registry_pb2_grpc.ModelRegistryServicer):
    def __init__(self, store: RegistryStore, sessions: SessionCache, artifact_dir: Path):
        self.store = store
        self.sessions = sessions
        self.artifact_dir = artifact_dir

    def CreateAgent(self, request, context):
        agent_id = resource_id(request.agent_id, "agent_id")
        if len(request.name) > 256:
            raise InvalidArgument("name", "at most 256 characters")
        row = self.store.create_agent(agent_id, request.name or agent_id, request.description)
        return model_registry_pb2.CreateAgentResponse(agent=agent_proto(row))

    def GetAgent(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        return model_registry_pb2.GetAgentResponse(agent=agent_proto(self.store.get_agent(request.agent_id)))

    def ListAgents(self, request, context):
        offset = decode_page_token(request.page_token)
        rows, total = self.store.list_agents(offset, page_size(request.page_size, 50, 1000))
        return model_registry_pb2.ListAgentsResponse(
            agents=[agent_proto(r) for r in rows], next_page_token=next_token(offset, len(rows), total),
            total_size=total)

    def RegisterVersion(self, request, context):
        self.store.get_agent(request.agent_id)
        if not request.onnx_model:
            raise InvalidArgument("onnx_model", "is required")
        if request.job_id:
            existing = self.store.version_for_job(request.agent_id, request.job_id)
            if existing is not None:  # a retried registration returns the first one
                return model_registry_pb2.RegisterVersionResponse(version=version_proto(existing))
        try:
            model = onnx.load_from_string(request.onnx_model)
            onnx.checker.check_model(model)
        except Exception as exc:
            raise InvalidArgument("onnx_model", f"not a valid ONNX model: {exc}") from None
        meta = {p.key: p.value for p in model.metadata_props}
        labels = json.loads(meta.get("labels", "[]"))
        featurizer = json.loads(meta.get("featurizer", "{}"))
        if not labels:
            raise InvalidArgument("onnx_model", "metadata has no 'labels' (the output catalog)")
        digest = hashlib.sha256(request.onnx_model).hexdigest()
        path = self.artifact_dir / request.agent_id / f"{digest}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(request.onnx_model)
        tmp.replace(path)
        row = self.store.add_version({
            "agent_id": request.agent_id, "metrics_json": json.dumps(dict(request.metrics)),
            "config_json": json.dumps(MessageToDict(request.training_config)), "job_id": request.job_id,
            "dataset_id": request.dataset_id, "parent_version_id": request.parent_version_id,
            "method": request.method, "labels_json": json.dumps(labels), "featurizer_json": json.dumps(featurizer),
            "size_bytes": len(request.onnx_model), "sha256": digest, "path": str(path)})
        return model_registry_pb2.RegisterVersionResponse(version=version_proto(row))

    def ListVersions(self, request, context):
        self.store.get_agent(request.agent_id)
        offset = decode_page_token(request.page_token)
        size = page_size(request.page_size, 20, 100)
        order = (request.order_by or "create_time desc").strip().lower().split()
        if not order or order[0] not in ORDER_COLUMNS or (len(order) > 1 and order[1] not in ("asc", "desc")):
            raise InvalidArgument("order_by", "must be 'create_time|version_id [asc|desc]'")
        descending = len(order) == 1 or order[1] == "desc"
        state = STATE_NAMES.get(request.state, "") if request.state else ""
        rows, total = self.store.list_versions(request.agent_id, state, ORDER_COLUMNS[order[0]], descending,
                                               offset, size)
        return model_registry_pb2.ListVersionsResponse(
            versions=[version_proto(r) for r in rows], next_page_token=next_token(offset, len(rows), total),
            total_size=total)

    def GetVersion(self, request, context):
        return model_registry_pb2.GetVersionResponse(
            version=version_proto(self.store.get_version(request.agent_id, request.version_id)))

    def _serving_version(self, agent_id: str, version_id: str) -> dict[str, Any]:
        agent = self.store.get_agent(agent_id)
        if version_id:
            return self.store.get_version(agent_id, version_id)
        if agent["active_version_id"]:
            return self.store.get_version(agent_id, agent["active_version_id"])
        newest = self.store.newest_version(agent_id)
        if newest is None:
            raise FailedPrecondition(f"agent '{agent_id}' has no trained version yet",
                                     metadata={"resource": "agent", "id": agent_id})
        return newest

    def Predict(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        if not request.inputs:
            raise InvalidArgument("inputs", "at least one input is required")
        if len(request.inputs) > MAX_INPUTS:
            raise InvalidArgument("inputs", f"at most {MAX_INPUTS} inputs per call")
        for i, text in enumerate(request.inputs):
            if len(text) > MAX_INPUT_CHARS:
                raise InvalidArgument(f"inputs[{i}]", f"at most {MAX_INPUT_CHARS} characters")
        if request.top_k < 0:
            raise InvalidArgument("top_k", "must be >= 0")
        row = self._serving_version(request.agent_id, request.version_id)
        model = self.sessions.get(f"{row['agent_id']}/{row['version_id']}", row["path"])
        probs = model.predict_proba(list(request.inputs))
        labels = model.labels
        k = min(request.top_k or 3, len(labels))
        predictions = []
        for p in probs:
            order = p.argsort()[::-1][:k]
            top = [model_version_pb2.ScoredOutput(output=labels[i], probability=float(p[i])) for i in order]
            predictions.append(model_version_pb2.Prediction(output=top[0].output, probability=top[0].probability,
                                                            top=top))
        return model_registry_pb2.PredictResponse(predictions=predictions, version_id=row["version_id"])
