"""The one report type: per-layer rows, totals and problems.

:func:`convcalc.analyze` builds it; :mod:`convcalc.render` turns it into a text table,
Markdown or JSON (this module renders nothing).  :meth:`Report.to_dict` is the JSON contract other tools parse::

    {"ok", "name", "input_shape",
     "layers": [{"name", "type", "input_shape", "output_shape", "params",
                 "trainable_params", "buffers", "macs", "activations",
                 "activation_bytes", "line", "inputs", "group",
                 "receptive_field": {"size": [..], "jump": [..], "padding": [..]}}],
     "total_params", "trainable_params", "total_buffers", "total_macs",
     "total_activations", "problems": [{"layer", "severity", "message", ...}],
     "groups": [...], "memory": {"batch", "dtype", "optimizer", "bytes_per_value",
                                "input_bytes", "forward_bytes", "backward_bytes",
                                "params_bytes", "buffers_bytes", "gradients_bytes",
                                "optimizer_state_bytes", "total_bytes"}}

``activations`` counts values per example; ``activation_bytes`` and ``memory`` are
bytes at the batch, dtype and optimizer of ``memory`` (:mod:`convcalc.training_memory`).

Shapes are channels-first lists of ints.  A layer that could not be computed (an error
upstream) has ``null`` shapes and counts.

Integers above ``2**53 − 1`` (``MAX_SAFE_INTEGER``) would be rounded by a JavaScript
reader; wherever a dict has one, it also has ``"exact": {key: "digits"}`` with the
exact value as a string (the number stays a number, for readers with exact integers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .axes import Window
from .errors import Diagnostic, ShapeError, UnknownLayerError
from .receptive import ReceptiveField

if TYPE_CHECKING:  # pragma: no cover
    from .training_memory import Footprint

Shape = tuple[int, ...]

#: The largest integer a JSON reader with doubles (JavaScript) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def with_exact(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``"exact"`` added for its integers a double would round.

    >>> with_exact({"macs": 2**60, "params": 5})
    {'macs': 1152921504606846976, 'params': 5, 'exact': {'macs': '1152921504606846976'}}
    """
    exact = {key: str(value) for key, value in data.items()
             if isinstance(value, int) and not isinstance(value, bool)
             and abs(value) > MAX_SAFE_INTEGER}
    return {**data, "exact": exact} if exact else data


@dataclass(frozen=True)
class LayerRow:
    """What one layer does to its input.  Counts are ``None`` when not computable."""

    #: the layer's name (given, or made from its type: ``conv1``; ``stage1.0.conv1`` in a block)
    name: str
    #: its ``type`` as written in the spec (``conv``, ``maxpool``, …)
    type: str
    #: the shape of its (first) input, channels first, for one example
    input_shape: Shape | None
    #: the shape of its output, channels first, for one example (``None``: an error upstream)
    output_shape: Shape | None
    #: learned values: weights, biases, batchnorm's scale and shift
    params: int | None = None
    #: the part of ``params`` that trains (``0`` for a layer with ``trainable: false``)
    trainable_params: int | None = None
    #: state that is not learned by gradient: batchnorm's running mean and variance
    buffers: int | None = None
    #: multiply-accumulates for one example (FLOPs ≈ 2 × MACs)
    macs: int | None = None
    #: size, jump and effective padding of one output position, in input pixels
    receptive_field: ReceptiveField | None = None
    #: the line of the spec file the layer is written on
    line: int | None = None
    #: the layers it reads ("input" is the network input)
    inputs: tuple[str, ...] = ()
    #: the block instances it is part of, outermost first
    group: tuple[str, ...] = ()
    #: the shapes of all its inputs (merge layers have several)
    input_shapes: tuple[Shape, ...] = ()
    #: where it is written in the file, e.g. "layers[3]" or "blocks.basic.layers[1]"
    origin: str = ""
    #: the window geometry resolved for its input (conv, conv_transpose, pools)
    window: Window | None = None

    @classmethod
    def of_values(cls, *values: Any) -> "LayerRow":
        """A row from a value for every field, in order — what :meth:`__init__` makes,
        without a frozen dataclass's ``object.__setattr__`` per field (the analysis makes
        one row per layer: a tenth of its time)."""
        row = object.__new__(cls)
        row.__dict__.update(zip(_ROW_FIELDS, values, strict=True))
        return row

    @property
    def activations(self) -> int | None:
        """Number of values in one example's output."""
        if self.output_shape is None:
            return None
        count = 1
        for size in self.output_shape:
            count *= size
        return count

    def to_dict(self, activation_bytes: int | None = None) -> dict[str, Any]:
        """The layer's JSON form; ``activation_bytes``: its output's size in bytes at the
        report's batch and dtype (:mod:`convcalc.training_memory`)."""
        return with_exact({
            "name": self.name,
            "type": self.type,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "activations": self.activations,
            "activation_bytes": activation_bytes,
            "receptive_field": None if self.receptive_field is None
            else self.receptive_field.to_dict(),
            "line": self.line,
            "inputs": list(self.inputs),
            "group": list(self.group),
        })


_ROW_FIELDS = tuple(f.name for f in fields(LayerRow))


def _total(values: list[int | None]) -> int:
    return sum(v for v in values if v is not None)


