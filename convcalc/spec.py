"""The spec language: pydantic models, the single source of truth for layer kinds.

A spec is an input shape and a list of layers::

    name: cs231n-example
    input: [3, 32, 32]          # channels, then 1, 2 or 3 spatial sizes
    rounding: exact             # exact | floor | ceil
    layers:
      - {type: conv, filters: 10, kernel: 5, stride: 1, padding: 2}
      - relu
      - {type: maxpool, kernel: 2}

Every layer kind is one model class below, tagged by its ``type``.  The CLI, the JSON
Schema, the docs and the engine all read :data:`LAYER_MODELS`; nothing lists the kinds
a second time.  Models only check what a value can be on its own (``stride ≥ 1``);
whether a layer fits its input is the analysis' job (:mod:`convcalc.analysis`).

>>> spec = Spec.model_validate({"input": [3, 32, 32],
...                             "layers": [{"type": "conv", "filters": 10, "kernel": 5}, "relu"]})
>>> [layer.name for layer in spec.layers]
['conv1', 'relu1']
>>> spec.layers[0].stride
1
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Optional, TypeGuard, Union

from annotated_types import GroupedMetadata

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_SPATIAL_AXES = 3
#: The largest whole number any option or size may be: 2**53 − 1, the largest integer a
#: JSON reader (JavaScript) holds exactly.  Figures derived from such values (products
#: of sizes) stay exact Python integers, printable, and finite as floats in estimates.
MAX_INT = 2**53 - 1
PADDING_MODES = ("valid", "same", "full")


def show(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it in YAML/JSON: ``true``, ``null``, ``'same'``, ``[3, 5]``;
    cut to about ``limit`` characters (deeply nested input stays cheap to show).

    >>> show(True), show(None), show("x"), show([3, 5.0])
    ('true', 'null', "'x'", '[3, 5.0]')
    >>> show([[[[1]]]] * 40)
    '[[[[…]]], [[[…]]], [[[…]]], [[[…]]], [[[…]]], [[[…]]], [[[…]…'
    """
    text = _show(value, depth=3, budget=limit)
    return text if len(text) <= limit else text[:limit] + "…"


def _show(value: Any, depth: int, budget: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, dict)):
        if depth == 0:
            return "[…]" if not isinstance(value, dict) else "{…}"
        parts: list[str] = []
        used = 0
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if used > budget:
                parts.append("…")
                break
            shown = _show(item, depth - 1, budget)
            part = f"{key}: {shown}" if isinstance(value, dict) else shown
            parts.append(part)
            used += len(part) + 2
        inner = ", ".join(parts)
        return "{" + inner + "}" if isinstance(value, dict) else "[" + inner + "]"
    text = repr(value)
    return text if len(text) <= budget else text[:budget] + "…"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded(value: int, minimum: int, entry: str = "") -> None:
    """``minimum ≤ value ≤ MAX_INT`` or a "too_small"/"too_large" error."""
    if value < minimum:
        raise PydanticCustomError("too_small", f"{entry}must be ≥ {minimum} (got {value})")
    if value > MAX_INT:
        raise PydanticCustomError("too_large", f"{entry}must be ≤ {MAX_INT} "
                                  f"(got {_number_text(value)})")


class _Checks(GroupedMetadata):
    """Annotated metadata made of several items (pydantic unpacks it): a validator and
    its JSON Schema as one ``Annotated[T, _Checks(...)]`` entry that type checkers read
    as ``T``."""

    def __init__(self, *items: Any):
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def _per_axis_ints(minimum: int, what: str) -> _Checks:
    """Validator for "one int for every spatial axis, or a list with one per axis"
    (the metadata of ``Annotated[int | tuple[int, ...], ...]``)."""

    def validate(value: Any) -> int | tuple[int, ...]:
        if _is_int(value):
            _bounded(value, minimum)
            return value
        if isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_SPATIAL_AXES:
            for i, item in enumerate(value):
                if not _is_int(item):
                    raise PydanticCustomError(
                        "per_axis", f"entry {i} must be a whole number (got {show(item)})"
                    )
                _bounded(item, minimum, f"entry {i} ")
            return tuple(value)
        raise PydanticCustomError(
            "per_axis",
            f"must be {what}: one whole number ≥ {minimum}, or a list of 1–3 of them, "
            f"one per spatial axis (got {show(value)})",
        )

    bounded = {"type": "integer", "minimum": minimum, "maximum": MAX_INT}
    schema = {
        "oneOf": [
            bounded,
            {
                "type": "array",
                "items": bounded,
                "minItems": 1,
                "maxItems": MAX_SPATIAL_AXES,
            },
        ]
    }
    return _Checks(PlainValidator(validate), WithJsonSchema(schema))


def _validate_padding(value: Any) -> Any:
    if isinstance(value, str):
        if value in PADDING_MODES:
            return value
        raise PydanticCustomError(
            "padding", f"must be a whole number, 'valid', 'same' or 'full' (got {show(value)})"
        )
    if _is_int(value):
        _bounded(value, 0)
        return value
    if isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_SPATIAL_AXES:
        axes: list[Any] = []
        for i, item in enumerate(value):
            if _is_int(item) and 0 <= item <= MAX_INT:
                axes.append(item)
            elif (
                isinstance(item, (list, tuple))
                and len(item) == 2
                and all(_is_int(p) and 0 <= p <= MAX_INT for p in item)
            ):
                axes.append((item[0], item[1]))
            else:
                raise PydanticCustomError(
                    "padding",
                    f"entry {i} must be a whole number ≥ 0 or a [before, after] pair "
                    f"of them (got {show(item)})",
                )
        return tuple(axes)
    raise PydanticCustomError(
        "padding",
        "must be a whole number ≥ 0, 'valid', 'same', 'full', or a list with one entry "
        f"per spatial axis (each a number or a [before, after] pair) (got {show(value)})",
    )


_PAD_INT = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
_PADDING_SCHEMA = {
    "oneOf": [
        _PAD_INT,
        {"enum": list(PADDING_MODES)},
        {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SPATIAL_AXES,
            "items": {
                "oneOf": [
                    _PAD_INT,
                    {"type": "array", "items": _PAD_INT, "minItems": 2, "maxItems": 2},
                ]
            },
        },
    ]
}

Kernel = Annotated[int | tuple[int, ...], _per_axis_ints(1, "a window size")]
Stride = Annotated[int | tuple[int, ...], _per_axis_ints(1, "a stride")]
Dilation = Annotated[int | tuple[int, ...], _per_axis_ints(1, "a dilation")]
OutputPadding = Annotated[int | tuple[int, ...], _per_axis_ints(0, "an output padding")]
OutputSize = Annotated[int | tuple[int, ...], _per_axis_ints(1, "an output size")]
Padding = Annotated[
    Union[int, str, tuple[Any, ...]],
    PlainValidator(_validate_padding),
    WithJsonSchema(_PADDING_SCHEMA),
]
PositiveInt = Annotated[int, Field(strict=True, ge=1, le=MAX_INT)]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
Rounding = Literal["exact", "floor", "ceil"]


