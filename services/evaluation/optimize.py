"""analyzeAndOptimize: optimisation suggestions for an agent, by documented rules.

Inputs: the agent's versions (training metrics, size, featurizer, training config), its jobs
(configs, final metrics, curves) and its stored evaluations. When the current version (active,
else newest) has no stored comprehensive evaluation, one is run now on its job's held-out split
so latency, cost, consistency and calibration are measured, not guessed.

Rules (goal: rule id — condition -> suggestion):
  maximize_accuracy:
    O1 — an older version's validation accuracy beats the current one by >= 0.02 -> activate it
    O2 — another completed job of the agent reached a validation accuracy >= 0.01 higher -> adopt
         the config fields where its config differs from the current version's job
    O3 — the current job's training loss was still falling (converging) -> 1.5x epochs;
         underfitting risk medium/high -> double the hidden layer sizes
    O4 — an output's F1 < 0.8 in the current evaluation -> more examples for the weakest output
  reduce_overfitting:
    O5 — overfitting risk medium/high -> dropout +0.2 (max 0.5), weightDecay >= 1e-4, earlyStopping
  minimize_latency:
    O6 — p95 latency measured; when the hidden layers total more than 32 units or the featurizer
         dim exceeds 4096 -> halve them (smaller matrices, fewer hashed features per input)
    O7 — no latency measurement possible (no held-out examples) -> evaluate with test examples
  minimize_cost:
    O8 — the kept weights came from before 60% of the epochs -> epochs = best epoch + patience
    O9 — early stopping disabled -> enable it; batch size below the default (32) -> the default
         (fewer optimizer steps)
    O10 — compute is > 50% of the cost per task -> the O6 size reductions
  maximize_consistency:
    O11 — consistency < 0.95 -> augment with the weakest perturbation kind; char n-grams disabled
          -> enable them (typo robustness)
  improve_calibration:
    O12 — ECE > 0.05: overconfident (mean confidence > accuracy) -> dropout +0.1 and early
          stopping; underconfident -> 1.5x epochs

A suggestion's ``config_changes`` use the names the training config publishes (``learningRate``,
``hiddenSizes``) and stay inside its ranges: they come from the config model (services/core/configs),
so a suggestion can be sent to StartJob as it is.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.core.configs import SupervisedConfig, published_name, within
from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.evaluation import curves as C
from trainhouse.evaluation.advice import PRIORITY_RANK
from trainhouse.evaluation.evaluator import EvalSpec, Evaluator
from trainhouse.evaluation.peers import job_config
from trainhouse.evaluation.sweep_suggestion import suggested_sweep
from trainhouse.evaluation.training_results import final_metrics
from trainhouse.v1 import evaluation_pb2, evaluation_service_pb2, job_state_pb2

GOALS = ("minimize_latency", "maximize_accuracy", "minimize_cost", "maximize_consistency", "improve_calibration",
         "reduce_overfitting")
NEEDED = ("latency_p95_ms", "cost_per_task_usd", "consistency", "ece", "accuracy")
# The classifier paradigms' config (few_shot, transfer and reinforcement share its fields): the
# names, defaults and ranges of what the rules suggest come from it, in the spelling StartJob takes.
CONFIG = SupervisedConfig
DEFAULTS = SupervisedConfig().resolved_for(0, 0)  # the small-data settings
# The hyperparameters rule O2 copies from a better job.
TUNABLE = ("learning_rate", "epochs", "batch_size", "hidden_sizes", "dropout", "weight_decay", "optimizer",
           "scheduler_type", "early_stopping", "patience", "warmup_steps", "momentum")
assert set(TUNABLE) <= set(CONFIG.model_fields), "TUNABLE names a field SupervisedConfig does not have"


def validate_goals(goals: list[str]) -> list[str]:
    if not goals:
        return list(GOALS)
    out = []
    for i, raw in enumerate(goals):
        name = raw.strip().lower()
        if name not in GOALS:
            raise InvalidArgument(f"optimization_goals[{i}]", f"unknown goal '{raw}'; valid goals: " + ", ".join(GOALS),
                                  metadata={"valid": ",".join(GOALS)})
        if name not in out:
            out.append(name)
    return out


def _published(changes: dict[str, Any]) -> dict[str, Any]:
    """Config changes under the names the config publishes (``learningRate``, ``hiddenSizes``)."""
    return {published_name(CONFIG.model_fields[k], k) if k in CONFIG.model_fields else k: v
            for k, v in changes.items()}


def _more_epochs(epochs: int) -> int:
    """1.5x the epochs (at least one more), as many as a job may run."""
    return within(CONFIG, "epochs", max(epochs + 1, round(epochs * 1.5)))


class Optimizer:
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.peers = evaluator.peers
        self.store = evaluator.store

    def _current_evaluation(self, agent_id: str, version) -> tuple[evaluation_pb2.Evaluation | None, bool]:
        stored = self.store.latest_evaluation(agent_id, version.version_id)
        if stored is not None and all(k in stored.metrics for k in NEEDED):
            return stored, False
        if not version.job_id:
            return stored, False
        # The rules read classifier metrics; a GRPO policy agent gets a clear FAILED_PRECONDITION.
        evaluation, _, _ = self.evaluator.evaluate(EvalSpec(agent_id=agent_id, version_id=version.version_id,
                                                            evaluation_type="comprehensive", model_kind="classifier"))
        return evaluation, True

    def analyze(self, agent_id: str, goals: list[str],
                start_sweep: bool = False) -> evaluation_service_pb2.AnalyzeAndOptimizeResponse:
        if not agent_id:
            raise InvalidArgument("agent_id", "is required")
        goals = validate_goals(goals)
        agent = self.peers.agent(agent_id)
        versions = self.peers.versions(agent_id)
        if not versions:
            raise FailedPrecondition(f"agent '{agent_id}' has no trained version to analyse",
                                     metadata={"resource": "agent", "id": agent_id})
        current = next((v for v in versions if v.version_id == agent.active_version_id), versions[0])
        evaluation, evaluated_now = self._current_evaluation(agent_id, current)
        jobs = [j for j in self.peers.jobs(agent_id) if j.state == job_state_pb2.JOB_STATE_COMPLETED]
        jobs_by_id = {j.job_id: j for j in jobs}
        current_job = jobs_by_id.get(current.job_id)
        analysis = None
        if current_job is not None:
            analysis = C.analyze(C.curves_from_points(self.peers.metric_points(current_job.job_id)),
                                 final_metrics(current_job))
        metrics = dict(evaluation.metrics) if evaluation is not None else {}
        featurizer = MessageToDict(current.featurizer)
        version_cfg = MessageToDict(current.training_config)
        cfg = job_config(current_job) if current_job is not None else version_cfg
        hidden = [int(h) for h in (cfg.get("hidden_sizes") or version_cfg.get("hidden_sizes")
                                   or version_cfg.get("hiddenSizes") or [])]
        dim = int(featurizer.get("dim", 0) or 0)
        perf = evaluation_service_pb2.AgentPerformance(
            version_id=current.version_id, evaluation_id=evaluation.evaluation_id if evaluation else "",
            metrics=metrics, size_bytes=current.size_bytes, hidden_sizes=hidden, featurizer_dim=dim,
            catalog_size=len(current.labels), evaluated_now=evaluated_now)
        suggestions: list[dict[str, Any]] = []

        def suggest(goal: str, rule: str, priority: str, category: str, text: str, rationale: str, signal: str,
                    value: float, changes: dict[str, Any] | None = None) -> None:
            if goal in goals:
                suggestions.append({"goal": goal, "rule": rule, "priority": priority, "category": category,
                                    "suggestion": text, "rationale": rationale, "signal": signal,
                                    "signal_value": float(value), "config_changes": _published(changes or {})})

        # maximize_accuracy
        cur_val = current.metrics.get("validation_accuracy")
        if cur_val is not None:
            better = [v for v in versions if v.version_id != current.version_id
                      and v.metrics.get("validation_accuracy", -1) >= cur_val + 0.02]
            if better:
                best = max(better, key=lambda v: v.metrics["validation_accuracy"])
                suggest("maximize_accuracy", "O1", "high", "deployment", f"Activate version {best.version_id}",
                        f"its validation accuracy {best.metrics['validation_accuracy']:.3f} beats the current "
                        f"{current.version_id} ({cur_val:.3f}); confirm with an evaluation on common examples",
                        "validation_accuracy_gap", best.metrics["validation_accuracy"] - cur_val)
        if current_job is not None and current_job.metrics.get("validation_accuracy") is not None:
            cur_job_val = current_job.metrics["validation_accuracy"]
            others = [j for j in jobs if j.job_id != current_job.job_id
                      and j.metrics.get("validation_accuracy", -1) >= cur_job_val + 0.01]
            if others:
                best_job = max(others, key=lambda j: j.metrics["validation_accuracy"])
                best_cfg = job_config(best_job)
                changes = {k: best_cfg[k] for k in TUNABLE if k in best_cfg and best_cfg.get(k) != cfg.get(k)}
                if changes:
                    suggest("maximize_accuracy", "O2", "medium", "training",
                            f"Train with the configuration of job {best_job.job_id}",
                            f"it reached validation accuracy {best_job.metrics['validation_accuracy']:.3f} vs "
                            f"{cur_job_val:.3f}", "best_job_validation_accuracy",
                            best_job.metrics["validation_accuracy"], changes)
        if analysis is not None:
            epochs = int(cfg.get("epochs", DEFAULTS.epochs))
            if analysis.convergence_status == C.CONVERGING:
                suggest("maximize_accuracy", "O3", "medium", "training", "Train for more epochs",
                        f"the training loss still fell {-analysis.signals.get('loss_slope_per_epoch', 0) * 100:.1f}% "
                        "per epoch at the end", "loss_slope_per_epoch", analysis.signals.get("loss_slope_per_epoch", 0),
                        {"epochs": _more_epochs(epochs)})
            if analysis.underfitting_risk in (C.MEDIUM, C.HIGH):
                suggest("maximize_accuracy", "O3", "high" if analysis.underfitting_risk == C.HIGH else "medium",
                        "model", "Increase model capacity",
                        f"underfitting risk {analysis.underfitting_risk} (train accuracy "
                        f"{analysis.signals.get('train_accuracy', 0):.3f})", "train_accuracy",
                        analysis.signals.get("train_accuracy", 0),
                        {"hidden_sizes": [within(CONFIG, "hidden_sizes", h * 2, item=True) for h in hidden] or [128]})
            if analysis.overfitting_risk in (C.MEDIUM, C.HIGH):
                dropout = float(cfg.get("dropout", DEFAULTS.dropout))
                suggest("reduce_overfitting", "O5", "high" if analysis.overfitting_risk == C.HIGH else "medium",
                        "training", "Regularise more",
                        f"overfitting risk {analysis.overfitting_risk} (accuracy gap "
                        f"{analysis.signals.get('accuracy_gap', 0):.3f}, validation loss "
                        f"{analysis.signals.get('validation_loss_rise', 0):+.1%} above its minimum)", "accuracy_gap",
                        analysis.signals.get("accuracy_gap", 0),
                        {"dropout": min(0.5, round(dropout + 0.2, 2)),
                         "weight_decay": max(float(cfg.get("weight_decay", DEFAULTS.weight_decay)), 1e-4),
                         "early_stopping": True})
            best_epoch = analysis.signals.get("best_epoch")
            epochs_run = analysis.signals.get("epochs_run", float(analysis.epochs_analyzed))
            if best_epoch and epochs_run and best_epoch < 0.6 * epochs_run:
                patience = int(cfg.get("patience", DEFAULTS.patience))
                suggest("minimize_cost", "O8", "medium", "training", "Train fewer epochs",
                        f"the kept weights came from epoch {best_epoch:.0f} of {epochs_run:.0f}; later epochs were "
                        "paid for and discarded", "utilisation", best_epoch / epochs_run,
                        {"epochs": within(CONFIG, "epochs", int(best_epoch) + patience)})
        if evaluation is not None:
            scored = [o for o in evaluation.per_output if o.support > 0]
            if scored:
                worst = min(scored, key=lambda o: (o.f1, o.output))
                if worst.f1 < 0.8:
                    suggest("maximize_accuracy", "O4", "medium", "data", f"Add examples for output '{worst.output}'",
                            f"its F1 is {worst.f1:.2f} on {worst.support} held-out examples", "per_output_f1", worst.f1)
        if cfg.get("early_stopping") is False:
            suggest("minimize_cost", "O9", "low", "training", "Enable early stopping",
                    "it stops once the validation loss stops improving", "early_stopping", 0.0,
                    {"early_stopping": True})
        batch = int(cfg.get("batch_size", DEFAULTS.batch_size))
        if batch < DEFAULTS.batch_size:
            suggest("minimize_cost", "O9", "low", "training", "Use a larger batch size",
                    f"batch size {batch} means many small optimizer steps", "batch_size", batch,
                    {"batch_size": DEFAULTS.batch_size})
        # latency and inference cost
        shrink: dict[str, Any] = {}
        if sum(hidden) > 32:
            shrink["hidden_sizes"] = [max(8, h // 2) for h in hidden]
        if dim > 4096:
            shrink["featurizer"] = {"dim": dim // 2}
        if "latency_p95_ms" in metrics:
            if shrink:
                suggest("minimize_latency", "O6", "medium" if metrics["latency_p95_ms"] > 20 else "low", "model",
                        "Serve a smaller model", f"p95 latency {metrics['latency_p95_ms']:.2f} ms with hidden layers "
                        f"{hidden} and featurizer dim {dim}; retrain smaller and compare accuracy",
                        "latency_p95_ms", metrics["latency_p95_ms"], shrink)
        else:
            suggest("minimize_latency", "O7", "low", "evaluation", "Measure latency with an evaluation on test examples",
                    "the current version has no held-out examples to measure on", "latency_p95_ms", 0.0)
        cost = evaluation.cost if evaluation is not None and evaluation.HasField("cost") else None
        if cost is not None and cost.cost_per_task_usd > 0:
            share = cost.compute_cost_per_task_usd / cost.cost_per_task_usd
            if share > 0.5 and shrink:
                suggest("minimize_cost", "O10", "low", "model", "Serve a smaller model to cut compute per task",
                        f"compute is {share:.0%} of the {cost.cost_per_task_usd:.3g} USD cost per task",
                        "compute_cost_share", share, shrink)
        if "consistency" in metrics and metrics["consistency"] < 0.95:
            by_kind = dict(evaluation.consistency.agreement_by_kind) if evaluation is not None else {}
            kind = min(by_kind, key=by_kind.get) if by_kind else "typo"
            changes = {}
            char = featurizer.get("char_ngrams") or featurizer.get("charNgrams")
            if char is not None and list(char) == [0, 0]:
                changes["featurizer"] = {"charNgrams": [3, 5]}
            suggest("maximize_consistency", "O11", "medium", "data",
                    f"Augment the training data with {kind.replace('_', '-')} variants",
                    f"consistency {metrics['consistency']:.3f}; weakest under {kind} "
                    f"({by_kind.get(kind, metrics['consistency']):.3f})", "consistency", metrics["consistency"], changes)
        if "ece" in metrics and metrics["ece"] > 0.05:
            over = metrics.get("mean_confidence", 0) > metrics.get("accuracy", 0)
            dropout = float(cfg.get("dropout", DEFAULTS.dropout))
            suggest("improve_calibration", "O12", "low", "training",
                    "Regularise to soften overconfidence" if over else "Train longer to sharpen underconfident outputs",
                    f"ECE {metrics['ece']:.3f}; mean confidence {metrics.get('mean_confidence', 0):.3f} vs accuracy "
                    f"{metrics.get('accuracy', 0):.3f}", "ece", metrics["ece"],
                    {"dropout": min(0.5, round(dropout + 0.1, 2)), "early_stopping": True} if over
                    else {"epochs": _more_epochs(int(cfg.get("epochs", DEFAULTS.epochs)))})
        suggestions.sort(key=lambda s: (PRIORITY_RANK[s["priority"]], goals.index(s["goal"]), s["rule"]))
        response = evaluation_service_pb2.AnalyzeAndOptimizeResponse(
            agent_id=agent_id, optimization_goals=goals, current=perf, create_time=to_timestamp(now()))
        for v in versions:
            latest = self.store.latest_evaluation(agent_id, v.version_id)
            merged = dict(v.metrics)
            if latest is not None:
                merged.update({f"eval_{k}": val for k, val in latest.metrics.items()})
            response.versions.append(evaluation_service_pb2.AgentVersionSummary(
                version_id=v.version_id, job_id=v.job_id, metrics=merged, size_bytes=v.size_bytes,
                active=v.version_id == agent.active_version_id, create_time=v.create_time))
        sweep = suggested_sweep(agent_id, current_job.config if current_job is not None else None, cfg, suggestions,
                                goals)
        if sweep is not None:
            response.suggested_sweep.CopyFrom(sweep)
            if start_sweep:
                if current_job is None:
                    raise FailedPrecondition(f"version {current.version_id} of agent '{agent_id}' has no completed "
                                             f"job whose data a sweep could train on", field="start_sweep")
                response.started_sweep_id = self.peers.create_sweep(sweep, current_job).sweep_id
        for s in suggestions:
            changes = struct_pb2.Struct()
            changes.update(s.pop("config_changes"))
            response.suggestions.append(evaluation_service_pb2.OptimizationSuggestion(config_changes=changes, **s))
        headline = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("accuracy", "latency_p95_ms", "cost_per_task_usd",
                                                                 "consistency", "ece") if k in metrics)
        response.summary = (f"Agent {agent_id}: current version {current.version_id}"
                            + (f" ({headline})" if headline else "")
                            + f"; {len(suggestions)} suggestion(s) for {', '.join(goals)}.")
        return response
