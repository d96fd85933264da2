"""The ``modelpin`` command line: parse arguments, call the core, render, exit."""

from __future__ import annotations

import sys

import click

from modelpin import __version__
from modelpin.cli import rollout_commands
from modelpin.cli.artifact_commands import COMMANDS as ARTIFACT_COMMANDS
from modelpin.cli.bot_command import bot
from modelpin.cli.common import EXIT_USAGE, CommandError
from modelpin.cli.validate import schema, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelpin")
def cli() -> None:
    """modelpin: pin every tenant to exact model versions and roll upgrades out safely."""


cli.add_command(validate)
cli.add_command(schema)
for _artifact_command in ARTIFACT_COMMANDS:
    cli.add_command(_artifact_command)
cli.add_command(bot)
for _command in (rollout_commands.explain, rollout_commands.check, rollout_commands.plan):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turn its result or error into an exit status."""
    try:
        result = cli.main(args=argv, prog_name="modelpin", standalone_mode=False)
    except CommandError as exc:
        click.echo(f"modelpin: error: {exc}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("modelpin: aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
