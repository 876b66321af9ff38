"""ModelRegistry RPCs: validate at the edge, call the core, build the response."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.json_format import MessageToDict

from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.promotion import Policy
from trainhouse.core.serving import SessionCache
from trainhouse.common.pagination import page_request
from trainhouse.common.predictions import ARM_NAMES, ENVIRONMENTS
from trainhouse.common.validation import resource_id
from trainhouse.common.example_codec import example_dicts
from trainhouse.common.timeutil import now as wall_clock
from trainhouse.registry import convert, gate, ollama
from trainhouse.registry.deployments import PRODUCTION, Deployments
from trainhouse.registry.feedback import FeedbackDesk
from trainhouse.registry.predict import Predictor
from trainhouse.registry.replicas import ServingFeed
from trainhouse.registry.resolve import check_alias, resolve_version
from trainhouse.registry.rollout import GuardPolicy, RolloutPlan, parse_duration_text, resolve_guard, resolve_plan
from trainhouse.registry.serving import PredictionLog
from trainhouse.core.ids import random_id
from trainhouse.registry.store import RegistryStore, loads, naive, version_order
from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

ORDER_KEYS = {"create_time", "version_id"}
MAX_ACTOR = 256
MAX_RECORDS = 10_000  # predictions per RecordPredictions call
MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS = 64, 256, 50
MAX_HOLDOUT, MAX_DEMONSTRATIONS = 5000, 2000


def _actor(value: str) -> str:
    if len(value) > MAX_ACTOR:
        raise InvalidArgument("actor", f"at most {MAX_ACTOR} characters")
    return value


def _checkpoint_columns(checkpoint: Any) -> dict[str, Any]:
    """A checkpoint version's lineage columns (none for a job's final model)."""
    if checkpoint is None:
        return {}
    return {"checkpoint_id": checkpoint.checkpoint_id, "checkpoint_step": checkpoint.step,
            "checkpoint_epoch": checkpoint.epoch, "checkpoint_kind": checkpoint.kind}


def _order(order_by: str) -> tuple[str, bool]:
    """("create_time" | "version_id" | "metrics.<name>", descending)."""
    parts = (order_by or "create_time desc").strip().split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise InvalidArgument("order_by", "must be '<key> [asc|desc]' with key create_time, version_id or "
                                          "metrics.<name>")
    key = parts[0]
    if key not in ORDER_KEYS:
        name = key.removeprefix("metrics.")
        if not name or len(name) > 128:
            raise InvalidArgument("order_by", "names an empty or overlong metric")
        key = f"metrics.{name}"
    return key, len(parts) == 1 or parts[1].lower() == "desc"


class RegistryServicer(model_registry_pb2_grpc.ModelRegistryServicer):
    def __init__(self, store: RegistryStore, sessions: SessionCache, artifact_dir: Path, log: PredictionLog,
                 deployments: Deployments, feed: ServingFeed | None = None):
        self.feed = feed
        self.store = store
        self.sessions = sessions
        self.artifact_dir = artifact_dir
        self.log = log
        self.deployments = deployments
        self.predictor = Predictor(store, deployments, sessions, log)
        self.feedback = FeedbackDesk(store, log, deployments)

    # ---- helpers -----------------------------------------------------------------------------
    def _version(self, row: dict[str, Any], routes: dict[str, Any] | None = None,
                 aliases: dict[tuple[str, str], list[str]] | None = None):
        if aliases is None:
            aliases = self.store.aliases_of([row["agent_id"]])
        status = self.deployments.serving_status(row, routes)
        return convert.version_proto(row, aliases.get((row["agent_id"], row["version_id"]), []),
                                     status[0] == "serving", status)

    def _deployment(self, row: dict[str, Any]):
        self.log.flush()
        counts = self.store.count_predictions(row["deployment_id"])
        candidate = convert.arm_proto(row["version_id"], counts.get("candidate", 0),
                                      self.deployments.arm_stats(row["deployment_id"], "candidate"))
        baseline = None
        if row["previous_version_id"]:
            baseline = convert.arm_proto(row["previous_version_id"], counts.get("stable", 0),
                                         self.deployments.arm_stats(row["deployment_id"], "stable"))
        return convert.deployment_proto(row, candidate, baseline)

    @staticmethod
    def _environment(value: int) -> str:
        env = ENVIRONMENTS.get(value)
        if env is None:
            raise InvalidArgument("environment", "unknown environment")
        return env

    # ---- agents ------------------------------------------------------------------------------
    def CreateAgent(self, request, context):
        """Create an agent owned by the caller's account. Agent ids are global: an id another account
        uses is ALREADY_EXISTS "agent id '<id>' is taken; choose another id" (nothing else is told)."""
        agent_id = resource_id(request.agent_id, "agent_id")
        if len(request.name) > 256:
            raise InvalidArgument("name", "at most 256 characters")
        if len(request.description) > 10_000:
            raise InvalidArgument("description", "at most 10000 characters")
        row = self.store.create_agent(agent_id, request.name or agent_id, request.description,
                                      request.serve_first_version if request.HasField("serve_first_version") else True,
                                      account=request.account_id)
        return model_registry_pb2.CreateAgentResponse(agent=convert.agent_proto(row))

    def UpdateAgent(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        changes: dict[str, Any] = {}
        if request.HasField("name"):
            if not request.name or len(request.name) > 256:
                raise InvalidArgument("name", "1 to 256 characters")
            changes["name"] = request.name
        if request.HasField("description"):
            if len(request.description) > 10_000:
                raise InvalidArgument("description", "at most 10000 characters")
            changes["description"] = request.description
        if request.HasField("serve_first_version"):
            changes["serve_first_version"] = request.serve_first_version
        row = self.store.update_agent(request.agent_id, changes, _actor(request.actor))
        return model_registry_pb2.UpdateAgentResponse(agent=convert.agent_proto(row))

    def GetAgent(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        return model_registry_pb2.GetAgentResponse(agent=convert.agent_proto(self.store.get_agent(request.agent_id)))

    def ListAgents(self, request, context):
        agents = self.store.list_agents(page_request(request, 50, 1000))
        return model_registry_pb2.ListAgentsResponse(
            agents=[convert.agent_proto(r) for r in agents.rows], next_page_token=agents.next_page_token,
            total_size=agents.total_size)

    # ---- versions ----------------------------------------------------------------------------
    def RegisterVersion(self, request, context):
        # The agent must exist and be the caller's (another account's agent is NOT_FOUND; the agent is
        # created first by CreateAgent, which answers ALREADY_EXISTS "... is taken" for a used id).
        self.store.get_agent(request.agent_id)
        if not request.onnx_model:
            raise InvalidArgument("onnx_model", "is required")
        policy = Policy.of(request.promotion) if request.HasField("promotion") else None
        for name, cap in (("holdout_examples", MAX_HOLDOUT), ("demonstration_examples", MAX_DEMONSTRATIONS)):
            if len(getattr(request, name)) > cap:
                raise InvalidArgument(name, f"at most {cap} examples")
        checkpoint = request.checkpoint if request.HasField("checkpoint") else None
        if checkpoint is not None and not (request.job_id and checkpoint.checkpoint_id):
            raise InvalidArgument("checkpoint.checkpoint_id" if request.job_id else "job_id",
                                  "a checkpoint version needs the job and the checkpoint it came from")
        if request.job_id:
            existing = self.store.version_for_job(request.agent_id, request.job_id,
                                                  checkpoint.checkpoint_id if checkpoint else "",
                                                  checkpoint.step if checkpoint else 0)
            if existing is not None:  # a retried registration returns the first one
                return model_registry_pb2.RegisterVersionResponse(version=self._version(existing))
        try:
            model = onnx.load_from_string(request.onnx_model)
            onnx.checker.check_model(model)
        except Exception as exc:
            raise InvalidArgument("onnx_model", f"not a valid ONNX model: {exc}") from None
        meta = {p.key: p.value for p in model.metadata_props}
        try:
            labels = json.loads(meta.get("labels", "[]"))
            featurizer = json.loads(meta.get("featurizer", "{}"))
        except json.JSONDecodeError:
            raise InvalidArgument("onnx_model", "metadata 'labels'/'featurizer' is not JSON") from None
        if not labels or not isinstance(labels, list):
            raise InvalidArgument("onnx_model", "metadata has no 'labels' (the output catalog)")
        try:
            OnnxModel.from_bytes(request.onnx_model)  # it must load the way Predict will load it
        except Exception as exc:
            raise InvalidArgument("onnx_model", f"cannot be served: {exc}") from None
        if request.parent_version_id and self.store.find_version(request.agent_id, request.parent_version_id) is None:
            raise InvalidArgument("parent_version_id", f"agent '{request.agent_id}' has no version "
                                                       f"'{request.parent_version_id}'")
        digest = hashlib.sha256(request.onnx_model).hexdigest()
        path = self.artifact_dir / request.agent_id / f"{digest}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{random_id('tmp', 12)}")
        tmp.write_bytes(request.onnx_model)
        tmp.replace(path)
        # Numbering a version and the first-version rule happen under the deployments' lock, so of two
        # registrations racing for a new agent the one numbered first is the one that serves.
        with self.deployments.lock:
            row, _ = self.store.add_version({
                "agent_id": request.agent_id, "metrics_json": json.dumps(dict(request.metrics)),
                "config_json": json.dumps(MessageToDict(request.training_config)), "job_id": request.job_id,
                "dataset_id": request.dataset_id, "parent_version_id": request.parent_version_id,
                "method": request.method, "labels_json": json.dumps(labels),
                "featurizer_json": json.dumps(featurizer), "size_bytes": len(request.onnx_model), "sha256": digest,
                "path": str(path), **_checkpoint_columns(checkpoint)}, labels)
            baseline_id = self.deployments.serving_version(request.agent_id, PRODUCTION)
            served_first = self.deployments.serve_first(row)
        holdout = example_dicts(request.holdout_examples)
        for kind, examples in (("holdout", holdout), ("demonstration", example_dicts(request.demonstration_examples))):
            if examples:
                self.store.put_version_examples(request.agent_id, row["version_id"], kind, examples)
        if policy is not None:
            self._gate(row, policy, "" if served_first else baseline_id, holdout)
        row = self.store.get_version(request.agent_id, row["version_id"])
        return model_registry_pb2.RegisterVersionResponse(version=self._version(row))

    def _gate(self, row: dict[str, Any], policy: Policy, baseline_id: str, holdout: list[dict[str, Any]]) -> None:
        """Run the promotion gate on a new version, promote it when it passes, record the decision."""
        label = f"{row['agent_id']}/{row['version_id']}"
        candidate = self.sessions.get(row["path"], row["sha256"], label)
        baseline = None
        if baseline_id:
            b = self.store.get_version(row["agent_id"], baseline_id)
            baseline = self.sessions.get(b["path"], b["sha256"], f"{row['agent_id']}/{baseline_id}")
        decision = gate.decide(policy, candidate, baseline, baseline_id, holdout, wall_clock())
        if decision.outcome == "promoted" and baseline is not None:
            refused = self.deployments.promote(row, f"promotion gate ({policy.requested_by}): {decision.reason}",
                                               policy.requested_by)
            if refused:
                decision.outcome, decision.reason = "rejected", f"{refused} (the gate passed: {decision.reason})"
        self.store.record_promotion(row["agent_id"], row["version_id"], decision.to_dict())

    def ListVersions(self, request, context):
        if request.agent_id:
            self.store.get_agent(request.agent_id)
        page = page_request(request, 20, 100)
        order = version_order(*_order(request.order_by))
        state = ""
        if request.state:
            state = convert.VERSION_STATE_NAMES.get(request.state, "")
            if not state:
                raise InvalidArgument("state", "unknown version state")
        if request.alias:
            check_alias(request.alias)
        versions = self.store.list_versions(page, order, agent_id=request.agent_id, state=state,
                                            alias=request.alias, tag=request.tag)
        aliases = self.store.aliases_of(r["agent_id"] for r in versions.rows)
        routes: dict[str, Any] = {}
        return model_registry_pb2.ListVersionsResponse(
            versions=[self._version(r, routes, aliases) for r in versions.rows],
            next_page_token=versions.next_page_token, total_size=versions.total_size)

    def GetVersion(self, request, context):
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        return model_registry_pb2.GetVersionResponse(version=self._version(row))

    def GetVersionArtifact(self, request, context):
        if request.agent_id and not request.version_id and not request.model_id:
            version_id = self.deployments.serving_version(request.agent_id, "production")
            if not version_id:
                raise FailedPrecondition(f"agent '{request.agent_id}' has no trained version yet",
                                         metadata={"resource": "agent", "id": request.agent_id})
            row = self.store.get_version(request.agent_id, version_id)
        else:
            row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        data = SessionCache.read_verified(row["path"], row["sha256"], f"{row['agent_id']}/{row['version_id']}")
        return model_registry_pb2.GetVersionArtifactResponse(version=self._version(row), onnx_model=data)

    def ListVersionAliases(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        self.store.get_agent(request.agent_id)
        return model_registry_pb2.ListVersionAliasesResponse(aliases=[
            model_registry_pb2.VersionAlias(alias=r["alias"], version_id=r["version_id"],
                                            update_time=convert.ts(r["update_time"]))
            for r in self.store.list_aliases(request.agent_id)])

    def SetVersionAlias(self, request, context):
        alias = check_alias(request.alias)
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        previous = self.store.set_alias(row["agent_id"], alias, row["version_id"], _actor(request.actor))
        return model_registry_pb2.SetVersionAliasResponse(version=self._version(row),
                                                          previous_version_id=previous or "")

    def DeleteVersionAlias(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        alias = check_alias(request.alias)
        self.store.get_agent(request.agent_id)
        version_id = self.store.delete_alias(request.agent_id, alias, _actor(request.actor))
        return model_registry_pb2.DeleteVersionAliasResponse(version_id=version_id)

    def UpdateVersionTags(self, request, context):
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        for key, value in request.set.items():
            if not key or len(key) > MAX_TAG_KEY:
                raise InvalidArgument(f"set[{key}]", f"tag keys are 1..{MAX_TAG_KEY} characters")
            if len(value) > MAX_TAG_VALUE:
                raise InvalidArgument(f"set[{key}]", f"tag values are at most {MAX_TAG_VALUE} characters")
        for i, key in enumerate(request.remove):
            if key in request.set:
                raise InvalidArgument(f"remove[{i}]", f"'{key}' is both set and removed")
        tags = loads(row["tags_json"], {})
        tags.update(dict(request.set))
        for key in request.remove:
            tags.pop(key, None)
        if len(tags) > MAX_TAGS:
            raise InvalidArgument("set", f"a version has at most {MAX_TAGS} tags")
        self.store.update_tags(row["agent_id"], row["version_id"], tags, _actor(request.actor),
                               {"set": dict(request.set), "remove": list(request.remove)})
        return model_registry_pb2.UpdateVersionTagsResponse(
            version=self._version(self.store.get_version(row["agent_id"], row["version_id"])))

    # ---- serving -----------------------------------------------------------------------------
    def Predict(self, request, context):
        def deadline_passed() -> bool:
            remaining = context.time_remaining()
            return remaining is not None and remaining <= 0
        return self.predictor.predict(request, deadline_passed)

    def WatchServing(self, request, context):
        if self.feed is None:
            raise FailedPrecondition("this registry publishes no serving feed")
        yield from self.feed.watch(context.is_active)

    def RecordPredictions(self, request, context):
        """Predictions a gateway's serving replica answered, into the prediction log (as Predict's)."""
        if len(request.predictions) > MAX_RECORDS:
            raise InvalidArgument("predictions", f"at most {MAX_RECORDS} per call")
        rows = []
        for i, r in enumerate(request.predictions):
            environment, arm = ENVIRONMENTS.get(r.environment), ARM_NAMES.get(r.arm)
            if not (r.prediction_id.startswith("pred-") and r.agent_id and r.version_id and environment and arm
                    and r.HasField("create_time")):
                raise InvalidArgument(f"predictions[{i}]", "needs prediction_id (pred-...), agent_id, version_id, "
                                                           "arm, environment and create_time")
            rows.append((r.prediction_id, r.agent_id, r.version_id, r.deployment_id, arm, environment,
                         r.request_key, r.input, r.output, r.probability, r.latency_ms,
                         r.create_time.ToDatetime(), None))
        self.log.append(rows)
        return model_registry_pb2.RecordPredictionsResponse(recorded=len(rows))

    def RecordFeedback(self, request, context):
        row, rolled_back = self.feedback.record(request)
        response = model_registry_pb2.RecordFeedbackResponse(feedback=convert.feedback_proto(row))
        if rolled_back is not None:
            response.rolled_back.CopyFrom(self._deployment(rolled_back))
        return response

    def ListFeedback(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        self.store.get_agent(request.agent_id)
        feedback = self.store.list_feedback(request.agent_id, request.version_id, request.deployment_id,
                                            page_request(request, 50, 1000))
        return model_registry_pb2.ListFeedbackResponse(
            feedback=[convert.feedback_proto(r) for r in feedback.rows], next_page_token=feedback.next_page_token,
            total_size=feedback.total_size)

    def CountFeedback(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        self.store.get_agent(request.agent_id)
        window = [getattr(request, name).ToDatetime(tzinfo=dt.timezone.utc) if request.HasField(name) else None
                  for name in ("since", "before")]
        return model_registry_pb2.CountFeedbackResponse(count=self.store.count_feedback(request.agent_id, *window))

    # ---- deployments -------------------------------------------------------------------------
    @staticmethod
    def _plan(request) -> tuple[RolloutPlan, GuardPolicy]:
        spec = request.rollout
        strategy = convert.STRATEGIES.get(spec.strategy)
        if strategy is None:
            raise InvalidArgument("rollout.strategy", "unknown strategy")
        duration_s = None
        if spec.HasField("duration") and spec.duration_text:
            raise InvalidArgument("rollout.duration", "give duration or duration_text, not both")
        if spec.HasField("duration"):
            duration_s = spec.duration.ToNanoseconds() / 1e9
        elif spec.duration_text:
            duration_s = parse_duration_text(spec.duration_text, "rollout.duration")
        plan = resolve_plan(strategy, spec.percentage if spec.HasField("percentage") else None, duration_s,
                            list(spec.steps))
        rb = request.rollback
        guard = resolve_guard(rb.automatic, rb.error_rate if rb.HasField("error_rate") else None,
                              rb.latency_ms if rb.HasField("latency_ms") else None,
                              rb.min_samples if rb.HasField("min_samples") else None)
        if not rb.automatic and (rb.HasField("error_rate") or rb.HasField("latency_ms")):
            raise InvalidArgument("rollback.automatic", "thresholds are given but automatic rollback is off")
        return plan, guard

    def DeployVersion(self, request, context):
        environment = self._environment(request.environment)
        plan, guard = self._plan(request)
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        dep = self.deployments.deploy(row, environment, plan, guard, _actor(request.actor))
        return model_registry_pb2.DeployVersionResponse(deployment=self._deployment(dep))

    def GetDeployment(self, request, context):
        if not request.deployment_id:
            raise InvalidArgument("deployment_id", "is required")
        dep = self.deployments.tick(request.deployment_id)  # up to date with the clock
        return model_registry_pb2.GetDeploymentResponse(deployment=self._deployment(dep))

    def ListDeployments(self, request, context):
        if request.agent_id:
            self.store.get_agent(request.agent_id)
        environment = ENVIRONMENTS.get(request.environment) if request.environment else ""
        if environment is None:
            raise InvalidArgument("environment", "unknown environment")
        state = ""
        if request.state:
            state = convert.DEPLOYMENT_STATE_NAMES.get(request.state, "")
            if not state:
                raise InvalidArgument("state", "unknown deployment state")
        page = page_request(request, 20, 100)
        self.deployments.tick_all()
        deployments = self.store.list_deployments(request.agent_id, environment, state, page)
        return model_registry_pb2.ListDeploymentsResponse(
            deployments=[self._deployment(r) for r in deployments.rows],
            next_page_token=deployments.next_page_token, total_size=deployments.total_size)

    def AdvanceRollout(self, request, context):
        if not request.deployment_id:
            raise InvalidArgument("deployment_id", "is required")
        dep = self.deployments.advance(request.deployment_id,
                                       request.percentage if request.HasField("percentage") else None,
                                       _actor(request.actor))
        return model_registry_pb2.AdvanceRolloutResponse(deployment=self._deployment(dep))

    def RollbackVersion(self, request, context):
        environment = self._environment(request.environment)
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        target = None
        if request.target_version_id:
            target = resolve_version(self.store, row["agent_id"], request.target_version_id, "",
                                     field="target_version_id")
        if len(request.reason) > 1000:
            raise InvalidArgument("reason", "at most 1000 characters")
        previous, current, dep = self.deployments.rollback(row, environment, target, request.reason,
                                                           _actor(request.actor))
        return model_registry_pb2.RollbackVersionResponse(
            previous_version_id=previous, current_version_id=current,
            rollback_time=convert.ts(dep["end_time"] or dep["update_time"]),
            message=f"Rolled back to version {current}", deployment=self._deployment(dep))

    def ActivateVersion(self, request, context):
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        provider_model = request.provider_model
        if provider_model:
            ollama.check_model_name(provider_model)  # the same alphabet as Ollama names
        dep = self.deployments.activate(row, provider_model, _actor(request.actor))
        version = self._version(self.store.get_version(row["agent_id"], row["version_id"]))
        return model_registry_pb2.ActivateVersionResponse(
            version=version, active_model=provider_model or version.model_id,
            deployment=self._deployment(dep) if dep is not None else None)

    def ListAuditEvents(self, request, context):
        if request.agent_id:
            self.store.visible_agent(request.agent_id)
        events = self.store.list_audit(request.agent_id, request.deployment_id, request.version_id, request.kind,
                                       page_request(request, 50, 1000))
        return model_registry_pb2.ListAuditEventsResponse(
            events=[convert.audit_proto(r) for r in events.rows], next_page_token=events.next_page_token,
            total_size=events.total_size)

    # ---- Ollama ------------------------------------------------------------------------------
    def ImportToOllama(self, request, context):
        row = resolve_version(self.store, request.agent_id, request.version_id, request.model_id)
        target = ollama.check_url(request.ollama_url)
        name = ollama.check_model_name(request.model_name or f"{row['agent_id']}-{row['version_id']}".lower())
        base = ollama.check_base_model(request.base_model or ollama.DEFAULT_BASE_MODEL)
        per_output = request.demonstrations_per_output if request.HasField("demonstrations_per_output") else 3
        if not 0 <= per_output <= 10:
            raise InvalidArgument("demonstrations_per_output", "must be between 0 and 10")
        model = self.sessions.get(row["path"], row["sha256"], f"{row['agent_id']}/{row['version_id']}")
        examples: list[dict[str, Any]] = []
        if per_output:  # held-out first (the version never saw them), then training demonstrations;
            for kind in ("holdout", "demonstration"):  # none stored: the catalog alone (demonstration_count says so)
                examples += self.store.version_examples(row["agent_id"], row["version_id"], kind)
        demos = ollama.choose_demonstrations(model, examples, per_output)
        prompt = ollama.system_prompt(row["agent_id"], row["version_id"], model.labels, demos)
        client = ollama.OllamaClient(target)
        try:
            ollama.create_model(client, name, base, prompt)
        finally:
            client.close()
        record = self.store.add_ollama_import({
            "import_id": random_id("ollama", 12), "agent_id": row["agent_id"], "version_id": row["version_id"],
            "ollama_name": name, "base_model": base, "ollama_url": target.url, "system_prompt": prompt,
            "demonstration_count": len(demos), "import_time": naive()}, _actor(request.actor))
        return model_registry_pb2.ImportToOllamaResponse(**{"import": convert.import_proto(record)})

    # ---- stats -------------------------------------------------------------------------------
    def GetRegistryStats(self, request, context):
        """Counts over the caller's account (every account for admin)."""
        self.log.flush()
        stats = self.store.stats()
        return model_registry_pb2.GetRegistryStatsResponse(**stats)