@dataclass(frozen=True)
class GroupSummary:
    """A block instance (or a ``repeat``): its layers and their totals."""

    #: the instance's name (``stage1``, ``stage1.0``)
    name: str
    #: the block it instantiates (``basic``; ``basic ×2`` for a repeat)
    block: str
    #: how many block instances it is nested in, plus one (top level: 1)
    depth: int
    #: its layers' rows, in order (the last one's output is the block's)
    layers: tuple[LayerRow, ...]

    @property
    def params(self) -> int:
        return _total([row.params for row in self.layers])

    @property
    def trainable_params(self) -> int:
        return _total([row.trainable_params for row in self.layers])

    @property
    def buffers(self) -> int:
        return _total([row.buffers for row in self.layers])

    @property
    def macs(self) -> int:
        return _total([row.macs for row in self.layers])

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].output_shape

    def to_dict(self) -> dict[str, Any]:
        return with_exact({
            "name": self.name,
            "block": self.block,
            "depth": self.depth,
            "layers": [row.name for row in self.layers],
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
        })


@dataclass(frozen=True, repr=False)
class Report:
    """The analysis of one spec (render it with :func:`convcalc.render_table`,
    :func:`convcalc.render_markdown` or :func:`convcalc.render_json`).

    >>> import convcalc
    >>> convcalc.analyze({"input": [3, 8, 8], "layers": ["relu"]})
    <Report: 1 layer, input [3, 8, 8] → output [3, 8, 8], 0 params, 0 errors, 0 warnings>
    """

    #: the spec's ``name`` (``None`` if it has none)
    name: str | None
    #: the network's input shape, channels first, for one example
    input_shape: Shape
    #: one row per layer, blocks expanded, in the spec's order
    layers: tuple[LayerRow, ...]
    #: every error, warning and note, in the order of the layers
    problems: tuple[Diagnostic, ...] = field(default=())
    #: the file the spec was read from (``None`` for a dict or a string)
    file: str | None = None
    #: block instances as (name, block), outermost first, in file order
    groups: tuple[tuple[str, str], ...] = field(default=())

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        count = len(self.layers)
        shape = "—" if self.output_shape is None else list(self.output_shape)
        return (f"<Report{name}: {count} layer{'s' if count != 1 else ''}, input "
                f"{list(self.input_shape)} → output {shape}, {self.total_params:,} params, "
                f"{len(self.errors)} errors, {len(self.warnings)} warnings>")

    @property
    def group_summaries(self) -> tuple[GroupSummary, ...]:
        """Every block instance with its layers and totals."""
        out = []
        for name, block in self.groups:
            rows = tuple(row for row in self.layers if name in row.group)
            depth = rows[0].group.index(name) + 1 if rows else 1
            out.append(GroupSummary(name, block, depth, rows))
        return tuple(out)

    @property
    def branching(self) -> bool:
        """True when some layer does not simply read the layer before it."""
        previous = "input"
        for row in self.layers:
            if row.inputs and row.inputs != (previous,):
                return True
            previous = row.name
        return False

    @property
    def total_params(self) -> int:
        """Learnable parameters of every layer (weights, biases, batchnorm gamma/beta)."""
        return _total([row.params for row in self.layers])

    @property
    def trainable_params(self) -> int:
        """Parameters of the layers not marked ``trainable: false``."""
        return _total([row.trainable_params for row in self.layers])

    @property
    def total_buffers(self) -> int:
        """Non-learned state: batchnorm running mean and variance (Keras' "non-trainable")."""
        return _total([row.buffers for row in self.layers])

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of the conv and dense weights for one example (FLOPs ≈ 2×)."""
        return _total([row.macs for row in self.layers])

    @property
    def total_activations(self) -> int:
        """Values in every layer's output for one example."""
        return _total([row.activations for row in self.layers])

    @property
    def output_shape(self) -> Shape | None:
        """The last layer's output shape (``None`` if it could not be computed)."""
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The problems of severity ``error``."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The problems of severity ``warning`` (rounded sizes, misaligned branches, …)."""
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def notes(self) -> tuple[Diagnostic, ...]:
        """The problems of severity ``note``: what layers do as their options declare it
        (a layer's own ``rounding: floor``, a merge's ``accept_misalignment``)."""
        return tuple(p for p in self.problems if p.severity == "note")

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def layer(self, name: str) -> LayerRow:
        """The row of the layer called ``name``; :class:`~convcalc.errors.UnknownLayerError`
        (a ``KeyError``) listing the close names if there is none."""
        for row in self.layers:
            if row.name == name:
                return row
        raise UnknownLayerError(name, [row.name for row in self.layers])

    def to_table(self, depth: int | None = None, units: bool = True,
                 memory: "Footprint | None" = None) -> str:
        """The plain-text table of :func:`convcalc.render_table` (``depth``: block levels
        shown open, deeper layers folded into their block's row, ``None``: all; ``units``:
        25.56 M, 4.09 G, MiB rather than exact digits; ``memory``: the
        :func:`convcalc.footprint` to show, default batch 1, float32, sgd)."""
        from .render import render_table

        return render_table(self, depth, units=units, memory=memory)

    def raise_for_errors(self, strict: bool = False) -> "Report":
        """Raise :class:`~convcalc.errors.ShapeError` listing every error (and, when
        ``strict``, every warning; notes never fail); return the report otherwise."""
        failing = self.errors + self.warnings if strict else self.errors
        if failing:
            raise ShapeError(list(failing))
        return self

    def to_dict(self, memory: "Footprint | None" = None) -> dict[str, Any]:
        """The JSON contract (see the module docstring); ``memory``: the
        :func:`convcalc.footprint` it includes (default batch 1, float32, sgd)."""
        from .training_memory import footprint

        if memory is None:
            memory = footprint(self)
        return with_exact({
            "ok": self.ok,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "layers": [row.to_dict(size) for row, size in zip(self.layers, memory.layers)],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_buffers": self.total_buffers,
            "total_macs": self.total_macs,
            "total_activations": self.total_activations,
            "problems": [p.to_dict() for p in self.problems],
            "groups": [g.to_dict() for g in self.group_summaries],
            "memory": memory.to_dict(),
        })
