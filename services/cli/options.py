"""Options every talking command shares, and the wrapper that turns failures into exit codes."""
from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer

from trainhouse.cli.errors import CliError, ExitCode
from trainhouse.cli.output import report_error, stderr

Url = Annotated[Optional[str], typer.Option(
    "--url", envvar="TRAINHOUSE_URL", show_envvar=True, metavar="http://HOST:PORT",
    help="Talk to the gateway's REST surface at this URL instead of gRPC to the services.")]
Token = Annotated[Optional[str], typer.Option(
    "--token", envvar="TRAINHOUSE_TOKEN", show_envvar=True,
    help="API token for the gateway (default: $TRAINHOUSE_HOME/admin-token).")]
Json = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts instead of tables.")]
Timeout = Annotated[Optional[float], typer.Option(
    "--timeout", min=0.1, help="Seconds to wait for each call (default TRAINHOUSE_RPC_TIMEOUT_S or 30).")]

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Run a command so that every failure prints its message (and field) and exits with its
    code; a traceback is shown only with TRAINHOUSE_DEBUG=1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except CliError as err:
            report_error(err, as_json)
            raise typer.Exit(int(err.exit_code)) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`trainhouse ... | head`): nothing left to say to it.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            stderr().print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug in the CLI itself: say so plainly, keep the trace for debugging
            if os.environ.get("TRAINHOUSE_DEBUG") == "1":
                traceback.print_exc()
            report_error(CliError(ExitCode.SERVER_ERROR, f"unexpected CLI failure: {type(exc).__name__}: {exc} "
                                                         "(set TRAINHOUSE_DEBUG=1 for the traceback)"), as_json)
            raise typer.Exit(int(ExitCode.SERVER_ERROR)) from None

    return wrapper  # type: ignore[return-value]
