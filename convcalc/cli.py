"""The ``convcalc`` command line (click).  The only module that prints or exits.

Exit codes: 0 clean; 1 errors in the spec or the network (or warnings with
``--strict``); 2 usage errors (click's own).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from . import __version__
from .analysis import analyze
from .errors import ConvCalcError, ResourceError, SpecError
from .loading import MAX_SPEC_BYTES, loads
from .memory import parse_bytes
from .verification import MAX_BATCH, MAX_SEED
from .render import (RENDERERS, render_csv, render_markdown, render_table,
                     render_verification, render_verification_json)
from .report import Report
from .schema import spec_json_schema
from .spec import MAX_INT, Spec
from .training_memory import DTYPE_BYTES, OPTIMIZER_STATE, footprint

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

CHECK_EPILOG = """\b
Examples:
  convcalc check examples/cs231n-conv.yaml
  convcalc check net.yaml --format markdown >> design.md
  convcalc check net.yaml --format json | jq .total_params
  cat net.json | convcalc check -
  convcalc check net.yaml --strict        # warnings fail too (CI)
  convcalc check net.yaml --verify        # then run it with the reference engine
  convcalc check net.yaml --batch 32 --dtype bfloat16 --optimizer adam   # memory
  convcalc check net.yaml --format csv > layers.csv   # exact numbers, one row a layer

