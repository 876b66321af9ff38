"""ModelRegistry state in its own DuckDB file.

Agents and their immutable versions (artifacts live beside the file under
$TRAINHOUSE_HOME/registry/artifacts/<agent>/<sha256>.onnx, named by content hash so a served file
can always be checked against its record), aliases, deployments, served predictions, feedback,
the audit trail and Ollama imports. (Auto-training's config and runs are TrainingService's; the
tables of registries from before the move stay in old files, unread.)

Only SQL lives here; the rules (what a deployment may do, when to roll back) live in
deployments.py. Times are stored as naive UTC.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

import duckdb

from trainhouse.common import identity
from trainhouse.common.duckdb_store import DuckStore, insert_columns
from trainhouse.common.pagination import Order, Page, PageRequest, SortKey, fetch_page
from trainhouse.core.errors import AlreadyExists, NotFound, PermissionDenied
from trainhouse.common.timeutil import now
from trainhouse.registry.versioning import Bump, next_version, parse_version

# Restricts a query over a table with an agent_id column to the agents of one account.
_OF_ACCOUNT = "{col} IN (SELECT agent_id FROM agents WHERE coalesce(account_id, 'default') = ?)"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS agents (
        agent_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        description VARCHAR,
        active_version_id VARCHAR,
        create_time TIMESTAMP NOT NULL,
        update_time TIMESTAMP NOT NULL
    )""",
    "ALTER TABLE agents ADD COLUMN IF NOT EXISTS staging_version_id VARCHAR",
    "ALTER TABLE agents ADD COLUMN IF NOT EXISTS active_provider_model VARCHAR",
    # NULL (agents from before the column) reads as true: the documented default.
    "ALTER TABLE agents ADD COLUMN IF NOT EXISTS serve_first_version BOOLEAN",
    # The owning account (project): the isolation boundary (services.common.identity).
    "ALTER TABLE agents ADD COLUMN IF NOT EXISTS account_id VARCHAR DEFAULT 'default'",
    """CREATE TABLE IF NOT EXISTS versions (
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        ordinal INTEGER NOT NULL,
        state VARCHAR NOT NULL,
        metrics_json VARCHAR,
        config_json VARCHAR,
        job_id VARCHAR,
        dataset_id VARCHAR,
        parent_version_id VARCHAR,
        method VARCHAR,
        labels_json VARCHAR,
        featurizer_json VARCHAR,
        size_bytes BIGINT,
        sha256 VARCHAR,
        path VARCHAR,
        create_time TIMESTAMP NOT NULL,
        PRIMARY KEY (agent_id, version_id)
    )""",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS major INTEGER",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS minor INTEGER",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS patch INTEGER",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS tags_json VARCHAR",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS bump_reason VARCHAR",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS status_reason VARCHAR",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS update_time TIMESTAMP",
    # The promotion gate's decision (gate.Decision as JSON), when the registration asked for one.
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS promotion_json VARCHAR",
    # Lineage of a version made from a job's checkpoint (TrainingService.RegisterCheckpoint); NULL
    # for a job's final model. (job_id, checkpoint_id, checkpoint_step) names one version.
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS checkpoint_id VARCHAR",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS checkpoint_step BIGINT",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS checkpoint_epoch INTEGER",
    "ALTER TABLE versions ADD COLUMN IF NOT EXISTS checkpoint_kind VARCHAR",
    # Examples sent with a registration: "holdout" (never trained on) and "demonstration".
    """CREATE TABLE IF NOT EXISTS version_examples (
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        examples_json VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS aliases (
        agent_id VARCHAR NOT NULL,
        alias VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        update_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS predictions (
        prediction_id VARCHAR PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        deployment_id VARCHAR,
        arm VARCHAR,
        environment VARCHAR,
        request_key VARCHAR,
        input VARCHAR,
        output VARCHAR,
        probability DOUBLE,
        latency_ms DOUBLE,
        create_time TIMESTAMP NOT NULL
    )""",
    # A prediction the version failed to serve (exception, invalid output, deadline passed): why.
    "ALTER TABLE predictions ADD COLUMN IF NOT EXISTS error VARCHAR",
    """CREATE TABLE IF NOT EXISTS feedback (
        feedback_id VARCHAR PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        prediction_id VARCHAR,
        version_id VARCHAR,
        deployment_id VARCHAR,
        arm VARCHAR,
        correct BOOLEAN NOT NULL,
        expected_output VARCHAR,
        input VARCHAR,
        served_output VARCHAR,
        latency_ms DOUBLE,
        server_latency_ms DOUBLE,
        create_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS deployments (
        deployment_id VARCHAR NOT NULL,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        previous_version_id VARCHAR,
        environment VARCHAR NOT NULL,
        plan_json VARCHAR NOT NULL,
        guard_json VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        current_percentage DOUBLE NOT NULL,
        step_index INTEGER NOT NULL,
        create_time TIMESTAMP NOT NULL,
        estimated_completion TIMESTAMP,
        end_time TIMESTAMP,
        update_time TIMESTAMP NOT NULL,
        status_reason VARCHAR,
        source VARCHAR,
        actor VARCHAR
    )""",
    "CREATE SEQUENCE IF NOT EXISTS audit_seq START 1",
    """CREATE TABLE IF NOT EXISTS audit_events (
        seq BIGINT NOT NULL,
        event_id VARCHAR NOT NULL,
        time TIMESTAMP NOT NULL,
        agent_id VARCHAR,
        kind VARCHAR NOT NULL,
        version_id VARCHAR,
        deployment_id VARCHAR,
        actor VARCHAR,
        message VARCHAR,
        details_json VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS ollama_imports (
        import_id VARCHAR NOT NULL,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        ollama_name VARCHAR NOT NULL,
        base_model VARCHAR NOT NULL,
        ollama_url VARCHAR NOT NULL,
        system_prompt VARCHAR,
        demonstration_count INTEGER,
        import_time TIMESTAMP NOT NULL
    )""",
]


