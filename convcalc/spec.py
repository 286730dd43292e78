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

from collections import Counter
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_SPATIAL_AXES = 3
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _per_axis_ints(minimum: int, what: str):
    """Validator for "one int for every spatial axis, or a list with one per axis"."""

    def validate(value: Any) -> int | tuple[int, ...]:
        if _is_int(value):
            if value < minimum:
                raise PydanticCustomError("too_small", f"must be ≥ {minimum} (got {value})")
            return value
        if isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_SPATIAL_AXES:
            for i, item in enumerate(value):
                if not _is_int(item):
                    raise PydanticCustomError(
                        "per_axis", f"entry {i} must be a whole number (got {show(item)})"
                    )
                if item < minimum:
                    raise PydanticCustomError(
                        "too_small", f"entry {i} must be ≥ {minimum} (got {item})"
                    )
            return tuple(value)
        raise PydanticCustomError(
            "per_axis",
            f"must be {what}: one whole number ≥ {minimum}, or a list of 1–3 of them, "
            f"one per spatial axis (got {show(value)})",
        )

    schema = {
        "oneOf": [
            {"type": "integer", "minimum": minimum},
            {
                "type": "array",
                "items": {"type": "integer", "minimum": minimum},
                "minItems": 1,
                "maxItems": MAX_SPATIAL_AXES,
            },
        ]
    }
    return Annotated[int | tuple[int, ...], PlainValidator(validate), WithJsonSchema(schema)]


