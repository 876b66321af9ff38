"""Agents and their model versions: `agents`, `agents create`, `models [list]`, `models download`,
`models alias` (also `alias`), `predict`, `tag`, `register-checkpoint`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from typer.core import TyperGroup

from trainhouse.cli import output
from trainhouse.cli.errors import EPILOG, CliError, ExitCode
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.transport import connect

agents_app = typer.Typer(help="List and register agents.", epilog=EPILOG, invoke_without_command=True,
                         no_args_is_help=False)


@agents_app.callback()
@reports_errors
def agents(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="At most this many agents.")] = 100,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """List agents (or `agents create ID`)."""
    if ctx.invoked_subcommand is not None:
        return
    found = connect(url, token, timeout).list_agents(limit)
    rows = [(a["agent_id"], a["name"], a["active_version_id"] or "-", a["version_count"], output.when(a["created_at"]))
            for a in found]
    output.emit(as_json, {"agents": found}, lambda con: con.print(output.table(
        f"{len(found)} agent(s)", ["AGENT", "NAME", "ACTIVE VERSION", "VERSIONS", "CREATED"], rows)))


@agents_app.command("create")
@reports_errors
def create_agent(
    agent_id: Annotated[str, typer.Argument(metavar="ID", help="[A-Za-z0-9][A-Za-z0-9._-]{0,127}")],
    name: Annotated[str, typer.Option("--name", help="Human-readable name.")] = "",
    description: Annotated[str, typer.Option("--description", help="What the agent decides.")] = "",
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Register an agent (exit 7 when the id is taken)."""
    agent = connect(url, token, timeout).create_agent(agent_id, name, description)
    output.emit(as_json, agent, lambda con: con.print(f"created agent [bold]{agent['agent_id']}[/bold]"))


class ListByDefault(TyperGroup):
    """`models AGENT` keeps meaning `models list AGENT`: a first word that is not a subcommand
    (download, alias, list) goes to `list`. An agent named like a subcommand needs `models list NAME`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return super().parse_args(ctx, args)


models_app = typer.Typer(cls=ListByDefault, help="An agent's model versions: `models AGENT` lists them; "
                         "`models download`, `models alias`.", epilog=EPILOG, no_args_is_help=True)


@models_app.command("list", epilog=EPILOG)
@reports_errors
def models(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="At most this many versions.")] = 50,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """List an agent's model versions, newest first: which one serves and why, and their aliases."""
    versions = connect(url, token, timeout).list_versions(agent, limit)
    rows = [(v["version_id"], v["serving"] or "-", v["serving_reason"] or "-", ", ".join(v["aliases"] or []) or "-",
             v["state"], output.num(v["metrics"].get("validation_accuracy",
                                                                     v["metrics"].get("accuracy"))),
             output.num(v["metrics"].get("loss")), v["method"] or "-", v["job_id"] or "-",
             len(v["labels"]), output.when(v["created_at"])) for v in versions]
    output.emit(as_json, {"agent_id": agent, "versions": versions}, lambda con: con.print(output.table(
        f"{agent}: {len(versions)} version(s)",
        ["VERSION", "SERVING", "WHY", "ALIASES", "STATE", "ACC", "LOSS", "METHOD", "JOB", "OUTPUTS", "CREATED"],
        rows)))


@reports_errors
def predict(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    texts: Annotated[list[str], typer.Argument(metavar="TEXT...", help="One or more inputs to score.")],
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Pin a version or alias "
                                                                          "(default: what production serves).")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Score texts with the agent's serving model version."""
    result = connect(url, token, timeout).predict(agent, list(texts), version or "")

    def render(con) -> None:  # noqa: ANN001 - rich Console
        rows = [(p["input"], p["output"], output.num(p["probability"], 3),
                 ", ".join(f"{t['output']} {t['probability']:.3f}" for t in p["top"])) for p in result["predictions"]]
        con.print(output.table(f"{agent} {result['version_id']}", ["INPUT", "OUTPUT", "P", "TOP"], rows))

    output.emit(as_json, result, render)


