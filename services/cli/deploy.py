"""Serving: `deploy` (immediate, canary, blue-green) and `rollback` (ModelRegistry over gRPC, or the
canonical API through the gateway with --url). `--json` prints the canonical deployment record."""
from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import CliError, ExitCode
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.transport import connect


def _environment(staging: bool) -> int:
    from trainhouse.v1 import deployment_pb2

    return deployment_pb2.ENVIRONMENT_STAGING if staging else deployment_pb2.ENVIRONMENT_PRODUCTION


def _describe(dep: dict[str, Any]) -> str:
    """One line from the canonical deployment record (trainhouse.gateway.resources.deployments.deployment_fields)."""
    text = (f"deployment {dep['deployment_id']}: {dep['agent_id']} {dep['version_id']} -> {dep['environment']}, "
            f"{dep['strategy']}, {dep['state']}, {dep['current_percentage']:g}% of traffic")
    if dep.get("previous_version_id"):
        text += f" (previous {dep['previous_version_id']})"
    pending = [s for s in dep.get("schedule") or [] if not s.get("reached")]
    if pending:
        text += f"; next step {pending[0]['percentage']:g}% at {pending[0]['due_time']}"
    if dep.get("status_reason"):
        text += f"; {dep['status_reason']}"
    return text


@reports_errors
def deploy(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    version: Annotated[str, typer.Argument(help="Version id, alias or 'latest'.")],
    canary: Annotated[Optional[float], typer.Option("--canary", help="Canary: start with this share of traffic "
                                                    "(0 < N < 100), then step up to 100 %.")] = None,
    blue_green: Annotated[bool, typer.Option("--blue-green", help="Load and check the new version, then "
                                                                  "switch all traffic at once.")] = False,
    duration: Annotated[Optional[str], typer.Option("--duration", help="Canary: time to 100 %; otherwise the "
                                                    "watch window (e.g. 30m, 1h, 2d).")] = None,
    auto_rollback: Annotated[bool, typer.Option("--auto-rollback", help="Roll back by itself when the "
                                                "candidate's error rate or latency crosses a threshold.")] = False,
    max_error_rate: Annotated[Optional[float], typer.Option("--max-error-rate", help="With --auto-rollback: "
                                                            "error-rate threshold in [0, 1] (default 0.05).")] = None,
    staging: Annotated[bool, typer.Option("--staging", help="Deploy to staging instead of production.")] = False,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Deploy a model version, at once or as a canary / blue-green rollout."""
    from trainhouse.v1 import deployment_pb2, model_registry_pb2

    if canary is not None and blue_green:
        raise CliError(ExitCode.USAGE, "give --canary or --blue-green, not both", field="--canary")
    rollout = deployment_pb2.RolloutSpec(duration_text=duration or "")
    if canary is not None:
        rollout.strategy = deployment_pb2.ROLLOUT_STRATEGY_CANARY
        rollout.percentage = canary
    elif blue_green:
        rollout.strategy = deployment_pb2.ROLLOUT_STRATEGY_BLUE_GREEN
    else:
        rollout.strategy = deployment_pb2.ROLLOUT_STRATEGY_IMMEDIATE
    policy = deployment_pb2.RollbackPolicy(automatic=auto_rollback)
    if max_error_rate is not None:
        policy.error_rate = max_error_rate
    request = model_registry_pb2.DeployVersionRequest(agent_id=agent, version_id=version,
                                                      environment=_environment(staging), rollout=rollout,
                                                      rollback=policy, actor="cli")
    dep = connect(url, token, timeout).deploy(request)
    output.emit(as_json, dep, lambda con: con.print(_describe(dep), soft_wrap=True, markup=False))


@reports_errors
def rollback(
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Version to take traffic from "
                                                   "(default: the rollout's candidate, else the serving one).")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Version to send traffic to (default: the one "
                                                           "that served before).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit log.")] = "",
    staging: Annotated[bool, typer.Option("--staging", help="Roll back staging instead of production.")] = False,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Send an agent's traffic back to the previous version (or --to VERSION)."""
    from trainhouse.v1 import model_registry_pb2

    backend = connect(url, token, timeout)
    from_version = version or backend.serving_version(agent, staging)
    result = backend.rollback(model_registry_pb2.RollbackVersionRequest(
        agent_id=agent, version_id=from_version, environment=_environment(staging), target_version_id=to or "",
        reason=reason or "rolled back from the CLI", actor="cli"))
    output.emit(as_json, result, lambda con: con.print(
        f"{agent}: {result['previous_version_id']} -> {result['current_version_id']} ({result['message']})",
        soft_wrap=True, markup=False))