\b
Exit status: 0 clean, 1 errors (or warnings with --strict), 2 usage.
"""


def read_spec(file: str, input_shape: list[int | None] | None = None) -> Spec:
    """Load FILE (``-`` for standard input, ``zoo:NAME`` for a zoo model, an ONNX model
    — imported, its warnings on standard error) into a validated spec, on
    ``input_shape`` when given (``--input``)."""
    from .importers import is_onnx

    imported = None
    if file == "-":
        head = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
        if is_onnx("", head[:1]):
            from .importers.onnx import MAX_ONNX_BYTES, import_onnx

            rest = sys.stdin.buffer.read(MAX_ONNX_BYTES + 1 - len(head))
            imported = import_onnx(head + rest, "<stdin>")
        else:
            spec = loads(head, filename="<stdin>")
    else:
        imported = read_onnx(file)
        if imported is None:
            from .loading import load

            spec = load(file)
    if imported is not None:
        for warning in imported.warnings:
            click.echo(f"{imported.source}: warning: {warning}", err=True)
        spec = imported.spec()
    return spec if input_shape is None else spec.with_input(input_shape)


def read_onnx(file: str) -> Any:
    """FILE imported (:class:`convcalc.importers.onnx.Imported`) when it is an ONNX
    model — by its name (``.onnx``) or its first byte — else ``None``."""
    from .importers import is_onnx

    if file.startswith("zoo:"):
        return None
    if not is_onnx(file):
        import stat

        try:      # a regular file's first byte (a FIFO is never waited for here)
            if not stat.S_ISREG(os.stat(file).st_mode):
                return None
            with open(file, "rb") as handle:
                if not is_onnx(file, handle.read(1)):
                    return None
        except (OSError, ValueError):
            return None      # load() says why it cannot be read
    from .importers.onnx import import_onnx_file

    return import_onnx_file(file)


if TYPE_CHECKING:  # pragma: no cover
    ParamType = click.ParamType[Any]   # generic (by its converted value) from click 8.4
else:
    ParamType = click.ParamType


class InputShape(ParamType):
    """``3,512,512``: channels then spatial sizes (``null`` or ``?`` leaves one open)."""

    name = "shape"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int | None]:
        if isinstance(value, list):
            return value
        parts = [part.strip() for part in str(value).split(",")]
        shape: list[int | None] = []
        for part in parts:
            if part in ("null", "?", "") and shape:
                shape.append(None)
            elif part.isdigit() and 0 < int(part) <= MAX_INT:
                shape.append(int(part))
            else:
                self.fail(f"{value!r} is not an input shape: channels then 0–3 spatial sizes, "
                          "whole numbers separated by commas (null or ? for an open size), "
                          "e.g. 3,224,224", param, ctx)
        if not 1 <= len(shape) <= 4:
            self.fail(f"{value!r} has {len(shape)} entries: channels then 0–3 spatial sizes",
                      param, ctx)
        return shape


input_option = click.option(
    "--input", "input_shape", type=InputShape(), default=None,
    help="Set or override the input shape: channels then spatial sizes, e.g. 3,512,512.")


def _message(error: ConvCalcError) -> str:
    """The error's text, with the CLI's advice where it has some."""
    if isinstance(error, ResourceError):
        return f"{error} Use a smaller batch or raise the limit (--max-memory)."
    return str(error)


def fail(error: ConvCalcError, fmt: str = "table") -> NoReturn:
    """Report a ConvCalcError as one line per problem and exit 1."""
    if fmt == "json":
        diagnostics = getattr(error, "diagnostics", None)
        problems = [d.to_dict() for d in diagnostics] if diagnostics else [
            {"layer": None, "severity": "error", "message": _message(error)}]
        click.echo(json.dumps({"ok": False, "error": type(error).__name__,
                               "problems": problems}, indent=2, ensure_ascii=False))
    else:
        click.echo(_message(error), err=True)
    sys.exit(EXIT_PROBLEMS)


def sizes_note(checked: Any, original: Spec) -> str | None:
    """The lines that say which sizes an open input takes, and where it was analysed."""
    from .render import render_sizes

    if checked.sizes_problem:
        return f"which input sizes work could not be worked out: {checked.sizes_problem}"
    if checked.sizes is None:
        return None
    text = render_sizes(None, original.input, checked.sizes)
    if checked.spec.open_axes:
        return text
    shape = "[" + ", ".join(map(str, checked.spec.input)) + "]"
    return f"{text}\n\nanalysed at the smallest valid size, {shape}:\n"


def exit_code(report: Report, strict: bool) -> int:
    if report.errors or (strict and report.warnings):
        return EXIT_PROBLEMS
    return EXIT_OK


format_option = click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="table",
    show_default=True, help="How to render the report.")


EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report a ^C


class ConvcalcGroup(click.Group):
    """The command group, with the process's last words kept to one line: ^C exits 130
    ("interrupted"), and output that cannot be written (a full disk, a closed pipe)
    exits 1 with a line on standard error instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _say("convcalc: interrupted")
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, **kwargs)
            sys.stdout.flush()
            return result
        except OSError as error:
            _output_failed(error)
        except SystemExit as done:
            try:
                sys.stdout.flush()
            except OSError as error:
                _output_failed(error)
            raise done


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def _output_failed(error: OSError) -> NoReturn:
    """Standard output cannot take the result: one line, exit 1, and no second try at
    interpreter exit (which would print a traceback)."""
    import errno
    import os

    if error.errno == errno.EPIPE:   # the reader left (| head): nothing to tell it
        reason = "the reader of standard output closed it"
    else:
        reason = error.strerror or str(error)
    _say(f"convcalc: cannot write the output: {reason}")
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_PROBLEMS)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