def _layer_rounding() -> Any:
    """The ``rounding`` option of the windowed layers (``conv``, the window pools and
    the adaptive pools): the spec's rounding for this layer alone."""
    return Field(default=None, description=(
        "This layer's rounding, instead of the spec's: what to do when its windows do not "
        "tile its input (exact | floor | ceil; default: the spec's). A floor or ceil given "
        "here is declared: it is reported as a note, which --strict accepts."))


def _accept_misalignment() -> Any:
    """The ``accept_misalignment`` option of the merges (``add``, ``concat``, ``mul``)."""
    return Field(default=False, description=(
        "true: the inputs' receptive fields are misaligned by design (a U-Net's upsampled "
        "map beside its skip); the misalignment is reported as a note, which --strict "
        "accepts, instead of a warning."))


def _real(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None) -> _Checks:
    """The metadata of ``Annotated[float, ...]``: a finite number within bounds (NaN and ±infinity are refused: ``.nan``, ``.inf``,
    JSON ``Infinity`` or ``1e999`` would make every computed value meaningless).  Text is
    not a number, as in the JSON Schema: the loader reads a plain ``1e-5`` as a number
    (YAML 1.1 would read it as text), a quoted ``'1e-5'`` stays text."""
    bounds = [(">=", ge, "≥"), (">", gt, ">"), ("<=", le, "≤"), ("<", lt, "<")]

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PydanticCustomError("float_type", f"must be a number (got {show(value)})")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
        if not math.isfinite(number):
            raise PydanticCustomError(
                "finite_number", f"must be a finite number (got {_number_text(value)})")
        for op, bound, symbol in bounds:
            if bound is not None and not _holds(number, op, bound):
                raise PydanticCustomError(
                    "out_of_range", f"must be {symbol} {bound} (got {_number_text(value)})")
        return number

    schema: dict[str, Any] = {"type": "number"}
    for key, bound in (("minimum", ge), ("exclusiveMinimum", gt), ("maximum", le),
                       ("exclusiveMaximum", lt)):
        if bound is not None:
            schema[key] = bound
    return _Checks(PlainValidator(validate), WithJsonSchema(schema))


def _holds(number: float, op: str, bound: float) -> bool:
    return {">=": number >= bound, ">": number > bound, "<=": number <= bound,
            "<": number < bound}[op]


def _number_text(value: Any) -> str:
    """``1e+400`` for a huge int (its digits would not help), else as :func:`show`."""
    if isinstance(value, int) and abs(value) > 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return show(value)


Probability = Annotated[float, _real(ge=0.0, lt=1.0)]


def _validate_scales(value: Any) -> float | tuple[float, ...]:
    """A positive finite factor, or a list of 1–3 of them (one per spatial axis)."""
    def one(item: Any, where: str) -> float:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise PydanticCustomError("scale", f"{where}must be a number (got {show(item)})")
        number = float(item) if abs(item) < 1e300 else math.inf
        if not math.isfinite(number) or number <= 0:
            raise PydanticCustomError("scale", f"{where}must be a finite number > 0 "
                                      f"(got {_number_text(item)})")
        return number

    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= MAX_SPATIAL_AXES:
            raise PydanticCustomError("scale", "must be a number, or a list of 1–3 of them, "
                                      f"one per spatial axis (got {show(value)})")
        return tuple(one(item, f"entry {i} ") for i, item in enumerate(value))
    return one(value, "")


_SCALE = {"type": "number", "exclusiveMinimum": 0}
Scales = Annotated[
    Union[float, tuple[float, ...]], PlainValidator(_validate_scales),
    WithJsonSchema({"oneOf": [_SCALE, {"type": "array", "items": _SCALE, "minItems": 1,
                                       "maxItems": MAX_SPATIAL_AXES}]}),
]


def _validate_channel_range(value: Any) -> tuple[int, int]:
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(_is_int(v) and 0 <= v <= MAX_INT for v in value)):
        start, stop = value
        if start >= stop:
            raise PydanticCustomError("channel_range", f"start must be smaller than stop "
                                      f"(got [{start}, {stop}]: no channels)")
        return start, stop
    raise PydanticCustomError("channel_range", "must be [start, stop], two whole numbers "
                              f"with 0 ≤ start < stop (got {show(value)})")


_CHANNEL = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
ChannelRange = Annotated[
    tuple[int, int], PlainValidator(_validate_channel_range),
    WithJsonSchema({"type": "array", "items": _CHANNEL, "minItems": 2, "maxItems": 2}),
]


def _validate_pad_amounts(value: Any) -> Any:
    if isinstance(value, str):
        raise PydanticCustomError(
            "padding", f"must be numbers: a pad layer has no window for {show(value)} to "
            "refer to (an int, or per axis an int or [before, after])")
    return _validate_padding(value)


PadAmounts = Annotated[
    Union[int, tuple[Any, ...]], PlainValidator(_validate_pad_amounts),
    WithJsonSchema({"oneOf": [_PADDING_SCHEMA["oneOf"][0], _PADDING_SCHEMA["oneOf"][2]]}),
]


def _one_target(layer: Any, options: tuple[str, ...], verb: str) -> None:
    """A resizing layer takes its target from exactly one place: one of ``options``, or
    a second input (the reference) — not several, not none."""
    given = [name for name in options if getattr(layer, name) is not None]
    with_reference = len(layer.inputs or ()) >= 2
    if len(given) > 1:
        raise PydanticCustomError("target", f"give {' or '.join(options)}, not both")
    if given and with_reference:
        raise PydanticCustomError("target", f"a second input (the reference) sets the size "
                                  f"to {verb} to: drop {given[0]}")
    if not given and not with_reference:
        raise PydanticCustomError("target", f"needs {' or '.join(options)}, or "
                                  "inputs: [x, reference] to take the reference's size")


def _given(option: str) -> dict[str, Any]:
    """JSON Schema: ``option`` is present and not null."""
    return {"required": [option], "properties": {option: {"not": {"type": "null"}}}}


def _one_target_schema(options: tuple[str, ...]) -> list[JsonValue]:
    """:func:`_one_target` as JSON Schema rules (for the model's ``allOf``)."""
    given: list[JsonValue] = [_given(option) for option in options]
    reference: dict[str, Any] = {"required": ["inputs"], "properties": {"inputs": {
        "type": "array", "minItems": 2}}}
    rules: list[JsonValue] = [{"anyOf": [*given, reference]},
             {"not": {"allOf": [{"anyOf": given}, reference]}}]
    if len(given) > 1:
        rules.append({"not": {"allOf": given}})
    return rules


