"""The ``modelpin`` command line: parse arguments, call the core, render, exit."""

from __future__ import annotations

import gc
import importlib
import sys

import click

from modelpin import __version__
from modelpin.cli.common import EXIT_USAGE, CommandError

# Command name -> "module:attribute". Modules are imported only when their command runs
# (or help lists it), so `modelpin explain` does not pay for git, httpx or the router.
COMMANDS: dict[str, str] = {
    "validate": "modelpin.cli.validate:validate",
    "compile": "modelpin.cli.compile_command:compile_command",
    "verify": "modelpin.cli.table_commands:verify_command",
    "check": "modelpin.cli.rollout_commands:check",
    "plan": "modelpin.cli.rollout_commands:plan",
    "explain": "modelpin.cli.rollout_commands:explain",
    "resolve": "modelpin.cli.table_commands:resolve_command",
    "keygen": "modelpin.cli.keys:keygen_command",
    "root": "modelpin.cli.root_commands:root_group",
    "bot": "modelpin.cli.bot_command:bot",
    "guard": "modelpin.cli.guard_command:guard",
    "lifecycle": "modelpin.cli.lifecycle_command:lifecycle",
    "schema": "modelpin.cli.validate:schema",
    "attest": "modelpin.cli.attest_commands:attest_command",
    "approve": "modelpin.cli.attest_commands:approve_command",
    "bets": "modelpin.cli.bets_command:bets",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelpin")
def cli() -> None:
    """modelpin: pin every tenant to exact model versions and roll upgrades out safely."""


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
    """The console script. A command is one short process whose objects (fleets of
    pydantic models) hold no reference cycles: the cyclic GC would only rescan them,
    again and again (a third of ``explain``'s time at 10,000 tenants), so it is off;
    reference counting still frees everything."""
    gc.freeze()
    gc.disable()
    sys.exit(main())
