"""`trainhouse certs`: a development CA and one key pair per process, for mutual TLS (trainhouse.common.tls).

For development and tests: a real deployment issues certificates from its own PKI (cert-manager,
Vault...), which trainhouse.common.tls reads the same way. The certificates are made in
trainhouse.cli.pki, imported only when this command runs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from trainhouse.cli.errors import CliError, ExitCode, invalid
from trainhouse.cli.options import reports_errors

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@reports_errors
def certs(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CA and the key pairs to.")],
    hosts: Annotated[Optional[list[str]], typer.Option(
        "--host", help="A further DNS name or IP address for every certificate; repeat for several.")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Validity in days (1..3650).")] = 365,
    namespace: Annotated[str, typer.Option("--namespace", help="Kubernetes namespace for the Service DNS names.")]
    = "trainhouse",
    force: Annotated[bool, typer.Option("--force", help="Overwrite the files in a non-empty --out.")] = False,
) -> None:
    """Write a development CA and a key pair per process (training, data, evaluation, registry,
    gateway, client) for mutual TLS, and print the TRAINHOUSE_TLS_* settings to use them.

    For development and tests only: a real deployment uses its own PKI (e.g. cert-manager)."""
    if not _DNS_LABEL.match(namespace):
        raise invalid("namespace", f"--namespace {namespace!r} is not a Kubernetes namespace name")
    if out.exists() and not out.is_dir():
        raise CliError(ExitCode.CONFLICT, f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CliError(ExitCode.CONFLICT, f"{out} is not empty; --force overwrites the certificates in it")
    from trainhouse.cli import pki

    try:
        pki.write_set(out, list(hosts or []), days, namespace)
    except pki.BadName as exc:
        raise invalid("host", f"--host {exc}") from None
    where = out.resolve()
    typer.echo(f"wrote a development CA and key pairs for {', '.join(pki.PROCESSES)} to {where} (valid {days} days).")
    typer.echo("For development and tests only: a real deployment uses its own PKI (e.g. cert-manager).")
    typer.echo("Keep ca-key.pem out of every pod; each process needs ca.pem and its own <name>.pem / <name>-key.pem.")
    typer.echo("\n# one stack on this machine (`trainhouse up` hands these to every process) and the CLI:")
    typer.echo(f"export TRAINHOUSE_TLS_CA={where / 'ca.pem'}")
    typer.echo(f"export TRAINHOUSE_TLS_CERT={where / 'client.pem'}")
    typer.echo(f"export TRAINHOUSE_TLS_KEY={where / 'client-key.pem'}")
    for process in pki.PROCESSES[:-1]:
        typer.echo(f"# {process}: TRAINHOUSE_TLS_CA={where / 'ca.pem'} TRAINHOUSE_TLS_CERT={where / f'{process}.pem'} "
                   f"TRAINHOUSE_TLS_KEY={where / f'{process}-key.pem'}")
