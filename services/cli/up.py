"""`trainhouse up`: the launcher behind `make run` (four services and the gateway in the foreground)."""
from __future__ import annotations

import typer

from trainhouse.common import config
from trainhouse.common.logs import configure
from trainhouse.common.stop_signals import StopSignals
from trainhouse.launcher import LaunchError, Stack


def up(logs_to_terminal: bool = typer.Option(False, "--logs", help="Show service logs here instead of files.")) -> None:
    """Start the four services and the gateway on loopback; Ctrl-C stops them all."""
    configure("launcher")
    home = config.home()
    stack = Stack(home=home, ports={name: config.service_port(name) for name in config.SERVICES},
                  gateway_port=config.gateway_port(), log_dir=None if logs_to_terminal else home / "logs")
    stopping = StopSignals()
    try:
        stack.start()
    except LaunchError as err:
        typer.echo(f"trainhouse: failed to start: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"trainhouse is up (data in {home})")
    for name in config.SERVICES:
        typer.echo(f"  {name:<11} grpc  {stack.address(name)}")
    typer.echo(f"  {'gateway':<11} http  {stack.gateway_url}  (docs: {stack.gateway_url}/docs)")
    typer.echo(f"  admin token file: {stack.admin_token_file}")
    if not logs_to_terminal:
        typer.echo(f"  logs: {home / 'logs'}")
    typer.echo("Press Ctrl-C to stop.")
    exit_code = 0
    while not stopping.wait(0.5):
        # A service that dies is started again (backoff, a JSON log line on stderr each time); a
        # crash loop stops the stack.
        reason = stack.supervise()
        if reason:
            typer.echo(f"trainhouse: {reason}", err=True)
            exit_code = 1
            break
    codes = stack.stop()
    unclean = {n: c for n, c in codes.items() if c not in (0, None)}
    if unclean and exit_code == 0:
        typer.echo(f"trainhouse: unclean stop: {unclean}", err=True)
        exit_code = 1
    typer.echo("trainhouse stopped.")
    raise typer.Exit(exit_code)