class MemorySize(ParamType):
    """A memory size: ``2GiB``, ``512MiB``, ``800MB`` or bytes."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            return parse_bytes(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


VERIFY_OPTIONS = ("batch", "seed", "gradcheck", "max_memory")


def verify_options(command: Any) -> Any:
    """``--batch --seed --gradcheck --gradcheck-entries --max-memory``, shared by
    ``verify`` and ``check --verify``.  The two gradient-check flags are one switch:
    the command gets ``gradcheck`` as ``None``, ``"directions"`` or ``"entries"``."""
    options = [
        click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=2,
                     show_default=True, help="Examples in the random batch the engine runs."),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                     help="Seed of the weights, the input batch and the output gradient "
                          f"(0 … {MAX_SEED})."),
        click.option("--gradcheck", "gradcheck", flag_value="directions", default=None,
                     help="Also compare the gradients with centred differences in float64, "
                          "along one random direction per tensor: two forward passes of "
                          "its layer each, and four of the whole network."),
        click.option("--gradcheck-entries", "gradcheck", flag_value="entries",
                     help="Compare the gradients entry by entry instead (up to 20 entries "
                          "per tensor, each re-running the network: slow on big networks)."),
        click.option("--max-memory", type=MemorySize(), default="2GiB", show_default=True,
                     help="Refuse a run whose estimated peak memory is larger."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class _Progress:
    """A progress bar on stderr, shown only on a terminal and after the first second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not sys.stderr.isatty() or time.monotonic() - self.started < 1.0:
                return
            self.bar = click.progressbar(length=total, label="verifying", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def run_verify(spec: Spec, batch: int, seed: int, gradcheck: str | None,
               max_memory: int) -> Any:
    """:func:`convcalc.verify` with a progress bar; ConvCalcErrors propagate.
    ``gradcheck``: ``None``, ``"directions"`` or ``"entries"``."""
    from .verification import verify

    progress = _Progress()
    try:
        return verify(spec, batch=batch, seed=seed, gradcheck=gradcheck or False,
                      max_memory=max_memory, progress=progress)
    finally:
        progress.close()


@main.command(epilog=CHECK_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@format_option
@click.option("--strict", is_flag=True, help="Treat warnings (rounded sizes) as failures; "
              "notes (roundings and misalignments declared on their layers) never fail.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Fold layers nested deeper than this many blocks into their block's "
                   "row (table format; 0: top-level layers and blocks only).")
@click.option("--units/--no-units", default=True, show_default=True,
              help="Counts as 25.56 M and sizes as MiB in the table and Markdown "
                   "(--no-units: exact digits; JSON and CSV are always exact).")
@click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32",
              show_default=True, help="The element type of the memory figures.")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_STATE)), default="sgd",
              show_default=True, help="Whose state the training memory counts: sgd none, "
                                      "momentum one value per parameter, adam two.")
@click.option("--verify", "then_verify", is_flag=True,
              help="Then build the network with the reference engine and check every "
                   "prediction (as `convcalc verify`).")
@input_option
@verify_options
def check(file: str, fmt: str, strict: bool, depth: int | None, units: bool, dtype: str,
          optimizer: str, then_verify: bool, input_shape: list[int | None] | None,
          batch: int, seed: int, gradcheck: str | None, max_memory: int) -> None:
    """Analyse the network in FILE (YAML or JSON; - reads standard input; zoo:NAME
    a model of the zoo, see `convcalc zoo`).

    A spec whose input leaves sizes open (null) is analysed at its smallest valid size
    (see `convcalc sizes`), or at --input.  The memory figures are for a training step
    at --batch (default 1 here; --verify runs the engine at 2 unless --batch is given),
    --dtype and --optimizer."""
    ctx = click.get_current_context()
    if depth is not None and fmt != "table":
        raise click.UsageError("--depth applies to the table format only")
    if then_verify and fmt == "csv":    # one row a layer: no place for the verification
        raise click.UsageError("--verify does not combine with --format csv "
                               "(convcalc verify --format json has every layer's checks)")
    batch_given = ctx.get_parameter_source("batch") is not ParameterSource.DEFAULT

    def render(report: Report) -> str:
        memory = footprint(report, batch if batch_given else 1, dtype, optimizer)
        if fmt == "json":
            data = report.to_dict(memory)
            if checked.sizes is not None:   # the sizes an open input takes
                from .render import sizes_to_dict

                data["sizes"] = sizes_to_dict(None, given.input, checked.sizes)["axes"]
            return json.dumps(data, indent=2, ensure_ascii=False)
        if fmt == "table":
            return render_table(report, depth, units=units, memory=memory)
        if fmt == "markdown":
            return render_markdown(report, units=units, memory=memory)
        return render_csv(report, memory)

    if not then_verify:
        for name in VERIFY_OPTIONS:
            if name == "batch":      # it also sets the memory figures' batch
                continue
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name.replace('_', '-')} only applies with --verify")
    try:
        given = read_spec(file, input_shape)
    except SpecError as error:
        fail(error, fmt)
    from .sizes import check as check_sizes

    checked = check_sizes(given)
    note = sizes_note(checked, given)
    spec, report = checked.spec, checked.report
    code = exit_code(report, strict)
    if note and fmt != "json":
        click.echo(note)
    if not then_verify or report.errors:
        click.echo(render(report))
        if then_verify:
            click.echo("not verified: the spec has errors", err=True)
        sys.exit(code)
    try:
        result = run_verify(spec, batch, seed, gradcheck, max_memory)
    except ConvCalcError as error:   # a refused memory estimate
        if fmt != "json":
            click.echo(render(report))
        fail(error, fmt)
    if fmt == "json":
        data = json.loads(render(report))
        data["verification"] = result.to_dict()
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(render(report))
        click.echo("")
        click.echo(render_verification(result))
    sys.exit(code if result.ok else EXIT_PROBLEMS)