def _validate_padding(value: Any) -> Any:
    if isinstance(value, str):
        if value in PADDING_MODES:
            return value
        raise PydanticCustomError(
            "padding", f"must be a whole number, 'valid', 'same' or 'full' (got {show(value)})"
        )
    if _is_int(value):
        if value < 0:
            raise PydanticCustomError("too_small", f"must be ≥ 0 (got {value})")
        return value
    if isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_SPATIAL_AXES:
        axes: list[Any] = []
        for i, item in enumerate(value):
            if _is_int(item) and item >= 0:
                axes.append(item)
            elif (
                isinstance(item, (list, tuple))
                and len(item) == 2
                and all(_is_int(p) and p >= 0 for p in item)
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


_PAD_INT = {"type": "integer", "minimum": 0}
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

Kernel = _per_axis_ints(1, "a window size")
Stride = _per_axis_ints(1, "a stride")
Dilation = _per_axis_ints(1, "a dilation")
OutputPadding = _per_axis_ints(0, "an output padding")
Padding = Annotated[
    Union[int, str, tuple[Any, ...]],
    PlainValidator(_validate_padding),
    WithJsonSchema(_PADDING_SCHEMA),
]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class LayerBase(BaseModel):
    """Options every layer has."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

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
    ] = Field(
        default=None,
        description="Names of earlier layers this layer reads (or 'input'); "
        "default: the previous layer.",
    )


class Conv(LayerBase):
    """Convolution (cross-correlation, as deep-learning frameworks define it).

    Weights ``(filters, in_channels / groups, *kernel)``, one bias per filter.
    """

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


class ConvTranspose(LayerBase):
    """Transposed convolution (the gradient of a convolution with respect to its input).

    Weights ``(in_channels, filters / groups, *kernel)``, one bias per filter.  Output
    size ``(in − 1)·stride − pad_before − pad_after + dilation·(kernel − 1) + output_padding + 1``.
    """

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

    type: Literal["maxpool", "avgpool", "minpool"]
    kernel: Kernel = Field(description="Window size: one int for every spatial axis, or one per axis.")
    stride: Stride | None = Field(default=None, description="Default: the kernel size.")
    padding: Padding = Field(default=0, description="Zeros around the input: an int, valid, same, full, or per axis an int or [before, after].")
    dilation: Dilation = Field(default=1, description="Spacing of the window's taps: extent dilation·(kernel − 1) + 1.")
    ceil_mode: bool = Field(default=False, description="Round a non-whole output size up (PyTorch's ceil_mode), whatever the spec's rounding.")


class GlobalPool(LayerBase):
    """Average or max over all spatial positions: ``(C, *spatial) → (C,)``."""

    type: Literal["global_avgpool", "global_maxpool"]


class Flatten(LayerBase):
    """``(C, *spatial) → (C·prod(spatial),)`` in channels-first (C-contiguous) order."""

    type: Literal["flatten"]


class Dense(LayerBase):
    """Fully connected (affine) layer on a flat vector: ``in·units + units`` parameters."""

    type: Literal["dense"]
    units: PositiveInt = Field(description="Output features.")
    bias: bool = Field(default=True, description="One learned bias per output channel or unit.")


class Activation(LayerBase):
    """Element-wise activation; softmax normalises over the channel axis."""

    type: Literal["relu", "sigmoid", "tanh", "softmax"]


class LeakyRelu(LayerBase):
    """``max(x, negative_slope·x)``."""

    type: Literal["leaky_relu"]
    negative_slope: Annotated[float, Field(ge=0.0)] = Field(default=0.01, description="Slope for negative inputs.")


class Dropout(LayerBase):
    """Zeroes each activation with probability ``rate`` in training (inverted dropout)."""

    type: Literal["dropout"]
    rate: Probability = Field(default=0.5, description="Probability of zeroing an activation in training.")


class BatchNorm(LayerBase):
    """Per-channel normalisation: gamma and beta are parameters (2·C), the running mean
    and variance are buffers (2·C; Keras lists them as "non-trainable params")."""

    type: Literal["batchnorm"]
    eps: Annotated[float, Field(gt=0.0)] = Field(default=1e-5, description="Added to the variance before the square root.")
    momentum: Annotated[float, Field(ge=0.0, le=1.0)] = Field(default=0.1, description="Weight of the new batch in the running statistics.")


class LRN(LayerBase):
    """Local response normalisation across channels (AlexNet):
    ``x / (k + alpha/size · Σ x²)^beta`` over ``size`` neighbouring channels."""

    type: Literal["lrn"]
    size: PositiveInt = Field(default=5, description="Neighbouring channels in the sum.")
    alpha: float = Field(default=1e-4, description="Scale of the sum of squares.")
    beta: float = Field(default=0.75, description="Exponent.")
    k: float = Field(default=1.0, description="Additive constant.")


class Merge(LayerBase):
    """Combine two or more ``inputs``: ``add`` sums them element-wise (all shapes equal);
    ``concat`` joins them along the channel axis (spatial sizes equal)."""

    type: Literal["add", "concat"]


#: Every layer kind, in the order the docs list them.
LAYER_MODELS: tuple[type[LayerBase], ...] = (
    Conv,
    ConvTranspose,
    Pool,
    GlobalPool,
    Flatten,
    Dense,
    Activation,
    LeakyRelu,
    Dropout,
    BatchNorm,
    LRN,
    Merge,
)


def layer_types(model: type[LayerBase]) -> tuple[str, ...]:
    """The ``type`` tags a model class accepts.

    >>> layer_types(Pool)
    ('maxpool', 'avgpool', 'minpool')
    """
    return model.model_fields["type"].annotation.__args__  # type: ignore[union-attr]


#: ``type`` tag → model class, for every kind.
MODEL_BY_TYPE: dict[str, type[LayerBase]] = {
    tag: model for model in LAYER_MODELS for tag in layer_types(model)
}


def _bare_layer_to_dict(value: Any) -> Any:
    """``- relu`` is short for ``- {type: relu}``."""
    return {"type": value} if isinstance(value, str) else value


Layer = Annotated[
    Union[tuple(LAYER_MODELS)],  # type: ignore[valid-type]
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
        list[PositiveInt],
        Field(
            min_length=1,
            max_length=1 + MAX_SPATIAL_AXES,
            description="Channels, then 1, 2 or 3 spatial sizes; a single number is a flat vector.",
        ),
    ]
    rounding: Literal["exact", "floor", "ceil"] = Field(
        default="exact",
        description="What to do when a window does not tile its input: exact reports an "
        "error; floor and ceil round (and warn).",
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

    @model_validator(mode="after")
    def _name_layers(self) -> "Spec":
        counts: Counter[str] = Counter()
        previous = "input"
        for layer in self.layers:
            counts[layer.type] += 1  # type: ignore[attr-defined]
            if layer.name is None:
                layer.name = f"{layer.type}{counts[layer.type]}"  # type: ignore[attr-defined]
            if layer.inputs is None:
                layer.inputs = [previous]
            previous = layer.name
        return self

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
