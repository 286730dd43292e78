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

HEADERS = ("name", "model", "params", "trainable", "MACs", "input", "output", "layers")
RIGHT = {"params", "trainable", "MACs", "layers"}


def _shape(shape: tuple[int, ...] | None) -> str:
    return "—" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def zoo_table(summaries: list) -> str:
    """The text table ``convcalc zoo`` prints."""
    rows = [[s.name, s.title, f"{s.params:,}", f"{s.trainable_params:,}", f"{s.macs:,}",
             _shape(s.input_shape), _shape(s.output_shape), str(s.layers)]
            for s in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if h in RIGHT else c.ljust(w)
                         for c, w, h in zip(cells, widths, HEADERS)).rstrip()

    out = [line(HEADERS), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    out += ["", "layers: after expanding blocks and repeat.  "
            "Analyse one with: convcalc check zoo:NAME"]
    return "\n".join(out)


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
    from .errors import SpecError

    if show is not None:
        try:
            click.echo(models.text(show), nl=False)
        except SpecError as error:
            click.echo(str(error), err=True)
            sys.exit(1)
        return
    summaries = [models.summary(name) for name in models.names()]
    if fmt == "json":
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=2, ensure_ascii=False))
    else:
        click.echo(zoo_table(summaries))