VERIFY_EPILOG = """\b
Examples:
  convcalc verify examples/vgg16.yaml --batch 1
  convcalc verify net.yaml --gradcheck          # gradients vs centred differences
  convcalc verify net.yaml --gradcheck-entries  # ... entry by entry (slow)
  convcalc verify net.yaml --format json | jq .ok
  convcalc check net.yaml --verify              # the report, then the engine run

\b
Exit status: 0 verified; 1 a mismatch, a gradient check failure, errors in the
spec or a refused memory estimate; 2 usage.
"""


@main.command("verify", epilog=VERIFY_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table",
              show_default=True, help="How to render the verification.")
@input_option
@verify_options
def verify_command(file: str, fmt: str, input_shape: list[int | None] | None, batch: int,
                   seed: int, gradcheck: str | None, max_memory: int) -> None:
    """Build the network in FILE with the NumPy reference engine, run a random batch
    forward and backward, and check every predicted output shape, parameter count and
    gradient shape (with --gradcheck, the gradients too).

    The peak memory of the run is estimated first; a run above --max-memory is refused.
    """
    try:
        from .sizes import check as check_sizes

        given = read_spec(file, input_shape)
        checked = check_sizes(given)
        note, spec = sizes_note(checked, given), checked.spec
        if note and fmt != "json":
            click.echo(note, err=True)
        result = run_verify(spec, batch, seed, gradcheck, max_memory)
    except ConvCalcError as error:
        fail(error, fmt)
    click.echo(render_verification_json(result) if fmt == "json"
               else render_verification(result))
    sys.exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


SIZES_EPILOG = """\b
Examples:
  convcalc sizes zoo:unet                  # H = 16k + 124, k ≥ 4 ...
  convcalc sizes net.yaml --near 500       # the valid sizes just below and above 500
  convcalc sizes net.yaml --input 3,null,512
  convcalc sizes net.yaml --format json | jq '.axes[0].smallest'

\b
Exit status: 0 some size works on every axis, 1 errors in the spec or no size works
on some axis, 2 usage.
"""


@main.command(epilog=SIZES_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]),
              default="table", show_default=True, help="How to render the answer.")
@click.option("--near", type=click.IntRange(min=1, max=MAX_INT), default=None,
              help="Also give the valid sizes just below and above this one.")
