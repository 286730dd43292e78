"""The ``convcalc`` command line (click).  The only module that prints or exits.

Exit codes: 0 clean; 1 errors in the spec or the network (or warnings with
``--strict``); 2 usage errors (click's own).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from . import __version__
from .analysis import analyze
from .errors import ConvCalcError, SpecError
from .loading import MAX_SPEC_BYTES, loads
from .render import RENDERERS
from .report import Report
from .schema import spec_json_schema
from .spec import LAYER_MODELS, Spec, layer_types

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

CHECK_EPILOG = """\b
Examples:
  convcalc check examples/cs231n-conv.yaml
  convcalc check net.yaml --format markdown >> design.md
  convcalc check net.yaml --format json | jq .total_params
  cat net.json | convcalc check -
  convcalc check net.yaml --strict        # warnings fail too (CI)

\b
Exit status: 0 clean, 1 errors (or warnings with --strict), 2 usage.
"""


def read_spec(file: str) -> Spec:
    """Load FILE (``-`` for standard input) into a validated spec."""
    if file == "-":
        return loads(sys.stdin.buffer.read(MAX_SPEC_BYTES + 1), filename="<stdin>")
    from .loading import load

    return load(file)


def fail(error: ConvCalcError, fmt: str = "table") -> NoReturn:
    """Report a ConvCalcError as one line per problem and exit 1."""
    if fmt == "json":
        diagnostics = getattr(error, "diagnostics", None)
        problems = [d.to_dict() for d in diagnostics] if diagnostics else [
            {"layer": None, "severity": "error", "message": str(error)}]
        click.echo(json.dumps({"ok": False, "error": type(error).__name__,
                               "problems": problems}, indent=2, ensure_ascii=False))
    else:
        click.echo(str(error), err=True)
    sys.exit(EXIT_PROBLEMS)


def exit_code(report: Report, strict: bool) -> int:
    if report.errors or (strict and report.warnings):
        return EXIT_PROBLEMS
    return EXIT_OK


format_option = click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="table",
    show_default=True, help="How to render the report.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convcalc")
def main() -> None:
    """Check a CNN design: shapes, parameters, cost and receptive fields per layer,
    and every layer whose windows do not tile its input.

    \b
    Write the network as YAML (or JSON):
      input: [3, 32, 32]
      layers:
        - {type: conv, filters: 10, kernel: 5, padding: 2}
        - relu
        - {type: maxpool, kernel: 2}

    then run `convcalc check net.yaml`.
    """


@main.command(epilog=CHECK_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@format_option
@click.option("--strict", is_flag=True, help="Treat warnings (rounded sizes) as failures.")
def check(file: str, fmt: str, strict: bool) -> None:
    """Analyse the network in FILE (YAML or JSON; - reads standard input)."""
    try:
        report = analyze(read_spec(file))
    except SpecError as error:
        fail(error, fmt)
    click.echo(RENDERERS[fmt](report))
    sys.exit(exit_code(report, strict))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec language (for editor completion).

    \b
    Example:
      convcalc schema > convcalc.schema.json
      # then, first line of net.yaml:
      # yaml-language-server: $schema=convcalc.schema.json
    """
    click.echo(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))


def _option_summary(model: Any) -> str:
    parts = []
    for name, field in model.model_fields.items():
        if name in ("type", "name", "trainable"):
            continue
        parts.append(name if field.is_required() else f"{name}={field.default!r}")
    return ", ".join(parts) or "—"


@main.command()
def layers() -> None:
    """List the layer types and their options (from the spec models)."""
    for model in LAYER_MODELS:
        types = " | ".join(layer_types(model))
        click.echo(f"{types}\n    options: {_option_summary(model)}")
        doc = (model.__doc__ or "").strip().splitlines()[0]
        click.echo(f"    {doc}")
