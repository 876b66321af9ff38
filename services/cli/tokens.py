"""API tokens: `token create`. Tokens live in the gateway, so this always goes through it."""
from __future__ import annotations

from typing import Annotated, Optional

import enum
import typer

from trainhouse.cli import output
from trainhouse.cli.errors import EPILOG
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.transport import GatewayBackend, gateway_url, resolve_token

SCOPES = ("training:start", "training:view", "training:cancel", "training:evaluate", "data:generate",
          "data:export", "models:deploy", "admin")
Scope = enum.Enum("Scope", {s: s for s in SCOPES}, type=str)

token_app = typer.Typer(help="Manage the gateway's API tokens (admin).", epilog=EPILOG, no_args_is_help=True)


@token_app.command("create")
@reports_errors
def create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    scopes: Annotated[list[Scope], typer.Option("--scope", "-s",
                                              help="A scope to grant; repeat for several.")],
    account: Annotated[Optional[str], typer.Option("--account", help="Account its jobs count against "
                                                                     "(default \"default\").")] = None,
    expires_in_days: Annotated[Optional[int], typer.Option("--expires-in-days", help="1..3650; default never.")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Create a scoped API token; it is printed once and stored only as a hash.

    Uses the gateway at --url (default http://127.0.0.1:$TRAINHOUSE_GATEWAY_PORT) with an admin token."""
    backend = GatewayBackend(gateway_url(url), resolve_token(token), timeout)
    created = backend.create_token(name, list(dict.fromkeys(s.value for s in scopes)), account, expires_in_days)

    def render(con) -> None:  # noqa: ANN001 - rich Console
        con.print(f"token [bold]{created['token_id']}[/bold] ({created['name']}): {', '.join(created['scopes'])}"
                  f", account {created['account']}" + (f", expires {created['expires_at']}" if created["expires_at"] else ""))
        con.print("store it now, it is not shown again:")
        # Plain print so the secret is never wrapped or styled.
        print(created["token"])

    output.emit(as_json, created, render)