@input_option
def sizes(file: str, fmt: str, near: int | None, input_shape: list[int | None] | None) -> None:
    """Which input sizes the network in FILE accepts: per spatial axis, the exact set
    (residues modulo a period from a threshold on, and the exceptions below it), the
    smallest, and the output size as a formula.

    A size is valid when the network analyses without an error at it, under the spec's
    rounding. Each axis's set assumes the other axes take a valid size (the given one
    when it is valid, else their smallest)."""
    from .render import render_sizes, render_sizes_markdown, sizes_to_dict
    from .sizes import SizesTooComplex, valid_sizes

    try:
        spec = read_spec(file, input_shape)
        answers = valid_sizes(spec)
    except SpecError as error:
        fail(error, fmt)
    except SizesTooComplex as error:
        fail(ConvCalcError(f"which input sizes work could not be worked out: {error}"), fmt)
    if fmt == "json":
        click.echo(json.dumps(sizes_to_dict(spec.name, spec.input, answers, near), indent=2,
                              ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(render_sizes_markdown(spec.name, spec.input, answers, near))
    else:
        click.echo(render_sizes(spec.name, spec.input, answers, near))
    sys.exit(EXIT_PROBLEMS if any(a.empty for a in answers) else EXIT_OK)


EXPORT_EPILOG = """\b
Examples:
  convcalc export net.yaml --to pytorch -o net.py   # then: from net import Net
  convcalc export zoo:resnet18 > resnet18.py        # no -o: standard output
  convcalc export zoo:unet --input 1,572,572 -o unet.py
  convcalc export net.yaml --to onnx -o net.onnx    # random weights (--seed, --zeros)

\b
Exit status: 0 exported; 1 errors in the spec (nothing is written), or a target that
is not available; 2 usage.
"""


@main.command("export", epilog=EXPORT_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--to", "target", type=click.Choice(["pytorch", "onnx"]), default="pytorch",
              show_default=True, help="What to write: a PyTorch module (a Python file) or "
                                      "an ONNX model.")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="Where to write it; -: standard output.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="--to onnx: the seed of the random weights.")
@click.option("--zeros", is_flag=True, help="--to onnx: every weight and bias zero "
              "(norms as PyTorch starts them).")
@input_option
def export_command(file: str, target: str, output: str, seed: int, zeros: bool,
                   input_shape: list[int | None] | None) -> None:
    """Write the network in FILE as framework code: with --to pytorch a self-contained
    Python file defining Net, an nn.Module built with no arguments whose attributes are
    the spec's layer names (see docs/export).

    A spec whose input leaves sizes open (null) is exported at its smallest valid size
    (see `convcalc sizes`), or at --input; a spec with errors is not exported."""
    from .export import exporter, prepare
    from .sizes import check as check_sizes

    if target != "onnx":
        ctx = click.get_current_context()
        for name in ("seed", "zeros"):
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name} only applies with --to onnx")
    try:
        function = exporter(target)
        given = read_spec(file, input_shape)
        checked = check_sizes(given)
        note = sizes_note(checked, given)
        if note and not checked.report.errors:
            click.echo(note.replace("analysed at", "exported at").rstrip(":\n") + ".",
                       err=True)
        spec, report = prepare(checked.spec)
        options = {"source": "<stdin>" if file == "-" else file} if target == "pytorch" \
            else {"seed": seed, "zeros": zeros}
        result = function(spec, report, **options)
    except ConvCalcError as error:
        fail(error)
    data = result.encode("utf-8") if isinstance(result, str) else result
    if output == "-":
        click.echo(data, nl=False)
    else:
        try:
            with open(output, "wb") as handle:
                handle.write(data)
        except OSError as error:
            fail(ConvCalcError(f"cannot write {output}: {error.strerror or error}"))
        if target == "onnx":
            from .export.onnx import OPSET

            weights = "zero weights" if zeros else f"random weights (seed {seed})"
            click.echo(f"{output}: ONNX opset {OPSET}, {len(spec.layers)} layers, "
                       f"{report.total_params:,} parameters, {weights}", err=True)
    sys.exit(EXIT_OK)


IMPORT_EPILOG = """\b
Examples:
  convcalc import resnet50.onnx -o resnet50.yaml
  convcalc import model.onnx                 # the YAML on standard output
  convcalc check model.onnx                  # the same, analysed at once (verify, sizes too)

\b
Needs the onnx extra: pip install 'convcalc[onnx]'.  Exit status: 0 imported; 1 a file
that is not an ONNX model convcalc can read, or nodes no convcalc layer expresses
(every one is listed; nothing is written); 2 usage.
"""


@main.command("import", epilog=IMPORT_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="Where to write the spec (YAML); -: standard output.")
def import_command(file: str, output: str) -> None:
    """Turn the ONNX model in FILE into a convcalc spec: one layer per node (or fused
    group of nodes), named after the graph's nodes, weights' shapes from the
    initializers, constant subgraphs folded; ONNX's window rules followed exactly
    (see docs/export)."""
    from .importers.onnx import import_onnx, import_onnx_file

    try:
        if file == "-":
            from .importers.onnx import MAX_ONNX_BYTES

            imported = import_onnx(sys.stdin.buffer.read(MAX_ONNX_BYTES + 1), "<stdin>")
        else:
            imported = import_onnx_file(file)
        imported.spec()                      # a spec that validates, or its errors
    except ConvCalcError as error:
        fail(error)
    for warning in imported.warnings:
        click.echo(f"{imported.source}: warning: {warning}", err=True)
    if output == "-":
        click.echo(imported.text, nl=False)
    else:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(imported.text)
        except OSError as error:
            fail(ConvCalcError(f"cannot write {output}: {error.strerror or error}"))
        click.echo(f"{output}: {len(imported.data['layers'])} layers from {file}", err=True)
    sys.exit(EXIT_OK)


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


@main.command()
def layers() -> None:
    """List every layer type: its whole description (from the spec models) and its
    options, each with its type, default and description; wrapped to the terminal's
    width (COLUMNS sets it)."""
    import shutil

    from .layer_help import render_layers

    click.echo(render_layers(max(40, shutil.get_terminal_size().columns)))


DRAW_EPILOG = """\b
Examples:
  convcalc draw zoo:resnet50 -o resnet50.svg     # every layer, shortcut and block
  convcalc draw net.yaml -o net.png              # for slides and documents
  convcalc draw net.yaml -o net.dot              # the DOT text, to lay out yourself
  convcalc draw zoo:googlenet --depth 1 -o g.svg # blocks nested deeper: one node each
  convcalc draw zoo:resnet50 --fold layer1.0 --fold layer1.1 -o r.svg
  convcalc draw net.yaml > net.svg               # no -o: SVG on standard output

\b
SVG and PNG need Graphviz's dot (apt-get install graphviz).  Exit status: 0 drawn;
1 errors in the spec, or in the network (the drawing is written, with the errors
marked), or the drawing failed; 2 usage.
"""

#: ``-o`` suffix → format
DRAW_SUFFIXES = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}


