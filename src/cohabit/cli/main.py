"""The ``cohabit`` command line: one Typer app, one module per command group.

Each command module under :mod:`cohabit.cli` exposes ``register(app)``; this module only
collects them, so the command modules stay independent of each other.
"""

from __future__ import annotations

import typer

from cohabit.cli import agent, evaluate, profile, recommend, run, simulate

app = typer.Typer(
    name="cohabit",
    help="Capacity planning and contention-aware placement for GPU and database workloads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """Capacity planning and contention-aware placement for GPU and database workloads.

    A callback keeps ``cohabit`` a command group even while one command is registered
    (Typer otherwise runs a lone command as the app itself).
    """


for _module in (simulate, evaluate, recommend, agent, run, profile):
    _module.register(app)


def main() -> None:
    """Entry point of the ``cohabit`` console script."""
    app()


if __name__ == "__main__":
    main()