@reports_errors
def register_checkpoint(
    job: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job whose checkpoint to register.")],
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-c", help="A checkpoint id (see the job's "
                                            "checkpoints), 'best' or 'last'.")] = "last",
    step: Annotated[Optional[int], typer.Option("--step", min=1, help="The checkpoint written after this many "
                                                "steps (instead of --checkpoint).")] = None,
    note: Annotated[str, typer.Option("--note", help="Kept as the version's tag 'note'.")] = "",
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Register a job's checkpoint (any job state, mid-run too) as a model version of its agent.

    Registering the same checkpoint again answers the same version. The version serves nothing
    until it is deployed (`trainhouse deploy`), unless it is the agent's first version."""
    v = connect(url, token, timeout).register_checkpoint(job, checkpoint, step, note)
    cp = v.get("checkpoint") or {}
    output.emit(as_json, v, lambda con: con.print(
        f"{v['agent_id']} [bold]{v['version_id']}[/bold] from {job} checkpoint {cp.get('checkpoint_id')} "
        f"(step {cp.get('step')}, epoch {cp.get('epoch')}): {v['serving'] or v['state']}"))


# ---- aliases and tags -----------------------------------------------------------------------

aliases_app = typer.Typer(help="Aliases of an agent's versions (champion, challenger): list, set or move, "
                               "delete. Predict takes '@alias'.", epilog=EPILOG, no_args_is_help=True)
models_app.add_typer(aliases_app, name="alias")  # `models alias ...` is the same group as `alias ...`


@aliases_app.command("list")
@reports_errors
def aliases(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """List an agent's aliases and the versions they name."""
    found = connect(url, token, timeout).list_aliases(agent)
    output.emit(as_json, {"agent_id": agent, "aliases": found}, lambda con: con.print(output.table(
        f"{agent}: {len(found)} alias(es)", ["ALIAS", "VERSION", "UPDATED"],
        [(a["alias"], a["version_id"], output.when(a["updated_at"])) for a in found])))


@aliases_app.command("set")
@reports_errors
def set_alias(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    alias: Annotated[str, typer.Argument(help="[a-z][a-z0-9_-]{0,63}, not 'latest'.")],
    version: Annotated[str, typer.Argument(help="The version the alias names from now on.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Point an alias at a version (creates or moves it; audited)."""
    moved = connect(url, token, timeout).set_alias(agent, alias, version)
    was = f" (was {moved['previous_version_id']})" if moved["previous_version_id"] else ""
    output.emit(as_json, moved, lambda con: con.print(f"{agent}@{alias} -> {moved['version_id']}{was}"))


@aliases_app.command("delete")
@reports_errors
def delete_alias(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    alias: Annotated[str, typer.Argument(help="The alias to delete.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Delete an alias (audited; exit 3 when it does not exist)."""
    gone = connect(url, token, timeout).delete_alias(agent, alias)
    output.emit(as_json, gone, lambda con: con.print(f"deleted {agent}@{alias} (named {gone['version_id']})"))


@reports_errors
def tag(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    version: Annotated[str, typer.Argument(help="Version id (or an alias).")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE to add or overwrite.")] = None,
    remove: Annotated[Optional[list[str]], typer.Option("--remove", help="A tag key to remove.")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Add, overwrite or remove a version's tags (audited)."""
    pairs: dict[str, str] = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{item}': expected KEY=VALUE", param_hint="--set")
        pairs[key] = value
    version_record = connect(url, token, timeout).update_tags(agent, version, pairs, list(remove or []))
    output.emit(as_json, version_record, lambda con: con.print(
        f"{agent} {version_record['version_id']} tags: "
        + (", ".join(f"{k}={v}" for k, v in version_record["tags"].items()) or "none")))


@models_app.command("download", epilog=EPILOG)
@reports_errors
def download(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    version: Annotated[Optional[str], typer.Argument(metavar="[VERSION|@ALIAS]", help="Version id, '@alias' or "
                                                     "'latest' (default: the version production serves).")] = None,
    out: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False, help="Write the ONNX file here "
                                                "(default: <agent>-<version>.onnx).")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Download a version's ONNX model, exactly the registered bytes (checked against its sha256)."""
    import hashlib

    record, content = connect(url, token, timeout).download(agent, version or "")
    path = out or Path(f"{agent}-{record['version_id']}.onnx")
    partial = path.with_name(f".{path.name}.partial")
    try:  # never leave half a model under the final name
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(ExitCode.USAGE, f"cannot write {path}: {exc.strerror}", field="--output") from None
    summary: dict[str, Any] = {"agent_id": record["agent_id"], "version_id": record["version_id"],
                               "path": str(path.resolve()), "bytes": len(content),
                               "sha256": hashlib.sha256(content).hexdigest()}
    output.emit(as_json, summary, lambda con: con.print(
        f"wrote {summary['path']} ({agent} {summary['version_id']}, {summary['bytes']} bytes)", soft_wrap=True,
        markup=False))