class DrawDepth(ParamType):
    """``--depth``: ``auto``, ``all`` or a number of block levels drawn open."""

    name = "N|all|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value in ("auto", None) or isinstance(value, int):
            return value
        if value == "all":
            return None
        if str(value).isdigit() and int(value) <= MAX_INT:
            return int(value)
        self.fail(f"{value!r} is not a depth: a whole number ≥ 0, all or auto", param, ctx)


def _draw_format(output: str, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    if output == "-":
        return "svg"
    from pathlib import Path

    suffix = Path(output).suffix.lower()
    if suffix not in DRAW_SUFFIXES:
        raise click.UsageError(f"cannot tell the format from {output!r}: name it .svg, .png "
                               "or .dot, or give --format")
    return DRAW_SUFFIXES[suffix]


@main.command("draw", epilog=DRAW_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="Where to write the drawing; its suffix (.svg, .png, .dot) picks the "
                   "format.  -: standard output.")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "dot"]), default=None,
              help="The format, whatever -o's suffix (default: from it, else svg).")
@click.option("--fold", multiple=True, metavar="NAME",
              help="Draw this block instance as one node (repeatable).")
@click.option("--depth", type=DrawDepth(), default="auto", show_default=True,
              help="Draw blocks nested deeper than N as one node each (0: the top "
                   "level's blocks); all: none; auto: all when the drawing stays under "
                   "200 nodes and 720 pt wide, else the deepest level that does.")
