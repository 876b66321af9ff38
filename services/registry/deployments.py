"""Deployments: which version serves each environment, how traffic moves, and rollbacks.

The deployment in effect for an (agent, environment) is its newest deployment that was not
superseded; the serving route follows from it:

  ROLLING_OUT -> the candidate gets `current_percentage` of the traffic, the previous version the rest
  COMPLETED   -> its version serves everything
  ROLLED_BACK -> its previous version serves everything
  (none)      -> production serves the agent's active version (set by an activation, or by the
                 first-version rule below), or nothing; staging serves nothing

Nothing else changes what serves: a newer version does not serve by merely existing. The one
rule on registration: when production serves nothing and the agent's serve_first_version is true
(the default), the new version serves at once, recorded as a completed deployment with source
"first-version" (``serve_first``).

Every transition runs under one lock, in one DuckDB transaction with its audit events, and then
drops the router's cached route. Time only enters through the injected clock: canary steps fall
due when `tick` runs (each Predict that sees a due step, each feedback, and the background tick).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import duckdb

from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.common.timeutil import now as wall_clock
from trainhouse.registry.rollout import CANARY, IMMEDIATE, ArmStats, GuardPolicy, RolloutPlan, breach
from trainhouse.core.serving import Route, SessionCache
from trainhouse.registry.serving import PredictionLog, Router, served_of
from trainhouse.core.ids import random_id
from trainhouse.registry.store import RegistryStore, aware, loads, naive

PRODUCTION, STAGING = "production", "staging"
# States in which a rollout shares traffic: on schedule, or held because its analysis was inconclusive.
ROLLING = ("rolling-out", "inconclusive")
ENV_VERSION_STATE = {PRODUCTION: "deployed", STAGING: "staging"}


class Deployments:
    def __init__(self, store: RegistryStore, sessions: SessionCache, log: PredictionLog,
                 clock: Callable[[], dt.datetime] = wall_clock):
        self.store = store
        self.sessions = sessions
        self.log = log
        self.clock = clock
        self.router = Router(self.load_route)
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held by every change of what serves (re-entrant): a caller that must order its own step
        with those changes (numbering a new version before the first-version rule) holds it too."""
        return self._lock

    # ---- routes ------------------------------------------------------------------------------
    def load_route(self, agent_id: str, environment: str) -> Route:
        agent = self.store.get_agent(agent_id)
        dep = self.store.latest_deployment(agent_id, environment)
        if dep is None:
            if environment == STAGING:
                return Route(None)
            row = self.store.find_version(agent_id, agent["active_version_id"]) if agent["active_version_id"] else None
            return Route(served_of(row) if row else None)
        if dep["state"] in ROLLING:
            plan = RolloutPlan.from_dict(loads(dep["plan_json"], {}))
            previous = dep["previous_version_id"]
            return Route(
                stable=served_of(self.store.get_version(agent_id, previous)) if previous else None,
                candidate=served_of(self.store.get_version(agent_id, dep["version_id"])),
                deployment_id=dep["deployment_id"], percentage=float(dep["current_percentage"]),
                # Held rollouts are looked at by the background tick and on feedback, not per request.
                next_due=None if dep["state"] == "inconclusive"
                else plan.next_due(dep["step_index"], aware(dep["create_time"])))
        version_id = dep["version_id"] if dep["state"] == "completed" else dep["previous_version_id"]
        return Route(served_of(self.store.get_version(agent_id, version_id)) if version_id else None,
                     deployment_id=dep["deployment_id"])

    def serving_version(self, agent_id: str, environment: str) -> str:
        """The version that serves the environment in full (the baseline during a rollout)."""
        route = self.load_route(agent_id, environment)
        if route.candidate is not None and route.percentage >= 100:
            return route.candidate.version_id
        return route.stable.version_id if route.stable else ""

    # ---- version states ----------------------------------------------------------------------
    def _serves(self, con: duckdb.DuckDBPyConnection, agent_id: str, version_id: str) -> str:
        """'deployed' / 'staging' when the version still serves an environment, else ''."""
        active, staging = con.execute("SELECT active_version_id, staging_version_id FROM agents WHERE agent_id = ?",
                                      [agent_id]).fetchone()
        rolling = con.execute(
            "SELECT environment FROM deployments WHERE agent_id = ? AND state IN ('rolling-out', 'inconclusive') "
            "AND (version_id = ? OR previous_version_id = ?)", [agent_id, version_id, version_id]).fetchall()
        envs = {env for (env,) in rolling}
        if active == version_id:
            envs.add(PRODUCTION)
        if staging == version_id:
            envs.add(STAGING)
        if PRODUCTION in envs:
            return "deployed"
        return "staging" if STAGING in envs else ""

    def _retire(self, con: duckdb.DuckDBPyConnection, agent_id: str, version_id: str, state: str, reason: str,
                actor: str, deployment_id: str) -> None:
        if not version_id:
            return
        still = self._serves(con, agent_id, version_id)
        self.store.set_version_state(con, agent_id, version_id, still or state, reason, actor, deployment_id)

    def _promote(self, con: duckdb.DuckDBPyConnection, agent_id: str, version_id: str, environment: str,
                 reason: str, actor: str, deployment_id: str) -> None:
        state = ENV_VERSION_STATE[environment]
        if state == "staging" and self._serves(con, agent_id, version_id) == "deployed":
            state = "deployed"  # it serves production too: that is the stronger state
        self.store.set_version_state(con, agent_id, version_id, state, reason, actor, deployment_id)

    # ---- deploy ------------------------------------------------------------------------------
    def _check_artifact(self, row: dict[str, Any]) -> None:
        """Load (sha256-checked) and warm the version, and score one text, before it gets traffic."""
        model = self.sessions.get(row["path"], row["sha256"], f"{row['agent_id']}/{row['version_id']}")
        probs = model.predict_proba(["deployment smoke check"])
        if probs.shape != (1, len(model.labels)) or not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-3):
            raise FailedPrecondition(f"{row['version_id']} failed its smoke prediction; it will not be deployed")

    def deploy(self, version: dict[str, Any], environment: str, plan: RolloutPlan, guard: GuardPolicy,
               actor: str, source: str = "deploy") -> dict[str, Any]:
        agent_id, version_id = version["agent_id"], version["version_id"]
        with self._lock:
            latest = self.store.latest_deployment(agent_id, environment)
            if latest is not None and latest["state"] in ROLLING:
                raise FailedPrecondition(
                    f"deployment {latest['deployment_id']} of {latest['version_id']} is still rolling out in "
                    f"{environment}; advance it, roll it back or wait for it to complete",
                    metadata={"resource": "deployment", "id": latest["deployment_id"]})
            serving = self.serving_version(agent_id, environment)
            if serving == version_id:
                raise FailedPrecondition(f"{version_id} already serves {environment}",
                                         metadata={"resource": "version", "id": f"{agent_id}/{version_id}"})
            if not serving and (plan.strategy != IMMEDIATE or guard.automatic):
                raise FailedPrecondition(
                    f"a {plan.strategy} deployment" + (" with automatic rollback" if guard.automatic else "")
                    + f" needs a version serving {environment} to compare against and fall back to; "
                      "deploy with strategy immediate first", metadata={"environment": environment})
            self._check_artifact(version)
            start = self.clock()
            watching = plan.strategy == CANARY or plan.duration_s > 0
            row = {
                "deployment_id": random_id("deploy", 12), "agent_id": agent_id, "version_id": version_id,
                "previous_version_id": serving, "environment": environment,
                "plan_json": json.dumps(plan.to_dict()), "guard_json": json.dumps(guard.to_dict()),
                "state": "rolling-out" if watching else "completed", "current_percentage": plan.steps[0],
                "step_index": 0, "create_time": naive(start),
                "estimated_completion": naive(plan.completion_time(start)),
                "end_time": None if watching else naive(start), "update_time": naive(start),
                "status_reason": "" if watching else "completed at once", "source": source, "actor": actor}
            with self.store.db.transaction() as con:
                self.store.add_deployment(con, row)
                self.store.audit(
                    con, "deployment.started", agent_id=agent_id, version_id=version_id,
                    deployment_id=row["deployment_id"], actor=actor,
                    message=f"{plan.strategy} deployment of {version_id} to {environment} started at "
                            f"{plan.steps[0]:g}%" + (f", replacing {serving}" if serving else ""),
                    details={"plan": plan.to_dict(), "rollback": guard.to_dict(), "previous_version_id": serving,
                             "source": source})
                self._promote(con, agent_id, version_id, environment,
                              f"{source}: {plan.strategy} to {environment}", actor, row["deployment_id"])
                if plan.steps[0] >= 100:
                    self.store.set_serving(con, agent_id, environment, version_id)
                if not watching:
                    self._complete(con, row, actor, "completed at once")
            self.router.invalidate(agent_id)
            return self.store.get_deployment(row["deployment_id"])

    def _complete(self, con: duckdb.DuckDBPyConnection, dep: dict[str, Any], actor: str, reason: str) -> None:
        t = naive(self.clock())
        plan = RolloutPlan.from_dict(loads(dep["plan_json"], {}))
        self.store.update_deployment(con, dep["deployment_id"], state="completed", current_percentage=100.0,
                                     step_index=len(plan.steps) - 1, end_time=t, status_reason=reason)
        self.store.set_serving(con, dep["agent_id"], dep["environment"], dep["version_id"])
        self._retire(con, dep["agent_id"], dep["previous_version_id"], "archived",
                     f"replaced by {dep['version_id']} in {dep['environment']}", actor, dep["deployment_id"])
        self.store.audit(con, "deployment.completed", agent_id=dep["agent_id"], version_id=dep["version_id"],
                         deployment_id=dep["deployment_id"], actor=actor,
                         message=f"{dep['version_id']} serves 100% of {dep['environment']} ({reason})",
                         details={"reason": reason})

    # ---- the schedule ------------------------------------------------------------------------
    def tick(self, deployment_id: str, actor: str = "") -> dict[str, Any]:
        """Bring one deployment up to date with the clock: roll back on a breached guard, move to
        the step that fell due, complete once the plan is done.

        With automatic rollback the rollout is also an analysis: it reaches 100% and completes only
        with at least `min_samples` observations of the candidate (ArmStats); without them it holds
        its traffic as INCONCLUSIVE, and completes later when enough data arrived (or an operator
        advances or rolls it back). Without automatic rollback the schedule alone decides.
        """
        with self._lock:
            dep = self.store.get_deployment(deployment_id)
            if dep["state"] not in ROLLING:
                return dep
            plan = RolloutPlan.from_dict(loads(dep["plan_json"], {}))
            guard = GuardPolicy.from_dict(loads(dep["guard_json"], {}))
            # Read once: the guard and the analysis judge the same observations.
            evidence = self.arm_stats(deployment_id, "candidate") if guard.automatic else None
            if self._guard(dep, evidence) is not None:
                return self.store.get_deployment(deployment_id)
            conclusive = evidence is None or evidence.observations >= guard.min_samples
            start, now = aware(dep["create_time"]), self.clock()
            due = plan.reached(start, now)
            pct, index = float(dep["current_percentage"]), int(dep["step_index"])
            finished = "rollout plan finished" if plan.strategy == CANARY else "watch window ended"
            changed = False
            with self.store.db.transaction() as con:
                if dep["state"] == "inconclusive":
                    if conclusive:
                        self._complete(con, dep, actor, f"{finished}; analysis passed after more data: "
                                                        f"{evidence.describe()}")
                        changed = True
                elif due > index and plan.steps[due] >= 100 and plan.steps[due] > pct and not conclusive:
                    self._inconclusive(con, dep, evidence, guard, actor)
                    changed = True
                else:
                    if due > index and plan.steps[due] > pct:
                        pct, index, changed = plan.steps[due], due, True
                        if pct < 100 or now < plan.completion_time(start):
                            self._step(con, dep, pct, index, actor, "scheduled step")
                    if pct >= 100 and now >= plan.completion_time(start):
                        if conclusive:
                            self._complete(con, dep, actor, finished + (f"; analysis passed: {evidence.describe()}"
                                                                        if evidence is not None else ""))
                        else:
                            self._inconclusive(con, dep, evidence, guard, actor)
                        changed = True
            if changed:
                self.router.invalidate(dep["agent_id"])
            return self.store.get_deployment(deployment_id)

    def _inconclusive(self, con: duckdb.DuckDBPyConnection, dep: dict[str, Any], evidence: ArmStats,
                      guard: GuardPolicy, actor: str) -> None:
        """Hold the rollout where it is: not enough data to promote it, none that says roll back."""
        reason = (f"inconclusive: {evidence.describe()} of the {guard.min_samples} needed; held at "
                  f"{float(dep['current_percentage']):g}% until more data, an advance or a rollback decides")
        self.store.update_deployment(con, dep["deployment_id"], state="inconclusive", status_reason=reason)
        self.store.audit(con, "deployment.inconclusive", agent_id=dep["agent_id"], version_id=dep["version_id"],
                         deployment_id=dep["deployment_id"], actor=actor, message=f"{dep['version_id']} {reason}",
                         details={"observations": evidence.observations, "min_samples": guard.min_samples,
                                  "failures": evidence.failures, "feedback": evidence.feedback})

    def _step(self, con: duckdb.DuckDBPyConnection, dep: dict[str, Any], pct: float, index: int, actor: str,
              why: str) -> None:
        self.store.update_deployment(con, dep["deployment_id"], current_percentage=pct, step_index=index)
        if pct >= 100:
            self.store.set_serving(con, dep["agent_id"], dep["environment"], dep["version_id"])
        self.store.audit(con, "deployment.step", agent_id=dep["agent_id"], version_id=dep["version_id"],
                         deployment_id=dep["deployment_id"], actor=actor,
                         message=f"{dep['version_id']} now gets {pct:g}% of {dep['environment']} ({why})",
                         details={"from": float(dep["current_percentage"]), "to": pct, "step_index": index})

    def tick_all(self) -> None:
        for dep in self.store.rolling_out():
            self.tick(dep["deployment_id"])

    def advance(self, deployment_id: str, percentage: float | None, actor: str) -> dict[str, Any]:
        with self._lock:
            dep = self.store.get_deployment(deployment_id)
            if dep["state"] not in ROLLING:
                raise FailedPrecondition(f"deployment {deployment_id} is {dep['state']}, not rolling out",
                                         metadata={"resource": "deployment", "id": deployment_id})
            plan = RolloutPlan.from_dict(loads(dep["plan_json"], {}))
            current, index = float(dep["current_percentage"]), int(dep["step_index"])
            if percentage is not None:
                if plan.strategy != CANARY:
                    raise InvalidArgument("percentage", f"a {plan.strategy} deployment has no steps to choose")
                if not math.isfinite(percentage) or percentage <= current or percentage > 100:
                    raise InvalidArgument("percentage", f"must be > the current {current:g} and <= 100")
                target = percentage
                index = max(i for i, s in enumerate(plan.steps) if s <= target) if plan.steps[0] <= target else 0
            elif plan.strategy == CANARY and current < 100:
                index = min(index + 1, len(plan.steps) - 1)
                target = plan.steps[index]
            else:
                target = 100.0
            with self.store.db.transaction() as con:
                if target >= 100:
                    self._complete(con, dep, actor, "promoted by " + (actor or "an operator") if plan.strategy == CANARY
                                   else "watch window ended early by " + (actor or "an operator"))
                else:
                    self._step(con, dep, target, index, actor, "advanced by " + (actor or "an operator"))
            self.router.invalidate(dep["agent_id"])
            return self.store.get_deployment(deployment_id)

    # ---- automatic rollback ------------------------------------------------------------------
    def arm_stats(self, deployment_id: str, arm: str) -> ArmStats:
        self.log.flush()  # served (and failed) predictions are written behind; count them all
        n, incorrect, latencies = self.store.arm_feedback(deployment_id, arm)
        return ArmStats(n, incorrect, latencies, self.store.arm_failures(deployment_id, arm))

    def _guard(self, dep: dict[str, Any], stats: ArmStats | None = None) -> str | None:
        """Roll the deployment back when its candidate crossed a threshold; the reason, or None.
        `stats`: the candidate's, when the caller already read them."""
        guard = GuardPolicy.from_dict(loads(dep["guard_json"], {}))
        if not guard.automatic:
            return None
        stats = stats or self.arm_stats(dep["deployment_id"], "candidate")
        reason = breach(guard, stats)
        if reason is None:
            return None
        with self.store.db.transaction() as con:
            self._roll_back(con, dep, reason, "", automatic=True,
                            details={"feedback": stats.feedback, "incorrect": stats.incorrect,
                                     "failures": stats.failures, "error_rate": stats.error_rate,
                                     "latency_p95_ms": stats.latency_p95_ms, "threshold": guard.to_dict()})
        self.router.invalidate(dep["agent_id"])
        return reason

    def check_guard(self, deployment_id: str) -> dict[str, Any] | None:
        """After feedback on a candidate: the deployment if this made it roll back, else None."""
        with self._lock:
            dep = self.store.get_deployment(deployment_id)
            if dep["state"] not in ROLLING or self._guard(dep) is None:
                return None
            return self.store.get_deployment(deployment_id)

    def _roll_back(self, con: duckdb.DuckDBPyConnection, dep: dict[str, Any], reason: str, actor: str,
                   automatic: bool, details: dict[str, Any] | None = None) -> None:
        t = naive(self.clock())
        previous = dep["previous_version_id"]
        self.store.update_deployment(con, dep["deployment_id"], state="rolled-back", current_percentage=0.0,
                                     end_time=t, status_reason=reason)
        self.store.set_serving(con, dep["agent_id"], dep["environment"], previous or None)
        if previous:
            self._promote(con, dep["agent_id"], previous, dep["environment"],
                          f"serves {dep['environment']} again after a rollback", actor, dep["deployment_id"])
        self._retire(con, dep["agent_id"], dep["version_id"], "rolled-back", reason, actor, dep["deployment_id"])
        self.store.audit(con, "deployment.rolled_back", agent_id=dep["agent_id"], version_id=dep["version_id"],
                         deployment_id=dep["deployment_id"], actor=actor,
                         message=f"{dep['version_id']} rolled back in {dep['environment']}"
                                 + (f" to {previous}" if previous else "") + f": {reason}",
                         details={"automatic": automatic, "reason": reason, "current_version_id": previous,
                                  **(details or {})})

    # ---- manual rollback and activation ------------------------------------------------------
    def rollback(self, version: dict[str, Any], environment: str, target: dict[str, Any] | None, reason: str,
                 actor: str) -> tuple[str, str, dict[str, Any]]:
        """(previous version, current version, deployment in effect); see RollbackVersion."""
        agent_id, named = version["agent_id"], version["version_id"]
        with self._lock:
            latest = self.store.latest_deployment(agent_id, environment)
            rolling = latest is not None and latest["state"] in ROLLING
            serving = self.serving_version(agent_id, environment)
            if rolling and named == latest["version_id"]:
                from_v = named
                to_v = target["version_id"] if target else latest["previous_version_id"]
            elif rolling:
                raise FailedPrecondition(
                    f"{latest['version_id']} is rolling out in {environment} (deployment "
                    f"{latest['deployment_id']}); roll that back first", metadata={"resource": "deployment",
                                                                                   "id": latest["deployment_id"]})
            elif named == serving:
                from_v = named
                if target:
                    to_v = target["version_id"]
                elif latest is not None and latest["state"] == "completed" and latest["version_id"] == named:
                    to_v = latest["previous_version_id"]
                else:
                    older = self._older_version(agent_id, named)
                    to_v = older or ""
            else:
                if target and target["version_id"] != named:
                    raise InvalidArgument("target_version_id", f"{named} does not serve {environment}; the rollback "
                                                               f"goes to it, so target_version_id must be empty")
                if not serving:
                    raise FailedPrecondition(f"nothing serves {environment} of agent '{agent_id}' to roll back")
                from_v, to_v = serving, named
            if not to_v:
                raise FailedPrecondition(f"{from_v} has no earlier version to roll back to in {environment}; "
                                         "name one with target_version_id")
            if to_v == from_v:
                raise FailedPrecondition(f"{to_v} already serves {environment}")
            why = f"manual rollback{' by ' + actor if actor else ''}" + (f": {reason}" if reason else "")
            with self.store.db.transaction() as con:
                if latest is not None and latest["version_id"] == from_v and latest["state"] in (*ROLLING,
                                                                                                 "completed") \
                        and latest["previous_version_id"] == to_v:
                    self._roll_back(con, latest, why, actor, automatic=False)
                    effective = latest["deployment_id"]
                else:
                    if latest is not None and latest["version_id"] == from_v and latest["state"] in (
                            *ROLLING, "completed"):
                        self.store.update_deployment(con, latest["deployment_id"], state="rolled-back",
                                                     current_percentage=0.0, end_time=naive(self.clock()),
                                                     status_reason=f"{why} (to {to_v})")
                    effective = self._instant_deployment(con, agent_id, to_v, from_v, environment, "rollback", actor,
                                                         why, "" if environment == PRODUCTION else None)
                    self._retire(con, agent_id, from_v, "rolled-back", why, actor, effective)
                    if rolling and latest["previous_version_id"] not in ("", to_v):
                        self._retire(con, agent_id, latest["previous_version_id"], "archived",
                                     f"replaced by {to_v} in {environment} ({why})", actor, effective)
                    self.store.audit(con, "deployment.rolled_back", agent_id=agent_id, version_id=from_v,
                                     deployment_id=effective, actor=actor,
                                     message=f"{from_v} rolled back in {environment} to {to_v}: {why}",
                                     details={"automatic": False, "reason": why, "current_version_id": to_v})
            self.router.invalidate(agent_id)
            return from_v, to_v, self.store.get_deployment(effective)

    def _older_version(self, agent_id: str, version_id: str) -> str | None:
        row = self.store.find_version(agent_id, version_id)
        if row is None:
            return None
        rows = self.store.db.query(
            "SELECT version_id FROM versions WHERE agent_id = ? AND (major, minor, patch) < (?, ?, ?) "
            "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1", [agent_id, row["major"], row["minor"], row["patch"]])
        return rows[0][0] if rows else None

    def _instant_deployment(self, con: duckdb.DuckDBPyConnection, agent_id: str, version_id: str, previous: str,
                            environment: str, source: str, actor: str, reason: str,
                            provider_model: str | None = None) -> str:
        """A COMPLETED immediate deployment recording that `version_id` now serves the environment."""
        t = self.clock()
        deployment_id = random_id("deploy", 12)
        self.store.add_deployment(con, {
            "deployment_id": deployment_id, "agent_id": agent_id, "version_id": version_id,
            "previous_version_id": previous, "environment": environment,
            "plan_json": json.dumps(RolloutPlan(IMMEDIATE, (100.0,), 0.0).to_dict()),
            "guard_json": json.dumps(GuardPolicy().to_dict()), "state": "completed", "current_percentage": 100.0,
            "step_index": 0, "create_time": naive(t), "estimated_completion": naive(t), "end_time": naive(t),
            "update_time": naive(t), "status_reason": reason, "source": source, "actor": actor})
        self.store.set_serving(con, agent_id, environment, version_id, provider_model)
        self._promote(con, agent_id, version_id, environment, reason, actor, deployment_id)
        self.store.audit(con, "deployment.completed", agent_id=agent_id, version_id=version_id,
                         deployment_id=deployment_id, actor=actor,
                         message=f"{version_id} serves 100% of {environment} ({reason})",
                         details={"source": source, "previous_version_id": previous})
        return deployment_id

    def serve_first(self, version: dict[str, Any]) -> bool:
        """The first-version rule (module doc): True when `version` now serves production."""
        agent_id, version_id = version["agent_id"], version["version_id"]
        with self._lock:
            agent = self.store.get_agent(agent_id)
            if agent.get("serve_first_version") is False or self.serving_version(agent_id, PRODUCTION):
                return False
            latest = self.store.latest_deployment(agent_id, PRODUCTION)
            if latest is not None and latest["state"] in ROLLING:
                return False
            with self.store.db.transaction() as con:
                self._instant_deployment(con, agent_id, version_id, "", PRODUCTION, "first-version", "",
                                         "first version of the agent (serve_first_version)")
            self.router.invalidate(agent_id)
            return True

    def promote(self, version: dict[str, Any], reason: str, actor: str) -> str:
        """Let a version that passed the promotion gate serve production now; '' when it does, else
        why it cannot (a rollout in progress decides what serves until it ends)."""
        agent_id, version_id = version["agent_id"], version["version_id"]
        with self._lock:
            latest = self.store.latest_deployment(agent_id, PRODUCTION)
            if latest is not None and latest["state"] in ROLLING:
                return (f"deployment {latest['deployment_id']} of {latest['version_id']} is rolling out; a promotion "
                        "does not interrupt it")
            self._check_artifact(version)
            previous = self.serving_version(agent_id, PRODUCTION)
            with self.store.db.transaction() as con:
                effective = self._instant_deployment(con, agent_id, version_id, previous, PRODUCTION, "promotion",
                                                     actor, reason)
                if previous and previous != version_id:
                    self._retire(con, agent_id, previous, "archived", f"replaced by {version_id} (promotion gate)",
                                 actor, effective)
            self.router.invalidate(agent_id)
            return ""

    def adopt_implicit_serving(self) -> int:
        """Registries from before explicit serving let production serve an agent's newest version
        when nothing was deployed. Make that explicit once (a first-version deployment of the
        newest version), so upgrading changes nothing that serves; how many agents were adopted."""
        rows = self.store.db.query(
            "SELECT a.agent_id FROM agents a WHERE a.active_version_id IS NULL "
            "AND EXISTS (SELECT 1 FROM versions v WHERE v.agent_id = a.agent_id) "
            "AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.agent_id = a.agent_id AND d.environment = ?)",
            [PRODUCTION])
        for (agent_id,) in rows:
            newest = self.store.newest_version(agent_id)
            with self._lock, self.store.db.transaction() as con:
                self._instant_deployment(con, agent_id, newest["version_id"], "", PRODUCTION, "first-version", "",
                                         "served implicitly as the newest version before serving was explicit")
            self.router.invalidate(agent_id)
        return len(rows)

    def serving_status(self, version: dict[str, Any], routes: dict[str, Any] | None = None) -> tuple[str, str]:
        """(serving | canary | staging | registered | retired, why) for one version, from the routes
        in effect (`routes` caches them per (agent, environment) across a listing)."""
        agent_id, version_id = version["agent_id"], version["version_id"]
        routes = {} if routes is None else routes

        def route(env: str) -> Any:
            if (agent_id, env) not in routes:
                routes[(agent_id, env)] = self.router.route(agent_id, env)
            return routes[(agent_id, env)]

        reason = version.get("status_reason") or ""
        prod = route(PRODUCTION)
        if prod.candidate is not None and prod.candidate.version_id == version_id:
            if prod.percentage >= 100:
                return "serving", reason
            return "canary", f"candidate of {prod.deployment_id} at {prod.percentage:g}% of production"
        if prod.stable is not None and prod.stable.version_id == version_id:
            return "serving", reason
        staging = route(STAGING)
        if version_id in {s.version_id for s in (staging.stable, staging.candidate) if s is not None}:
            return "staging", reason
        if version["state"] in ("archived", "rolled-back"):
            return "retired", reason
        return "registered", reason or "never deployed: it serves only after a deploy, an activation or a promotion"

    def activate(self, version: dict[str, Any], provider_model: str, actor: str) -> dict[str, Any] | None:
        """Make `version` what production serves, now; the deployment in effect afterwards."""
        agent_id, version_id = version["agent_id"], version["version_id"]
        with self._lock:
            self._check_artifact(version)
            latest = self.store.latest_deployment(agent_id, PRODUCTION)
            why = f"activated{' by ' + actor if actor else ''}"
            with self.store.db.transaction() as con:
                previous = self.serving_version(agent_id, PRODUCTION)
                if latest is not None and latest["state"] in ROLLING:
                    self.store.update_deployment(con, latest["deployment_id"], state="superseded",
                                                 end_time=naive(self.clock()),
                                                 status_reason=f"superseded: {version_id} {why}")
                    self.store.audit(con, "deployment.superseded", agent_id=agent_id,
                                     version_id=latest["version_id"], deployment_id=latest["deployment_id"],
                                     actor=actor, message=f"rollout of {latest['version_id']} superseded: "
                                                          f"{version_id} {why}")
                    previous = latest["previous_version_id"]
                    if latest["version_id"] != version_id:
                        self.store.set_serving(con, agent_id, PRODUCTION, previous or None)
                        self._retire(con, agent_id, latest["version_id"], "archived",
                                     f"rollout superseded by the activation of {version_id}", actor,
                                     latest["deployment_id"])
                explicit = latest is not None and latest["state"] not in ROLLING
                if previous == version_id and explicit:
                    self.store.set_serving(con, agent_id, PRODUCTION, version_id, provider_model)
                    effective = latest["deployment_id"]
                else:
                    effective = self._instant_deployment(con, agent_id, version_id, previous, PRODUCTION, "activate",
                                                         actor, why, provider_model)
                    if previous and previous != version_id:
                        self._retire(con, agent_id, previous, "archived", f"replaced by {version_id} ({why})", actor,
                                     effective)
                self.store.audit(con, "agent.activated", agent_id=agent_id, version_id=version_id,
                                 deployment_id=effective, actor=actor,
                                 message=f"{version_id} is the active model of {agent_id}"
                                         + (f" (provider model '{provider_model}')" if provider_model else ""),
                                 details={"provider_model": provider_model, "previous_version_id": previous})
            self.router.invalidate(agent_id)
            return self.store.get_deployment(effective)
