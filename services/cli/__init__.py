"""`trainhouse` command line: run the stack, train, watch, evaluate and serve agents.

Each command group lives in its own module; this package only assembles them into `app`.
The console script is `trainhouse = "trainhouse.cli:main"`.
"""
from __future__ import annotations

import typer

from trainhouse.cli import certs, data, deploy, evaluation, jobs, mlflow_export, models, sweeps, tokens, up
from trainhouse.cli.errors import EPILOG

app = typer.Typer(help="trainhouse: train, evaluate, version and deploy the learned parts of agents.",
                  epilog=EPILOG, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main_callback() -> None:
    """trainhouse command line."""


app.command(epilog=EPILOG)(up.up)
app.add_typer(tokens.token_app, name="token")
app.add_typer(models.agents_app, name="agents")
app.add_typer(data.datasets_app, name="datasets")
app.add_typer(sweeps.sweep_app, name="sweep")
app.command(epilog=EPILOG)(jobs.train)
app.command(epilog=EPILOG)(jobs.watch)
app.command(epilog=EPILOG)(jobs.jobs)
app.add_typer(jobs.job_app, name="job")
app.command(epilog=EPILOG)(jobs.cancel)
app.add_typer(models.models_app, name="models")
app.command(epilog=EPILOG)(models.predict)
app.command("register-checkpoint", epilog=EPILOG)(models.register_checkpoint)
app.add_typer(models.aliases_app, name="alias")
app.command(epilog=EPILOG)(models.tag)
app.command("eval", epilog=EPILOG)(evaluation.evaluate)
app.command(epilog=EPILOG)(evaluation.compare)
app.command(epilog=EPILOG)(evaluation.report)
app.command(epilog=EPILOG)(deploy.deploy)
app.command(epilog=EPILOG)(deploy.rollback)
app.command(epilog=EPILOG)(certs.certs)
app.add_typer(mlflow_export.export_app, name="export")


def main() -> None:
    app()