@dataclass(frozen=True)
class Example:
    """One layer of a kind on an input shape: the case the docs show and every
    cross-check runs (calculator against engine, verify, gradient check, measured
    receptive fields).  Merges read ``input`` more than once, or an output of the
    layers ``before`` (which make, say, the ``(C, 1, 1)`` a broadcast needs); the
    example's layer is always the last."""

    input: tuple[int, ...]
    layer: dict[str, Any]
    before: tuple[dict[str, Any], ...] = ()

    def spec(self) -> dict[str, Any]:
        """A whole spec ending in the layer: ``{"input": [...], "layers": [..., layer]}``."""
        return {"input": list(self.input),
                "layers": [dict(layer) for layer in self.before] + [dict(self.layer)]}


class LayerBase(BaseModel):
    """Options every layer has.  Values are taken as written, never converted
    (``strict``): ``bias: 1`` or ``bias: "yes"`` is not ``true``, as in the JSON Schema."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)

    #: Examples of this kind (each a layer and an input shape); every kind has one.
    examples: ClassVar[tuple[Example, ...]] = ()

    name: str | None = Field(
        default=None,
        min_length=1,
        description="Unique layer name; default: type + running index (conv1, relu2, ...).",
    )
    trainable: bool = Field(
        default=True, description="false freezes the layer's parameters (transfer learning)."
    )
    inputs: Annotated[
        Optional[list[Annotated[str, Field(min_length=1)]]],
        BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
        WithJsonSchema({"anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            {"type": "null"}]}),
    ] = Field(
        default=None,
        description="Names of earlier layers this layer reads (or 'input'); "
        "default: the previous layer.",
    )


def _examples(*cases: tuple[list[int], dict[str, Any]]) -> tuple[Example, ...]:
    return tuple(Example(tuple(shape), layer) for shape, layer in cases)


class Conv(LayerBase):
    """Convolution (cross-correlation, as deep-learning frameworks define it).

    Weights ``(filters, in_channels / groups, *kernel)``, one bias per filter.
    """

    examples = _examples(
        ([3, 7, 7], {"type": "conv", "filters": 4, "kernel": 3, "stride": 2, "padding": 1}),
        ([4, 9], {"type": "conv", "filters": 2, "kernel": 3, "dilation": 2, "groups": 2}),
        ([2, 5, 4, 4], {"type": "conv", "filters": 2, "kernel": [3, 2, 2], "padding": "same",
                        "bias": False}),
        ([4, 6, 6], {"type": "conv", "filters": 4, "kernel": 3, "groups": "depthwise",
                     "padding": [[0, 1], 1]}),
        ([2, 5, 5], {"type": "conv", "filters": 3, "kernel": 3, "padding": 1,
                     "padding_mode": "reflect"}),
        ([2, 6], {"type": "conv", "filters": 2, "kernel": 3, "padding": [[2, 1]],
                  "padding_mode": "replicate"}),
        ([2, 5, 5], {"type": "conv", "filters": 2, "kernel": 3, "stride": 2, "padding": 1,
                     "padding_mode": "circular"}),
        # torchvision's 3×3/2 pad 1 on an even size, floored on the layer (a note)
        ([2, 8, 8], {"type": "conv", "filters": 2, "kernel": 3, "stride": 2, "padding": 1,
                     "rounding": "floor"}),
        ([2, 8], {"type": "conv", "filters": 2, "kernel": 3, "stride": 2, "rounding": "ceil"}),
    )

    type: Literal["conv"]
    filters: PositiveInt = Field(description="Number of filters: the output channels.")
    kernel: Kernel = Field(description="Window size: one int for every spatial axis, or one per axis.")
    stride: Stride = Field(default=1, description="Step between windows: one int, or one per axis.")
    padding: Padding = Field(default=0, description="Zeros around the input: an int, valid, same, full, or per axis an int or [before, after].")
    dilation: Dilation = Field(default=1, description="Spacing of the window's taps: extent dilation·(kernel − 1) + 1.")
    groups: PositiveInt | Literal["depthwise"] = Field(
        default=1, description="Channel groups; 'depthwise' means one group per input channel."
    )
    bias: bool = Field(default=True, description="One learned bias per output channel or unit.")
    padding_mode: PaddingMode = Field(
        default="zeros", description="What the padding holds (PyTorch's padding_mode): zeros, "
        "or the input reflected (without the edge), replicated (the edge repeated) or "
        "wrapped around (circular).")
    rounding: Optional[Rounding] = _layer_rounding()


class ConvTranspose(LayerBase):
    """Transposed convolution (the gradient of a convolution with respect to its input).

    Weights ``(in_channels, filters / groups, *kernel)``, one bias per filter.  Output
    size ``(in − 1)·stride − pad_before − pad_after + dilation·(kernel − 1) + output_padding + 1``.
    """

    examples = _examples(
        ([4, 3, 3], {"type": "conv_transpose", "filters": 2, "kernel": 4, "stride": 2,
                     "padding": 1}),
        ([2, 4], {"type": "conv_transpose", "filters": 4, "kernel": 3, "stride": 3,
                  "output_padding": 1, "groups": 2}),
        ([2, 2, 3, 2], {"type": "conv_transpose", "filters": 1, "kernel": 2, "stride": 2,
                        "dilation": 1, "bias": False}),
    )

    type: Literal["conv_transpose"]
    filters: PositiveInt = Field(description="Number of filters: the output channels.")
    kernel: Kernel = Field(description="Window size: one int for every spatial axis, or one per axis.")
    stride: Stride = Field(default=1, description="Step between windows: one int, or one per axis.")
    padding: Padding = Field(default=0, description="Zeros around the input: an int, valid, same, full, or per axis an int or [before, after].")
    output_padding: OutputPadding = Field(default=0, description="Extra rows/columns at the end of the output; smaller than stride or dilation.")
    dilation: Dilation = Field(default=1, description="Spacing of the window's taps: extent dilation·(kernel − 1) + 1.")
    groups: PositiveInt = Field(default=1, description="Channel groups: each filter sees in_channels / groups channels.")
    bias: bool = Field(default=True, description="One learned bias per output channel or unit.")


class Pool(LayerBase):
    """Max, average or min pooling over windows; depth unchanged, no parameters.

    ``stride`` defaults to ``kernel``.  ``ceil_mode: true`` rounds a non-integer output
    size up (PyTorch's rule: a window that would start in the right padding is dropped),
    whatever the spec's ``rounding``.  Average pooling divides by the full window,
    padding included (PyTorch's ``count_include_pad=True``).
    """

    examples = _examples(
        ([2, 6, 6], {"type": "maxpool", "kernel": 2}),
        ([2, 7, 7], {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}),
        ([3, 8], {"type": "avgpool", "kernel": 3, "stride": 2, "ceil_mode": True}),
        ([2, 4, 4, 4], {"type": "minpool", "kernel": 2, "dilation": 1}),
        ([2, 6, 6], {"type": "avgpool", "kernel": 3, "stride": 1, "padding": 1}),
        ([2, 7, 7], {"type": "avgpool", "kernel": 2, "rounding": "ceil"}),
        ([2, 8], {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1,
                  "ceil_mode": True, "rounding": "ceil"}),
    )

    type: Literal["maxpool", "avgpool", "minpool"]
    kernel: Kernel = Field(description="Window size: one int for every spatial axis, or one per axis.")
    stride: Stride | None = Field(default=None, description="Default: the kernel size.")
    padding: Padding = Field(default=0, description="Zeros around the input: an int, valid, same, full, or per axis an int or [before, after].")
    dilation: Dilation = Field(default=1, description="Spacing of the window's taps: extent dilation·(kernel − 1) + 1.")
    ceil_mode: bool = Field(default=False, description="Round a non-whole output size up (PyTorch's ceil_mode), whatever the spec's rounding.")
    rounding: Optional[Rounding] = _layer_rounding()

    model_config = ConfigDict(json_schema_extra={"allOf": [{"not": {
        "required": ["ceil_mode", "rounding"],
        "properties": {"ceil_mode": {"const": True}, "rounding": {"enum": ["exact", "floor"]}}}}]})

    @model_validator(mode="after")
    def _one_rounding(self) -> "Pool":
        if self.ceil_mode and self.rounding in ("exact", "floor"):
            raise PydanticCustomError("rounding", f"ceil_mode: true rounds up, which "
                                      f"contradicts rounding: {self.rounding} (drop one)")
        return self


class GlobalPool(LayerBase):
    """Average or max over all spatial positions: ``(C, *spatial) → (C,)``."""

    examples = _examples(
        ([3, 4, 5], {"type": "global_avgpool"}),
        ([2, 6], {"type": "global_maxpool"}),
        ([2, 3, 2, 2], {"type": "global_avgpool"}),
    )

    type: Literal["global_avgpool", "global_maxpool"]


class Flatten(LayerBase):
    """``(C, *spatial) → (C·prod(spatial),)`` in channels-first (C-contiguous) order."""

    examples = _examples(([3, 4, 4], {"type": "flatten"}), ([5], {"type": "flatten"}))

    type: Literal["flatten"]


class Dense(LayerBase):
    """Fully connected (affine) layer on a flat vector: ``in·units + units`` parameters."""

    examples = (
        Example((12,), {"type": "dense", "units": 5}),
        # global pooling gives 7 features at any spatial size (the memory test scales it)
        Example((7, 4, 4), {"type": "dense", "units": 3, "bias": False, "in_features": 7},
                ({"type": "global_avgpool"},)),
    )

    type: Literal["dense"]
    units: PositiveInt = Field(description="Output features.")
    bias: bool = Field(default=True, description="One learned bias per output channel or unit.")
    in_features: Optional[PositiveInt] = Field(
        default=None, description="The input width it is built for; default: whatever its "
        "input has (then its parameter count follows the input size).")


_ELEMENTWISE_INPUTS = ([3, 5, 5], [6], [2, 7], [2, 3, 3, 3])


def _elementwise_examples(layer: dict[str, Any]) -> tuple[Example, ...]:
    """The same layer on a feature map in 1, 2 and 3 spatial axes and on a flat vector."""
    return tuple(Example(tuple(shape), layer) for shape in _ELEMENTWISE_INPUTS)


class ReLU(LayerBase):
    """``max(x, 0)``, element-wise."""

    examples = _elementwise_examples({"type": "relu"})
    type: Literal["relu"]


class Sigmoid(LayerBase):
    """``1 / (1 + e^(−x))``, element-wise."""

    examples = _elementwise_examples({"type": "sigmoid"})
    type: Literal["sigmoid"]


class Tanh(LayerBase):
    """``tanh(x)``, element-wise."""

    examples = _elementwise_examples({"type": "tanh"})
    type: Literal["tanh"]


class Softmax(LayerBase):
    """Softmax over the channel axis (the features of a flat vector), at every spatial
    position: ``e^(x_c) / Σ_c' e^(x_c')``."""

    examples = _elementwise_examples({"type": "softmax"})
    type: Literal["softmax"]


class LeakyRelu(LayerBase):
    """``max(x, negative_slope·x)``."""

    examples = _elementwise_examples({"type": "leaky_relu", "negative_slope": 0.2})

    type: Literal["leaky_relu"]
    negative_slope: Annotated[float, _real(ge=0.0)] = Field(default=0.01, description="Slope for negative inputs.")


class Dropout(LayerBase):
    """Zeroes each activation with probability ``rate`` in training (inverted dropout)."""

    examples = _elementwise_examples({"type": "dropout", "rate": 0.3})

    type: Literal["dropout"]
    rate: Probability = Field(default=0.5, description="Probability of zeroing an activation in training.")


class Identity(LayerBase):
    """The input, unchanged (a placeholder, or a named point of the graph)."""

    examples = _elementwise_examples({"type": "identity"})
    type: Literal["identity"]


class ReLU6(LayerBase):
    """``min(max(x, 0), 6)``, element-wise (MobileNetV2)."""

    examples = _elementwise_examples({"type": "relu6"})
    type: Literal["relu6"]


class Hardswish(LayerBase):
    """``x · relu6(x + 3) / 6``, element-wise (MobileNetV3)."""

    examples = _elementwise_examples({"type": "hardswish"})
    type: Literal["hardswish"]


class Hardsigmoid(LayerBase):
    """``relu6(x + 3) / 6``, element-wise (MobileNetV3's squeeze-and-excitation gate)."""

    examples = _elementwise_examples({"type": "hardsigmoid"})
    type: Literal["hardsigmoid"]


class SiLU(LayerBase):
    """``x · sigmoid(x)`` (swish), element-wise (EfficientNet)."""

    examples = _elementwise_examples({"type": "silu"})
    type: Literal["silu"]


class Mish(LayerBase):
    """``x · tanh(softplus(x))``, element-wise."""

    examples = _elementwise_examples({"type": "mish"})
    type: Literal["mish"]


class SELU(LayerBase):
    """``λ·x`` for ``x > 0``, else ``λ·α·(e^x − 1)``, with PyTorch's constants
    ``α ≈ 1.6733``, ``λ ≈ 1.0507``; element-wise."""

    examples = _elementwise_examples({"type": "selu"})
    type: Literal["selu"]


class LogSoftmax(LayerBase):
    """``x_c − log Σ_c' e^(x_c')`` over the channel axis (the features of a flat
    vector), at every spatial position (0 everywhere over a single channel: a
    warning)."""

    examples = _elementwise_examples({"type": "log_softmax"})
    type: Literal["log_softmax"]


class GELU(LayerBase):
    """``x · Φ(x)`` with ``Φ`` the standard normal CDF (``approximate: tanh``:
    ``x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))``), element-wise (ConvNeXt)."""

    examples = _elementwise_examples({"type": "gelu"}) + _examples(
        ([3, 4, 4], {"type": "gelu", "approximate": "tanh"}),
        ([2, 7], {"type": "gelu", "approximate": "tanh"}),
        ([2, 3, 2, 3], {"type": "gelu", "approximate": "tanh"}))
    type: Literal["gelu"]
    approximate: Literal["none", "tanh"] = Field(
        default="none", description="none: the exact CDF; tanh: its tanh approximation.")


class ELU(LayerBase):
    """``x`` for ``x > 0``, else ``alpha·(e^x − 1)``, element-wise."""

    examples = _elementwise_examples({"type": "elu", "alpha": 0.5})
    type: Literal["elu"]
    alpha: Annotated[float, _real()] = Field(default=1.0, description="The output for large negative x tends to −alpha.")


class Softplus(LayerBase):
    """``log(1 + e^(beta·x)) / beta``, and ``x`` itself where ``beta·x > threshold``
    (PyTorch's rule, for numerical stability), element-wise."""

    examples = _elementwise_examples({"type": "softplus", "beta": 2.0, "threshold": 1.5})
    type: Literal["softplus"]
    beta: Annotated[float, _real(gt=0.0)] = Field(default=1.0, description="Sharpness.")
    threshold: Annotated[float, _real()] = Field(default=20.0, description="Where beta·x > threshold the output is x.")


class DropPath(LayerBase):
    """Stochastic depth: in training each example's whole tensor is zeroed with
    probability ``rate`` and the others scaled by ``1/(1 − rate)``; the identity in
    evaluation."""

    examples = _elementwise_examples({"type": "drop_path", "rate": 0.25})
    type: Literal["drop_path"]
    rate: Probability = Field(default=0.0, description="Probability of dropping an example's tensor in training.")


class PReLU(LayerBase):
    """``max(x, 0) + a·min(x, 0)`` with a learned slope ``a`` (initially 0.25): one
    parameter, or one per channel with ``per_channel: true``."""

    examples = _examples(([3, 4, 4], {"type": "prelu"}),
                         ([3, 4, 4], {"type": "prelu", "per_channel": True}),
                         ([5], {"type": "prelu", "per_channel": True}),
                         ([2, 6], {"type": "prelu"}),
                         ([2, 3, 2, 3], {"type": "prelu", "per_channel": True}))
    type: Literal["prelu"]
    per_channel: bool = Field(default=False, description="One slope per channel instead of one in all.")


class LayerNorm(LayerBase):
    """Normalise over the channel axis at every spatial position (ConvNeXt's
    LayerNorm2d): ``(x − mean_c) / sqrt(var_c + eps)``, then ``gamma·x̂ + beta`` per
    channel when ``affine`` (2·C parameters).  Any input with a channel axis:
    ``(C, *spatial)``, ``(C, 1, 1)``, a flat ``(C,)``."""

    examples = _examples(([4, 3, 3], {"type": "layernorm"}), ([6], {"type": "layernorm"}),
                         ([4, 1, 1], {"type": "layernorm", "eps": 1e-6}),
                         ([2, 5], {"type": "layernorm", "affine": False}),
                         ([3, 2, 2, 2], {"type": "layernorm"}))
    type: Literal["layernorm"]
    eps: Annotated[float, _real(gt=0.0)] = Field(default=1e-5, description="Added to the variance before the square root.")
    affine: bool = Field(default=True, description="Learn a per-channel scale (gamma) and shift (beta).")


class GroupNorm(LayerBase):
    """Normalise each example over groups of ``C / groups`` channels and every spatial
    position; ``gamma``, ``beta`` per channel when ``affine`` (2·C parameters).  ``C``
    must divide by ``groups``."""

    examples = _examples(([4, 3, 3], {"type": "groupnorm", "groups": 2}),
                         ([6], {"type": "groupnorm", "groups": 3}),
                         ([4, 2, 2, 2], {"type": "groupnorm", "groups": 4, "affine": False}),
                         ([6, 5], {"type": "groupnorm", "groups": 1, "eps": 1e-3}))
    type: Literal["groupnorm"]
    groups: PositiveInt = Field(description="Channel groups normalised together.")
    eps: Annotated[float, _real(gt=0.0)] = Field(default=1e-5, description="Added to the variance before the square root.")
    affine: bool = Field(default=True, description="Learn a per-channel scale (gamma) and shift (beta).")


class InstanceNorm(LayerBase):
    """Normalise each example's channels over their spatial positions (no running
    statistics); ``gamma``, ``beta`` per channel when ``affine`` (2·C parameters).
    Needs a feature map with more than one position (as PyTorch in training)."""

    examples = _examples(([3, 4, 4], {"type": "instancenorm", "affine": True}),
                         ([2, 6], {"type": "instancenorm"}),
                         ([2, 3, 2, 3], {"type": "instancenorm", "eps": 1e-3}))
    type: Literal["instancenorm"]
    eps: Annotated[float, _real(gt=0.0)] = Field(default=1e-5, description="Added to the variance before the square root.")
    affine: bool = Field(default=False, description="Learn a per-channel scale (gamma) and shift (beta).")


class Scale(LayerBase):
    """A learned per-channel multiplier (ConvNeXt's layer scale, Caffe's Scale):
    ``w_c·x`` (``+ b_c`` with ``bias``), ``w`` initially 1 and ``b`` 0; C parameters,
    2·C with ``bias``."""

    examples = _examples(([3, 4, 4], {"type": "scale"}), ([5], {"type": "scale", "bias": True}),
                         ([2, 3, 3, 3], {"type": "scale", "bias": True}),
                         ([4, 6], {"type": "scale"}))
    type: Literal["scale"]
    bias: bool = Field(default=False, description="Also learn a per-channel shift.")


class AdaptivePool(LayerBase):
    """Average or max pooling to a fixed ``output`` size (PyTorch's windows): output
    ``i`` of ``out`` covers inputs ``floor(i·in/out)`` … ``ceil((i+1)·in/out) − 1``;
    channels kept; ``out`` may exceed ``in``.  When neither of ``in`` and ``out`` is a
    multiple of the other the windows differ in size and neighbours share a position:
    a warning under ``rounding: exact`` names their sizes; under ``floor`` or ``ceil``
    (which accept windows that do not tile) nothing is said — every position is still
    read, none is lost.  The receptive field is exact; its size is the largest
    window's."""

    examples = _examples(
        ([3, 6, 6], {"type": "adaptive_avgpool", "output": 2}),
        ([2, 5, 7], {"type": "adaptive_avgpool", "output": [3, 2]}),
        ([2, 7], {"type": "adaptive_maxpool", "output": 1}),
        ([2, 6, 4], {"type": "adaptive_maxpool", "output": [3, 2]}),
        ([2, 4, 4, 4], {"type": "adaptive_avgpool", "output": 2}),
        ([2, 3, 4], {"type": "adaptive_maxpool", "output": [5, 6]}),
        ([2, 5], {"type": "adaptive_avgpool", "output": 3, "rounding": "floor"}),
    )
    type: Literal["adaptive_avgpool", "adaptive_maxpool"]
    output: OutputSize = Field(
        description="Output size: one int for every spatial axis, or one per axis.")
    rounding: Optional[Rounding] = _layer_rounding()


class Mul(LayerBase):
    """Element-wise product of two or more ``inputs``.  Like ``add`` it broadcasts
    size-1 axes as NumPy does (shapes without the batch, aligned at their last axis):
    ``(C, 1, 1) × (C, H, W) → (C, H, W)``, as in squeeze-and-excitation; a flat
    ``(F,)`` input lines up with the last axis (a warning when ``F > 1``)."""

    examples = (
        Example((3, 4, 4), {"type": "mul", "inputs": ["input", "input"]}),
        Example((3, 4, 4), {"type": "mul", "inputs": ["gate", "input"]},
                ({"name": "gate", "type": "adaptive_avgpool", "output": 1},)),
        Example((2, 5), {"type": "mul", "inputs": ["input", "gate", "input"]},
                ({"name": "gate", "type": "adaptive_maxpool", "output": 1},)),
        Example((2, 4, 4, 4), {"type": "mul", "inputs": ["cube", "plane"]},
                ({"name": "cube", "type": "adaptive_avgpool", "output": 2},
                 {"name": "plane", "type": "adaptive_maxpool", "output": [1, 2, 1],
                  "inputs": "input"})),
        Example((4,), {"type": "mul", "inputs": ["input", "input"]}),
    )
    type: Literal["mul"]
    accept_misalignment: bool = _accept_misalignment()


class ChannelShuffle(LayerBase):
    """ShuffleNet's channel shuffle: the channels, seen as ``(groups, C / groups)``,
    transposed; shape unchanged.  ``C`` must divide by ``groups``."""

    examples = _examples(([4, 3, 3], {"type": "channel_shuffle", "groups": 2}),
                         ([6], {"type": "channel_shuffle", "groups": 3}),
                         ([6, 2, 2, 2], {"type": "channel_shuffle", "groups": 2}),
                         ([6, 4], {"type": "channel_shuffle", "groups": 3}))
    type: Literal["channel_shuffle"]
    groups: PositiveInt = Field(description="Channel groups to interleave.")


class Slice(LayerBase):
    """Channels ``start`` … ``stop − 1`` of the input (ShuffleNet's channel split)."""

    examples = _examples(([4, 3, 3], {"type": "slice", "channels": [1, 3]}),
                         ([5], {"type": "slice", "channels": [0, 2]}),
                         ([4, 2, 3], {"type": "slice", "channels": [2, 4]}),
                         ([3, 5], {"type": "slice", "channels": [2, 3]}),
                         ([4, 2, 3, 2], {"type": "slice", "channels": [0, 3]}))
    type: Literal["slice"]
    channels: ChannelRange = Field(description="[start, stop]: the channels start … stop − 1.")


class Upsample(LayerBase):
    """Resize the spatial axes: to ``floor(in·scale)``, to ``size``, or with ``inputs:
    [x, ref]`` to ``ref``'s spatial size (channels from ``x``; ``ref`` may be ``input``).
    ``nearest`` reads source ``floor(dst·in/out)`` (PyTorch's ``nearest`` with
    ``size``); ``linear`` is bi- or tri-linear by the number of axes, ``cubic`` PyTorch's
    bicubic convolution (``A = −0.75``, sources past the edge clamped to it) along each
    axis; with ``align_corners`` the corner samples align (``src = dst·(in − 1)/(out −
    1)``), else ``src = (dst + ½)·in/out − ½`` (linear: at least 0).  Sources use
    ``in/out`` also when ``scale`` sets the size (PyTorch's ``scale_factor`` uses
    ``1/scale``), and ``floor(in·scale)`` is PyTorch's: the floor of the product in
    doubles (``10 × 0.3`` gives 3)."""

    examples = (
        Example((2, 3, 3), {"type": "upsample", "scale": 2}),
        Example((2, 3), {"type": "upsample", "size": [5], "mode": "linear"}),
        Example((2, 3, 4), {"type": "upsample", "scale": [2, 1.5], "mode": "linear",
                            "align_corners": True}),
        Example((2, 3, 3), {"type": "upsample", "scale": 2, "mode": "cubic"}),
        Example((1, 2, 3, 2), {"type": "upsample", "scale": 2, "mode": "linear"}),
        Example((2, 6, 6), {"type": "upsample", "inputs": ["down", "input"], "mode": "linear"},
                ({"name": "down", "type": "maxpool", "kernel": 2},)),
        Example((2, 4), {"type": "upsample", "size": [7]}),
        Example((1, 2, 3, 2), {"type": "upsample", "size": [3, 5, 3]}),
        Example((2, 4), {"type": "upsample", "scale": 2, "mode": "cubic", "align_corners": True}),
        Example((1, 2, 3, 2), {"type": "upsample", "size": [3, 5, 4], "mode": "cubic"}),
    )
    type: Literal["upsample"]
    scale: Optional[Scales] = Field(default=None, description="Factor per axis (one number, or one per axis); output floor(in·scale).")
    size: Optional[OutputSize] = Field(
        default=None, description="Output size: one int for every spatial axis, or one per axis.")
    mode: Literal["nearest", "linear", "cubic"] = Field(default="nearest", description="How values between samples are found.")
    align_corners: bool = Field(default=False, description="linear/cubic: align the corner samples of input and output.")

    model_config = ConfigDict(json_schema_extra={"allOf": _one_target_schema(("scale", "size")) + [
        {"not": {"required": ["align_corners"], "properties": {
            "align_corners": {"const": True}, "mode": {"const": "nearest"}}}}]})

    @model_validator(mode="after")
    def _one_size(self) -> "Upsample":
        _one_target(self, ("scale", "size"), "resize")
        if self.align_corners and self.mode == "nearest":
            raise PydanticCustomError("align_corners", "align_corners applies to linear and "
                                      "cubic only")
        return self


class PixelShuffle(LayerBase):
    """Sub-pixel convolution's rearrangement: ``(C·r^d, *S) → (C, *S·r)`` for ``d``
    spatial axes (ESPCN); the channels must divide by ``r^d``."""

    examples = _examples(([8, 3, 3], {"type": "pixel_shuffle", "factor": 2}),
                         ([4, 3], {"type": "pixel_shuffle", "factor": 2}),
                         ([8, 2, 2, 2], {"type": "pixel_shuffle", "factor": 2}),
                         ([9, 2, 2], {"type": "pixel_shuffle", "factor": 3}))
    type: Literal["pixel_shuffle"]
    factor: PositiveInt = Field(description="The upscaling factor r.")


class PixelUnshuffle(LayerBase):
    """The inverse of ``pixel_shuffle``: ``(C, *S) → (C·r^d, *S/r)``; every spatial size
    must divide by ``r`` (an error naming the nearest sizes that do otherwise)."""

    examples = _examples(([2, 4, 6], {"type": "pixel_unshuffle", "factor": 2}),
                         ([1, 6], {"type": "pixel_unshuffle", "factor": 3}),
                         ([1, 2, 4, 2], {"type": "pixel_unshuffle", "factor": 2}))
    type: Literal["pixel_unshuffle"]
    factor: PositiveInt = Field(description="The downscaling factor r.")


class Pad(LayerBase):
    """Pad the spatial axes: ``zeros`` (the constant ``value``), ``reflect`` (mirrored
    without the edge; padding < size), ``replicate`` (the edge repeated) or
    ``circular`` (wrapped around; padding ≤ size), as ``F.pad``."""

    examples = _examples(([2, 4, 4], {"type": "pad", "padding": 1}),
                         ([2, 4, 4], {"type": "pad", "padding": [[1, 2], [0, 1]], "mode": "reflect"}),
                         ([3, 5], {"type": "pad", "padding": 2, "mode": "replicate"}),
                         ([2, 3, 3, 3], {"type": "pad", "padding": 1, "mode": "circular"}),
                         ([2, 3, 3], {"type": "pad", "padding": [0, [2, 0]], "value": 0.5}))
    type: Literal["pad"]
    padding: PadAmounts = Field(description="An int (every side), or per axis an int or [before, after].")
    mode: PaddingMode = Field(default="zeros", description="What the padding holds.")
    value: Annotated[float, _real()] = Field(default=0.0, description="The constant of zeros mode.")


class Crop(LayerBase):
    """Cut the spatial axes to ``size``, or with ``inputs: [x, ref]`` to ``ref``'s
    spatial size (U-Net's copy and crop; ``ref`` may be ``input``); ``anchor: center``
    keeps the middle (offset ``floor((in − out)/2)``: an odd difference cuts one more at
    the end), ``start`` the beginning.  A crop larger than its input is an error."""

    examples = (
        Example((2, 5, 6), {"type": "crop", "size": [3, 3]}),
        Example((3, 5), {"type": "crop", "size": 2, "anchor": "start"}),
        Example((2, 7, 7), {"type": "crop", "inputs": ["input", "small"]},
                ({"name": "small", "type": "conv", "filters": 2, "kernel": 3},)),
        Example((1, 4, 5, 4), {"type": "crop", "size": [2, 3, 3]}),
    )
    type: Literal["crop"]
    size: Optional[OutputSize] = Field(
        default=None, description="Output size: one int for every spatial axis, or one per axis.")
    anchor: Literal["center", "start"] = Field(default="center", description="Which part is kept.")

    model_config = ConfigDict(json_schema_extra={"allOf": _one_target_schema(("size",))})

    @model_validator(mode="after")
    def _one_size(self) -> "Crop":
        _one_target(self, ("size",), "crop")
        return self


class BatchNorm(LayerBase):
    """Per-channel normalisation: gamma and beta are parameters (2·C), the running mean
    and variance are buffers (2·C; Keras lists them as "non-trainable params")."""

    examples = _examples(([3, 4, 4], {"type": "batchnorm"}), ([5], {"type": "batchnorm"}),
                         ([2, 6], {"type": "batchnorm", "eps": 1e-3, "momentum": 0.5}),
                         ([2, 3, 3, 3], {"type": "batchnorm"}))

    type: Literal["batchnorm"]
    eps: Annotated[float, _real(gt=0.0)] = Field(default=1e-5, description="Added to the variance before the square root.")
    momentum: Annotated[float, _real(ge=0.0, le=1.0)] = Field(default=0.1, description="Weight of the new batch in the running statistics.")


class LRN(LayerBase):
    """Local response normalisation across channels (AlexNet):
    ``x / (k + alpha/size · Σ x²)^beta`` over ``size`` neighbouring channels."""

    examples = _examples(([6, 3, 3], {"type": "lrn", "size": 3, "alpha": 0.5, "k": 2.0}),
                         ([5], {"type": "lrn", "size": 2}),
                         ([4, 5], {"type": "lrn", "size": 5, "beta": 0.5}))

    type: Literal["lrn"]
    size: PositiveInt = Field(default=5, description="Neighbouring channels in the sum.")
    alpha: Annotated[float, _real(ge=0.0)] = Field(default=1e-4, description="Scale of the sum of squares.")
    beta: Annotated[float, _real(ge=0.0)] = Field(default=0.75, description="Exponent.")
    k: Annotated[float, _real(gt=0.0)] = Field(default=1.0, description="Additive constant (> 0: the base of the power stays positive).")


class Add(LayerBase):
    """Element-wise sum of two or more ``inputs``; size-1 axes broadcast as for ``mul``
    (``(C, 1, W) + (C, H, W) → (C, H, W)``)."""

    examples = _examples(([3, 4, 4], {"type": "add", "inputs": ["input", "input"]}),
                         ([5], {"type": "add", "inputs": ["input", "input", "input"]})) + (
        Example((3, 8, 8), {"type": "add", "inputs": ["row", "grid"]},
                ({"name": "row", "type": "adaptive_maxpool", "output": [1, 4]},
                 {"name": "grid", "type": "adaptive_avgpool", "output": 4, "inputs": "input"})),
        Example((2, 6), {"type": "add", "inputs": ["input", "gate"]},
                ({"name": "gate", "type": "adaptive_avgpool", "output": 1},)),
    )
    type: Literal["add"]
    accept_misalignment: bool = _accept_misalignment()


class Concat(LayerBase):
    """Join two or more ``inputs`` along the channel axis (spatial sizes equal)."""

    examples = _examples(([3, 4, 4], {"type": "concat", "inputs": ["input", "input"]}),
                         ([2, 5], {"type": "concat", "inputs": ["input", "input"]}),
                         ([4], {"type": "concat", "inputs": ["input", "input"]})) + (
        # a U-Net's 2×2/2 transposed conv beside its skip: ½ pixel off, by design
        Example((2, 4, 4), {"type": "concat", "inputs": ["input", "up"],
                            "accept_misalignment": True},
                ({"type": "maxpool", "kernel": 2},
                 {"name": "up", "type": "conv_transpose", "filters": 2, "kernel": 2,
                  "stride": 2})),
    )
    type: Literal["concat"]
    accept_misalignment: bool = _accept_misalignment()


#: Every layer kind, in the order the docs list them.
LAYER_MODELS: tuple[type[LayerBase], ...] = (
    Conv,
    ConvTranspose,
    Pool,
    GlobalPool,
    Flatten,
    Dense,
    ReLU,
    Sigmoid,
    Tanh,
    Softmax,
    LeakyRelu,
    Dropout,
    BatchNorm,
    LRN,
    Identity,
    ReLU6,
    Hardswish,
    Hardsigmoid,
    SiLU,
    Mish,
    SELU,
    LogSoftmax,
    GELU,
    ELU,
    Softplus,
    DropPath,
    PReLU,
    LayerNorm,
    GroupNorm,
    InstanceNorm,
    Scale,
    AdaptivePool,
    ChannelShuffle,
    Slice,
    Upsample,
    PixelShuffle,
    PixelUnshuffle,
    Pad,
    Crop,
    Add,
    Concat,
    Mul,
)


def layer_types(model: type[LayerBase]) -> tuple[str, ...]:
    """The ``type`` tags a model class accepts.

    >>> layer_types(Pool)
    ('maxpool', 'avgpool', 'minpool')
    """
    types: tuple[str, ...] = model.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
    return types


#: ``type`` tag → model class, for every kind.
MODEL_BY_TYPE: dict[str, type[LayerBase]] = {
    tag: model for model in LAYER_MODELS for tag in layer_types(model)
}


def _bare_layer_to_dict(value: Any) -> Any:
    """``- relu`` is short for ``- {type: relu}``."""
    return {"type": value} if isinstance(value, str) else value


if TYPE_CHECKING:
    # the union is built from LAYER_MODELS at run time; to a type checker a layer is
    # what every one of them is, a LayerBase
    Layer = LayerBase
else:
    Layer = Annotated[
        Union[tuple(LAYER_MODELS)],
        Field(discriminator="type"),
        BeforeValidator(_bare_layer_to_dict),
    ]


class Block(BaseModel):
    """A reusable group of layers, used by writing its name as a layer ``type``.

    ``params`` maps each parameter to its default (``null``: required); ``$param`` (or an
    expression such as ``"$channels * 4"``) in the layers is replaced by its value.
    Inside a block, ``input`` names the block's input; its output is its last layer's.
    """

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Parameter → default (null: required).")
    layers: Annotated[list[Any], Field(min_length=1)]


class Spec(BaseModel):
    """A network: an input shape (channels first) and a list of layers.

    After :func:`convcalc.validate` the layers are *flat*: blocks and ``repeat`` are
    expanded, every layer has its full name and its resolved ``inputs``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Shown in reports.")
    input: Annotated[
        list[Optional[PositiveInt]],
        Field(
            min_length=1,
            max_length=1 + MAX_SPATIAL_AXES,
            description="Channels, then 1, 2 or 3 spatial sizes; a single number is a flat "
            "vector.  A spatial size may be left open (null): `convcalc sizes` says which "
            "work, and `--input` sets one.",
        ),
    ]
    rounding: Rounding = Field(
        default="exact",
        description="What to do when a window does not tile its input: exact reports an "
        "error; floor and ceil round (and warn). A layer's own rounding overrides it.",
    )
    layers: Annotated[list[Layer], Field(min_length=1)]
    blocks: dict[str, Block] = Field(default_factory=dict,
                                     description="Reusable blocks, by name.")

    # Where each key stood in the file (a loading.SourceMap); set by convcalc.loading.
    _source: Any = PrivateAttr(default=None)
    # Per flat layer: its path in the file, and the block instances it belongs to
    # (outermost first, as (instance name, block name)); set by convcalc.blocks.
    _origins: Any = PrivateAttr(default=None)
    _groups: Any = PrivateAttr(default=None)
    # What the analysis derives from the layers alone (convcalc.analysis._plan).
    _plan: Any = PrivateAttr(default=None)

    @property
    def plan_cache(self) -> Any:
        """The analysis' plan of these layers (shared by :meth:`with_input` copies)."""
        return self._plan

    @plan_cache.setter
    def plan_cache(self, plan: Any) -> None:
        self._plan = plan

    @model_validator(mode="after")
    def _channels_given(self) -> "Spec":
        if self.input[0] is None:
            raise PydanticCustomError("open_channels", "input: the channels (first entry) "
                                      "cannot be open (null); only spatial sizes can")
        return self

    @property
    def open_axes(self) -> tuple[int, ...]:
        """Indices (among the spatial axes) of the sizes left open (``null``)."""
        return tuple(i for i, n in enumerate(self.input[1:]) if n is None)

    def with_input(self, shape: "list[int | None] | tuple[int | None, ...]") -> "Spec":
        """The same network on another input shape (what ``--input`` does); the layers,
        and where they stood in the file, are shared.

        >>> spec = Spec.model_validate({"input": [3, None, None], "layers": ["relu"]})
        >>> spec.open_axes, spec.with_input([3, 8, 8]).input
        ((0, 1), [3, 8, 8])
        """
        shape = list(shape)
        bad = [n for n in shape[1:] if n is not None and not (_is_int(n) and 1 <= n <= MAX_INT)]
        if (not 1 <= len(shape) <= 1 + MAX_SPATIAL_AXES or not _is_int(shape[0])
                or not 1 <= shape[0] <= MAX_INT or bad):
            from .errors import Diagnostic, SpecError

            raise SpecError([Diagnostic(
                "error", f"must be channels then 0–{MAX_SPATIAL_AXES} spatial sizes, whole "
                f"numbers 1 … {MAX_INT} (or null for an open size) (got {show(shape)})",
                field="input")])
        return self.model_copy(update={"input": shape})

    @model_validator(mode="after")
    def _name_layers(self) -> "Spec":
        counts: Counter[str] = Counter()
        previous = "input"
        given = {layer.name for layer in self.layers if layer.name is not None}
        for layer in self.layers:
            counts[layer.type] += 1  # type: ignore[attr-defined]
            if layer.name is None:
                name = f"{layer.type}{counts[layer.type]}"  # type: ignore[attr-defined]
                while name in given:     # a name given explicitly is never also made up
                    counts[layer.type] += 1  # type: ignore[attr-defined]
                    name = f"{layer.type}{counts[layer.type]}"  # type: ignore[attr-defined]
                layer.name = name
            if layer.inputs is None:
                layer.inputs = [previous]
            previous = layer.name
        return self

    @property
    def source(self) -> Any:
        """Where each key stood in the file (a :class:`convcalc.loading.SourceMap`), or
        ``None`` for a spec not read from text."""
        return self._source

    def origins(self) -> list[tuple[Any, ...]]:
        """:meth:`origin` of every flat layer, in order."""
        return list(self._origins) if self._origins else [
            ("layers", index) for index in range(len(self.layers))]

    def layer_groups(self) -> list[tuple[tuple[str, str], ...]]:
        """:meth:`groups` of every flat layer, in order."""
        return list(self._groups) if self._groups else [()] * len(self.layers)

    def origin(self, index: int) -> tuple[Any, ...]:
        """Where flat layer ``index`` is written in the file: ``("layers", 3)``, or
        ``("blocks", "basic", "layers", 1)`` for a layer of a block."""
        return self._origins[index] if self._origins else ("layers", index)

    def groups(self, index: int) -> tuple[tuple[str, str], ...]:
        """The block instances flat layer ``index`` is in, outermost first, as
        ``(instance name, block name)``."""
        return self._groups[index] if self._groups else ()

    @property
    def spatial_dims(self) -> int:
        """Number of spatial axes of the input (0 for a flat vector)."""
        return len(self.input) - 1
