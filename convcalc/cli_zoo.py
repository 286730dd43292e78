"""``convcalc zoo``: the models shipped in :mod:`convcalc.zoo`, with their totals.

Registered on the ``convcalc`` group by :mod:`convcalc.cli`.
"""

from __future__ import annotations

import json
import sys

import click

ZOO_EPILOG = """\b
Examples:
  convcalc zoo                          # every model with its totals
  convcalc zoo --format json | jq '.[] | {name, params}'
  convcalc check zoo:resnet50           # a zoo model, layer by layer
  convcalc verify zoo:resnet18 --batch 1
  convcalc zoo --show googlenet > my-googlenet.yaml   # a starting point to edit
"""

@click.command("zoo", epilog=ZOO_EPILOG)
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table",
              show_default=True, help="How to render the list.")
@click.option("--show", "show", metavar="NAME",
              help="Print model NAME's spec file (with its header comment) instead.")
def zoo(fmt: str, show: str | None) -> None:
    """List the model zoo: well-known networks shipped with convcalc, each with its
    parameters (and trainable ones), MACs, input and output shapes and layer count.

    Every command that reads a FILE also takes zoo:NAME for a zoo model.
    """
    from . import zoo as models
    from .catalog import summary
    from .errors import SpecError
    from .render import render_zoo

    if show is not None:
        try:
            click.echo(models.text(show), nl=False)
        except SpecError as error:
            click.echo(str(error), err=True)
            sys.exit(1)
        return
    summaries = [summary(name) for name in models.names()]
    if fmt == "json":
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=2, ensure_ascii=False))
    else:
        click.echo(render_zoo(summaries))