@input_option
def draw_command(file: str, output: str, fmt: str | None, fold: tuple[str, ...], depth: Any,
                 input_shape: list[int | None] | None) -> None:
    """Draw the graph of the network in FILE: a node per layer (type, window, output
    shape), an edge per input — branches, shortcuts and skips — and block instances as
    boxes, laid out top to bottom by Graphviz; layers with errors in red, with
    warnings in orange."""
    from .draw import DrawError, draw

    fmt = _draw_format(output, fmt)
    if output == "-" and fmt == "png" and sys.stdout.isatty():
        raise click.UsageError("PNG is binary: write it to a file with -o net.png")
    from .sizes import check as check_sizes

    try:
        given = read_spec(file, input_shape)
    except SpecError as error:
        fail(error)
    checked = check_sizes(given)   # open sizes: drawn at the smallest valid one
    note = sizes_note(checked, given)
    if note:
        click.echo(note, err=True)
    report = checked.report
    try:
        drawing = draw(report, fmt, fold=fold, depth=depth)
    except DrawError as error:
        fail(error)
    except ConvCalcError as error:   # a --fold that names no block instance
        raise click.UsageError(str(error)) from None
    if output == "-":
        sys.stdout.buffer.write(drawing.data)
    else:
        try:
            with open(output, "wb") as out:
                out.write(drawing.data)
        except OSError as error:
            fail(ConvCalcError(f"cannot write {output}: {error.strerror or error}"))
        levels = "every block open" if drawing.depth is None else f"depth {drawing.depth}"
        click.echo(f"{output}: {drawing.nodes} nodes ({levels}"
                   + (f", {len(drawing.folded)} blocks folded" if drawing.folded else "")
                   + ")", err=True)
    if report.errors:
        click.echo(f"the network has {len(report.errors)} error"
                   f"{'s' if len(report.errors) != 1 else ''} (marked in the drawing)", err=True)
        sys.exit(EXIT_PROBLEMS)


SERVE_EPILOG = """\b
Examples:
  convcalc serve                        # http://127.0.0.1:8000/ : the design page
  convcalc serve --port 9000 --workers 2
  convcalc serve --host 0.0.0.0 --allowed-host calc.example.org
  curl -s -X POST localhost:8000/api/v1/analyse -H 'Content-Type: application/yaml' \\
       --data-binary @net.yaml          # the same JSON as convcalc check --format json

\b
Needs the service extra: pip install 'convcalc[service]'.  Endpoints, limits and
status codes: docs/service.rst, or /docs and /openapi.json on the running service.
"""


@main.command(epilog=SERVE_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log every request on standard error.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host name to answer (repeatable; '*': any).  Default: the names "
                   "of --host (127.0.0.1: 127.0.0.1, localhost, [::1]); required with "
                   "0.0.0.0 or ::.  Other Host headers get 400 (DNS rebinding).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the port (uvicorn's workers).")
def serve(host: str, port: int, access_log: bool, allowed_hosts: tuple[str, ...],
          workers: int) -> None:
    """Serve the calculator over HTTP: a JSON API under /api/v1/ (analyse, verify,
    schema, zoo) and an interactive design page at /."""
    try:  # imported here: `import convcalc` never imports FastAPI
        from .service.hosts import ANY, default_allowed_hosts
        from .service.server import run
    except ImportError as error:
        raise click.ClickException(
            f"convcalc serve needs the service extra: pip install 'convcalc[service]' "
            f"({error})") from None
    names = allowed_hosts or default_allowed_hosts(host)
    if names is None:
        raise click.UsageError(
            f"--host {host} listens on every interface, so the names clients will use "
            "are unknown: give each with --allowed-host NAME (repeatable), or "
            "--allowed-host '*' to answer any Host (open to DNS rebinding)")
    if ANY in names:
        click.echo("warning: --allowed-host '*' answers any Host header: a web page "
                   "elsewhere can reach this service through DNS rebinding", err=True)
    click.echo(f"convcalc {__version__}: design page http://{host}:{port}/ , API "
               f"http://{host}:{port}/api/v1/ , reference http://{host}:{port}/docs", err=True)
    run(host=host, port=port, allowed_hosts=names, workers=workers, access_log=access_log)

from .cli_zoo import zoo  # noqa: E402  (the zoo command lives in convcalc/cli_zoo.py)

main.add_command(zoo)