def naive(value: dt.datetime | None = None) -> dt.datetime:
    """UTC without tzinfo, as stored."""
    value = value or now()
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))


def loads(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default


def json_pointer(key: str) -> str:
    """The JSON pointer of a top-level key (any text: "~" and "/" escaped), for DuckDB's json functions."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


_NUMERIC_JSON = "('DOUBLE', 'BIGINT', 'UBIGINT')"


def version_order(key: str, descending: bool) -> Order:
    """The keyset order of ListVersions' order_by key ("create_time", "version_id" or "metrics.<name>").

    Every order ends in (agent_id, version_id), unique per version. Semantic order compares
    (major, minor, patch) numerically. A metric order puts versions without a numeric value of the
    metric last in either direction; ties and those versions follow create_time the same way."""
    semver = [SortKey(f"coalesce(v.{part}, 0)", descending, int) for part in ("major", "minor", "patch")]
    ids = [SortKey("v.agent_id", descending), SortKey("v.version_id", descending)]
    created = SortKey("v.create_time", descending, dt.datetime)
    if key == "create_time":
        return Order((created, ids[0], *semver, ids[1]))
    if key == "version_id":
        return Order((ids[0], *semver, ids[1]))
    pointer = json_pointer(key.removeprefix("metrics."))
    has = f"coalesce(json_type(v.metrics_json, ?) IN {_NUMERIC_JSON}, FALSE)"
    return Order((SortKey(f"CASE WHEN {has} THEN 0 ELSE 1 END", kind=int, params=(pointer,)),
                  SortKey(f"CASE WHEN {has} THEN CAST(json_extract(v.metrics_json, ?) AS DOUBLE) ELSE 0 END",
                          descending, float, (pointer, pointer)),
                  created, *ids))


def _insert(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    cols = ", ".join(row)
    con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


class RegistryStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)
        self._backfill_semver()
        self._owners: dict[str, str] = {}  # agent id -> account (an agent never changes account)

    def close(self) -> None:
        self.db.close()

    def _backfill_semver(self) -> None:
        """Rows written before the semver columns existed get them from their id."""
        for agent_id, version_id in self.db.query("SELECT agent_id, version_id FROM versions WHERE major IS NULL"):
            parsed = parse_version(version_id) or (1, 0, 0)
            self.db.execute("UPDATE versions SET major = ?, minor = ?, patch = ? WHERE agent_id = ? AND version_id = ?",
                            [*parsed, agent_id, version_id])

    # ---- audit -------------------------------------------------------------------------------
    def audit(self, con: duckdb.DuckDBPyConnection, kind: str, *, agent_id: str = "", version_id: str = "",
              deployment_id: str = "", actor: str = "", message: str = "",
              details: dict[str, Any] | None = None, time: dt.datetime | None = None) -> None:
        """Append an audit event inside the caller's transaction (the change and its record commit together)."""
        seq = con.execute("SELECT nextval('audit_seq')").fetchone()[0]
        _insert(con, "audit_events", {
            "seq": seq, "event_id": f"evt-{seq:08d}-{uuid.uuid4().hex[:6]}", "time": naive(time),
            "agent_id": agent_id, "kind": kind, "version_id": version_id, "deployment_id": deployment_id,
            "actor": actor, "message": message, "details_json": json.dumps(details or {}, default=str)})

    def list_audit(self, agent_id: str, deployment_id: str, version_id: str, kind: str, page: PageRequest) -> Page:
        """A keyset page of audit events, newest first (seq is drawn from a sequence: unique)."""
        where, params = [], []
        for col, value in (("agent_id", agent_id), ("deployment_id", deployment_id), ("version_id", version_id)):
            if value:
                where.append(f"{col} = ?")
                params.append(value)
        if kind:
            where.append("starts_with(kind, ?)")
            params.append(kind)
        self._account_where(where, params, "agent_id")
        return fetch_page(self.db, "audit_events", where, params, Order((SortKey("seq", True, int),)), page)

    # ---- accounts ----------------------------------------------------------------------------
    # An account (project) is the isolation boundary: a caller sees only its own account's agents
    # and everything under them (versions, aliases, deployments, predictions, feedback, audit);
    # admin sees every account. Another account's agent is NOT_FOUND exactly like an unknown id.
    def agent_owner(self, agent_id: str) -> str | None:
        """The account owning `agent_id`, None when there is no such agent (cached: never changes)."""
        owner = self._owners.get(agent_id)
        if owner is None:
            rows = self.db.query("SELECT coalesce(account_id, ?) FROM agents WHERE agent_id = ?",
                                 [identity.DEFAULT_ACCOUNT, agent_id])
            if not rows:
                return None
            owner = self._owners[agent_id] = rows[0][0]
        return owner

    def agent_owners(self) -> list[tuple[str, str]]:
        """Every agent with its account, for the serving feed (replicas.py; an internal caller's, so
        no account filter)."""
        rows = self.db.query("SELECT agent_id, coalesce(account_id, ?) FROM agents ORDER BY agent_id",
                             [identity.DEFAULT_ACCOUNT])
        return [(agent_id, owner) for agent_id, owner in rows]

    def visible_agent(self, agent_id: str) -> None:
        """The one visibility check of the registry: NOT_FOUND (the same error as for an unknown id)
        unless the agent exists and the caller being served sees its account."""
        owner = self.agent_owner(agent_id)
        if owner is None or not identity.current().sees(owner):
            raise NotFound("agent", agent_id)

    @staticmethod
    def _account_where(where: list[str], params: list[Any], col: str) -> None:
        """Restrict a listing to the caller's account (nothing for admin)."""
        account = identity.current().account_filter
        if account is not None:
            where.append(_OF_ACCOUNT.format(col=col))
            params.append(account)

    # ---- agents ------------------------------------------------------------------------------
    _AGENT_COLUMNS = "a.*, (SELECT count(*) FROM versions v WHERE v.agent_id = a.agent_id) AS version_count"
    _AGENT_SQL = f"SELECT {_AGENT_COLUMNS} FROM agents a"

    def create_agent(self, agent_id: str, name: str, description: str,
                     serve_first_version: bool = True, account: str = "") -> dict[str, Any]:
        """Create an agent owned by the caller's account; admin may name another `account` (a job an
        admin starts for an account creates that account's agent), anyone else is PERMISSION_DENIED.

        Agent ids are global (they name artifact folders and model ids): an id already used by
        another account is ALREADY_EXISTS "agent id 'x' is taken; choose another id", which says
        nothing about the other agent beyond the id being used."""
        caller = identity.current()
        if account and account != caller.account and not caller.is_admin:
            raise PermissionDenied("account_id must be your own account", field="account_id")
        account = caller.owner_for(account)
        with self.db.transaction() as con:
            existing = con.execute("SELECT coalesce(account_id, ?) FROM agents WHERE agent_id = ?",
                                   [identity.DEFAULT_ACCOUNT, agent_id]).fetchone()
            if existing:
                if not caller.sees(existing[0]):
                    raise AlreadyExists(f"agent id '{agent_id}' is taken; choose another id",
                                        metadata={"resource": "agent", "id": agent_id})
                raise AlreadyExists(f"agent '{agent_id}' already exists", metadata={"resource": "agent", "id": agent_id})
            t = naive()
            con.execute("INSERT INTO agents (agent_id, name, description, active_version_id, create_time, update_time, "
                        "serve_first_version, account_id) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
                        [agent_id, name, description, t, t, serve_first_version, account])
            self.audit(con, "agent.created", agent_id=agent_id, message=f"agent '{agent_id}' created",
                       details={"name": name, "serve_first_version": serve_first_version, "account": account})
        return self.get_agent(agent_id)

    def update_agent(self, agent_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        """Set the given columns (name, description, serve_first_version) and audit the change."""
        self.visible_agent(agent_id)
        with self.db.transaction() as con:
            before = con.execute("SELECT name, description, serve_first_version FROM agents WHERE agent_id = ?",
                                 [agent_id]).fetchone()
            if before is None:
                raise NotFound("agent", agent_id)
            if changes:
                sets = ", ".join(f"{col} = ?" for col in changes)
                con.execute(f"UPDATE agents SET {sets}, update_time = ? WHERE agent_id = ?",
                            [*changes.values(), naive(), agent_id])
                old = dict(zip(("name", "description", "serve_first_version"), before))
                self.audit(con, "agent.updated", agent_id=agent_id, actor=actor,
                           message=f"agent '{agent_id}' updated: " + ", ".join(sorted(changes)),
                           details={"from": {k: old[k] for k in changes}, "to": changes})
        return self.get_agent(agent_id)

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        """The agent row; NOT_FOUND when unknown or not visible to the caller (visible_agent)."""
        self.visible_agent(agent_id)
        rows = self.db.query_dicts(f"{self._AGENT_SQL} WHERE agent_id = ?", [agent_id])
        if not rows:
            raise NotFound("agent", agent_id)
        return rows[0]

    def list_agents(self, page: PageRequest) -> Page:
        """A keyset page of agents by (create_time, agent_id), oldest first."""
        order = Order((SortKey("a.create_time", kind=dt.datetime), SortKey("a.agent_id")))
        where: list[str] = []
        params: list[Any] = []
        self._account_where(where, params, "a.agent_id")
        return fetch_page(self.db, "agents a", where, params, order, page, columns=self._AGENT_COLUMNS)

    def set_serving(self, con: duckdb.DuckDBPyConnection, agent_id: str, environment: str, version_id: str | None,
                    provider_model: str | None = None) -> None:
        """Record what serves an environment. In production the provider model named at activation
        is kept only while the same version stays active (None: keep it if the version is unchanged)."""
        if environment != "production":
            con.execute("UPDATE agents SET staging_version_id = ?, update_time = ? WHERE agent_id = ?",
                        [version_id, naive(), agent_id])
            return
        current = con.execute("SELECT active_version_id, active_provider_model FROM agents WHERE agent_id = ?",
                              [agent_id]).fetchone()
        if provider_model is None:
            provider_model = current[1] if current and current[0] == version_id else None
        con.execute("UPDATE agents SET active_version_id = ?, active_provider_model = ?, update_time = ? "
                    "WHERE agent_id = ?", [version_id, provider_model or None, naive(), agent_id])

    # ---- versions ----------------------------------------------------------------------------
    def version_for_job(self, agent_id: str, job_id: str, checkpoint_id: str = "",
                        checkpoint_step: int = 0) -> dict[str, Any] | None:
        """The version registered for the job's final model (no checkpoint named), else for that
        checkpoint of the job at that step: the key a retried registration is answered by."""
        if not checkpoint_id:
            rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND job_id = ? "
                                       "AND coalesce(checkpoint_id, '') = ''", [agent_id, job_id])
        else:
            rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND job_id = ? AND checkpoint_id = ? "
                                       "AND checkpoint_step = ?", [agent_id, job_id, checkpoint_id, checkpoint_step])
        return rows[0] if rows else None

    def add_version(self, row: dict[str, Any], labels: Sequence[str]) -> tuple[dict[str, Any], Bump]:
        """Assign the next semantic version id (versioning.py) and insert, atomically per agent."""
        with self.db.transaction() as con:
            newest = con.execute(
                "SELECT version_id, labels_json FROM versions WHERE agent_id = ? "
                "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1", [row["agent_id"]]).fetchone()
            bump = next_version(newest[0] if newest else None, loads(newest[1], []) if newest else [], labels,
                                row.get("method") or "", row.get("parent_version_id") or "")
            ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM versions WHERE agent_id = ?",
                                  [row["agent_id"]]).fetchone()[0]
            t = naive()
            full = {**row, "version_id": bump.version_id, "ordinal": ordinal, "state": "registered",
                    "major": bump.major, "minor": bump.minor, "patch": bump.patch, "bump_reason": bump.reason,
                    "tags_json": "{}", "status_reason": "", "create_time": t, "update_time": t}
            _insert(con, "versions", full)
            con.execute("UPDATE agents SET update_time = ? WHERE agent_id = ?", [t, row["agent_id"]])
            self.audit(con, "version.registered", agent_id=row["agent_id"], version_id=bump.version_id,
                       message=f"{bump.version_id} registered ({bump.reason})",
                       details={"job_id": row.get("job_id"), "sha256": row.get("sha256"), "bump": bump.reason})
        return self.get_version(row["agent_id"], bump.version_id), bump

    def get_version(self, agent_id: str, version_id: str) -> dict[str, Any]:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND version_id = ?",
                                   [agent_id, version_id])
        if not rows:
            raise NotFound("version", f"{agent_id}/{version_id}")
        return rows[0]

    def find_version(self, agent_id: str, version_id: str) -> dict[str, Any] | None:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND version_id = ?",
                                   [agent_id, version_id])
        return rows[0] if rows else None

    def newest_version(self, agent_id: str) -> dict[str, Any] | None:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? "
                                   "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1", [agent_id])
        return rows[0] if rows else None

    def list_versions(self, page: PageRequest, order: Order, *, agent_id: str, state: str, alias: str,
                      tag: str) -> Page:
        """A keyset page of the versions matching the filters, in `order` (see version_order)."""
        where, params = [], []
        if agent_id:
            where.append("v.agent_id = ?")
            params.append(agent_id)
        if state:
            where.append("v.state = ?")
            params.append(state)
        if alias:
            where.append("EXISTS (SELECT 1 FROM aliases a WHERE a.agent_id = v.agent_id "
                         "AND a.version_id = v.version_id AND a.alias = ?)")
            params.append(alias)
        if tag:  # "key" or "key=value"; tags_json is a flat object of strings
            key, has_value, value = tag.partition("=")
            if has_value:
                where.append("json_extract_string(v.tags_json, ?) = ?")
                params += [json_pointer(key), value]
            else:
                where.append("coalesce(json_exists(v.tags_json, ?), FALSE)")
                params.append(json_pointer(key))
        self._account_where(where, params, "v.agent_id")
        return fetch_page(self.db, "versions v", where, params, order, page, columns="v.*")

    def set_version_state(self, con: duckdb.DuckDBPyConnection, agent_id: str, version_id: str, state: str,
                          reason: str, actor: str = "", deployment_id: str = "") -> None:
        old = con.execute("SELECT state FROM versions WHERE agent_id = ? AND version_id = ?",
                          [agent_id, version_id]).fetchone()
        if old is None or old[0] == state:
            return
        con.execute("UPDATE versions SET state = ?, status_reason = ?, update_time = ? "
                    "WHERE agent_id = ? AND version_id = ?", [state, reason, naive(), agent_id, version_id])
        self.audit(con, "version.status_changed", agent_id=agent_id, version_id=version_id,
                   deployment_id=deployment_id, actor=actor, message=f"{version_id}: {old[0]} -> {state} ({reason})",
                   details={"from": old[0], "to": state, "reason": reason})

    def update_tags(self, agent_id: str, version_id: str, tags: dict[str, str], actor: str,
                    change: dict[str, Any]) -> None:
        with self.db.transaction() as con:
            con.execute("UPDATE versions SET tags_json = ?, update_time = ? WHERE agent_id = ? AND version_id = ?",
                        [json.dumps(tags), naive(), agent_id, version_id])
            self.audit(con, "version.tags_updated", agent_id=agent_id, version_id=version_id, actor=actor,
                       message=f"tags of {version_id} updated", details=change)

    # ---- aliases -----------------------------------------------------------------------------
    def alias_target(self, agent_id: str, alias: str) -> str | None:
        rows = self.db.query("SELECT version_id FROM aliases WHERE agent_id = ? AND alias = ?", [agent_id, alias])
        return rows[0][0] if rows else None

    def aliases_of(self, agent_ids: Iterable[str]) -> dict[tuple[str, str], list[str]]:
        ids = sorted(set(agent_ids))
        if not ids:
            return {}
        rows = self.db.query(f"SELECT agent_id, version_id, alias FROM aliases WHERE agent_id IN "
                             f"({', '.join('?' for _ in ids)}) ORDER BY alias", ids)
        out: dict[tuple[str, str], list[str]] = {}
        for agent_id, version_id, alias in rows:
            out.setdefault((agent_id, version_id), []).append(alias)
        return out

    def put_version_examples(self, agent_id: str, version_id: str, kind: str, examples: list[dict[str, Any]]) -> None:
        with self.db.transaction() as con:
            con.execute("DELETE FROM version_examples WHERE agent_id = ? AND version_id = ? AND kind = ?",
                        [agent_id, version_id, kind])
            con.execute("INSERT INTO version_examples VALUES (?, ?, ?, ?)",
                        [agent_id, version_id, kind, json.dumps(examples)])

    def version_examples(self, agent_id: str, version_id: str, kind: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT examples_json FROM version_examples WHERE agent_id = ? AND version_id = ? "
                             "AND kind = ?", [agent_id, version_id, kind])
        return loads(rows[0][0], []) if rows else []

    def record_promotion(self, agent_id: str, version_id: str, decision: dict[str, Any]) -> None:
        """Store the gate's decision on the version, with its audit event, in one transaction."""
        kind = "model.promoted" if decision["outcome"] == "promoted" else "model.promotion_rejected"
        with self.db.transaction() as con:
            con.execute("UPDATE versions SET promotion_json = ?, update_time = ? WHERE agent_id = ? AND version_id = ?",
                        [json.dumps(decision), naive(), agent_id, version_id])
            self.audit(con, kind, agent_id=agent_id, version_id=version_id, actor=decision["requested_by"],
                       message=f"{version_id} {decision['outcome']}: {decision['reason']}", details=decision)

    def list_aliases(self, agent_id: str) -> list[dict[str, Any]]:
        return self.db.query_dicts("SELECT alias, version_id, update_time FROM aliases WHERE agent_id = ? "
                                   "ORDER BY alias", [agent_id])

    def set_alias(self, agent_id: str, alias: str, version_id: str, actor: str) -> str | None:
        with self.db.transaction() as con:
            old = con.execute("SELECT version_id FROM aliases WHERE agent_id = ? AND alias = ?",
                              [agent_id, alias]).fetchone()
            con.execute("DELETE FROM aliases WHERE agent_id = ? AND alias = ?", [agent_id, alias])
            con.execute("INSERT INTO aliases VALUES (?, ?, ?, ?)", [agent_id, alias, version_id, naive()])
            self.audit(con, "version.alias_set", agent_id=agent_id, version_id=version_id, actor=actor,
                       message=f"alias '{alias}' -> {version_id}" + (f" (was {old[0]})" if old else ""),
                       details={"alias": alias, "previous_version_id": old[0] if old else None})
        return old[0] if old else None

    def delete_alias(self, agent_id: str, alias: str, actor: str) -> str:
        with self.db.transaction() as con:
            old = con.execute("SELECT version_id FROM aliases WHERE agent_id = ? AND alias = ?",
                              [agent_id, alias]).fetchone()
            if old is None:
                raise NotFound("alias", f"{agent_id}/{alias}")
            con.execute("DELETE FROM aliases WHERE agent_id = ? AND alias = ?", [agent_id, alias])
            self.audit(con, "version.alias_removed", agent_id=agent_id, version_id=old[0], actor=actor,
                       message=f"alias '{alias}' removed from {old[0]}", details={"alias": alias})
        return old[0]

    # ---- predictions and feedback --------------------------------------------------------------
    PREDICTION_COLUMNS = ("prediction_id", "agent_id", "version_id", "deployment_id", "arm", "environment",
                          "request_key", "input", "output", "probability", "latency_ms", "create_time", "error")

    def insert_predictions(self, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        columns = dict(zip(self.PREDICTION_COLUMNS, zip(*rows)))
        with self.db.transaction() as con:
            insert_columns(con, "predictions", columns)

    def get_prediction(self, prediction_id: str) -> dict[str, Any] | None:
        rows = self.db.query_dicts("SELECT * FROM predictions WHERE prediction_id = ?", [prediction_id])
        return rows[0] if rows else None

    def delete_predictions_before(self, cutoff: dt.datetime) -> None:
        """Retention: feedback keeps its own copy of what it judged, so old predictions can go."""
        self.db.execute("DELETE FROM predictions WHERE create_time < ?", [naive(cutoff)])

    def count_predictions(self, deployment_id: str) -> dict[str, int]:
        return {arm: n for arm, n in self.db.query(
            "SELECT arm, count(*) FROM predictions WHERE deployment_id = ? GROUP BY arm", [deployment_id])}

    def arm_failures(self, deployment_id: str, arm: str) -> int:
        """Predictions one arm of a deployment failed to serve."""
        return self.db.query("SELECT count(*) FROM predictions WHERE deployment_id = ? AND arm = ? "
                             "AND error IS NOT NULL", [deployment_id, arm])[0][0]

    def add_feedback(self, row: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as con:
            _insert(con, "feedback", row)
        return self.db.query_dicts("SELECT * FROM feedback WHERE feedback_id = ?", [row["feedback_id"]])[0]

    def list_feedback(self, agent_id: str, version_id: str, deployment_id: str, page: PageRequest) -> Page:
        """A keyset page of an agent's feedback, newest first (ties by feedback_id ascending)."""
        where, params = ["agent_id = ?"], [agent_id]
        for col, value in (("version_id", version_id), ("deployment_id", deployment_id)):
            if value:
                where.append(f"{col} = ?")
                params.append(value)
        order = Order((SortKey("create_time", True, dt.datetime), SortKey("feedback_id")))
        return fetch_page(self.db, "feedback", where, params, order, page)

    def arm_feedback(self, deployment_id: str, arm: str) -> tuple[int, int, list[float]]:
        """(records, incorrect, latencies) of one arm of a deployment; a record's latency is the
        client-reported one, else the server-side scoring time of the prediction it judges."""
        rows = self.db.query(
            "SELECT correct, coalesce(latency_ms, server_latency_ms) FROM feedback "
            "WHERE deployment_id = ? AND arm = ?", [deployment_id, arm])
        return len(rows), sum(1 for c, _ in rows if not c), [float(x) for _, x in rows if x is not None]

    def count_feedback(self, agent_id: str, since: dt.datetime | None, before: dt.datetime | None) -> int:
        """An agent's feedback records created in [since, before) (either end open when None)."""
        where, params = ["agent_id = ?"], [agent_id]
        for clause, value in (("create_time >= ?", since), ("create_time < ?", before)):
            if value is not None:
                where.append(clause)
                params.append(naive(value))
        return self.db.query(f"SELECT count(*) FROM feedback WHERE {' AND '.join(where)}", params)[0][0]

    # ---- deployments -------------------------------------------------------------------------
    def add_deployment(self, con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
        _insert(con, "deployments", row)

    def update_deployment(self, con: duckdb.DuckDBPyConnection, deployment_id: str, **fields: Any) -> None:
        fields["update_time"] = naive()
        sets = ", ".join(f"{k} = ?" for k in fields)
        con.execute(f"UPDATE deployments SET {sets} WHERE deployment_id = ?", [*fields.values(), deployment_id])

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        """The deployment; NOT_FOUND when unknown or its agent is not visible to the caller."""
        rows = self.db.query_dicts("SELECT * FROM deployments WHERE deployment_id = ?", [deployment_id])
        if not rows or not identity.current().sees(self.agent_owner(rows[0]["agent_id"]) or ""):
            raise NotFound("deployment", deployment_id)
        return rows[0]

    def latest_deployment(self, agent_id: str, environment: str) -> dict[str, Any] | None:
        """The deployment in effect for an environment: the newest one that was not superseded."""
        rows = self.db.query_dicts(
            "SELECT * FROM deployments WHERE agent_id = ? AND environment = ? AND state != 'superseded' "
            "ORDER BY create_time DESC, deployment_id DESC LIMIT 1", [agent_id, environment])
        return rows[0] if rows else None

    def rolling_out(self) -> list[dict[str, Any]]:
        return self.db.query_dicts("SELECT * FROM deployments WHERE state IN ('rolling-out', 'inconclusive')")

    def list_deployments(self, agent_id: str, environment: str, state: str, page: PageRequest) -> Page:
        """A keyset page of deployments by (create_time, deployment_id), newest first."""
        where, params = [], []
        for col, value in (("agent_id", agent_id), ("environment", environment), ("state", state)):
            if value:
                where.append(f"{col} = ?")
                params.append(value)
        self._account_where(where, params, "agent_id")
        order = Order((SortKey("create_time", True, dt.datetime), SortKey("deployment_id", True)))
        return fetch_page(self.db, "deployments", where, params, order, page)

    # ---- Ollama imports ----------------------------------------------------------------------
    def add_ollama_import(self, row: dict[str, Any], actor: str) -> dict[str, Any]:
        with self.db.transaction() as con:
            _insert(con, "ollama_imports", row)
            self.audit(con, "ollama.imported", agent_id=row["agent_id"], version_id=row["version_id"], actor=actor,
                       message=f"{row['version_id']} imported into Ollama as '{row['ollama_name']}' "
                               f"over '{row['base_model']}'",
                       details={"import_id": row["import_id"], "ollama_url": row["ollama_url"],
                                "demonstration_count": row["demonstration_count"]})
        return row

    # ---- stats -------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counts over the caller's account (every account for admin)."""
        account = identity.current().account_filter
        cond, params = ("TRUE", []) if account is None else (_OF_ACCOUNT.format(col="agent_id"), [account])

        def q(table: str, extra: str = "TRUE") -> int:
            return self.db.query(f"SELECT count(*) FROM {table} WHERE ({cond}) AND ({extra})", list(params))[0][0]
        return {
            "agent_count": q("agents"),
            "model_count": q("versions"),
            "deployed_model_count": q("versions", "state = 'deployed'"),
            "rolling_out_deployments": q("deployments", "state IN ('rolling-out', 'inconclusive')"),
            "prediction_count": q("predictions"),
            "feedback_count": q("feedback"),
            "ollama_imports": q("ollama_imports"),
        }
