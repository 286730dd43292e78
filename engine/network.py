"""A spec built as real arrays: :func:`build` → :class:`Network`, forward and backward.

:func:`build` makes one engine layer per spec layer (:data:`engine.base.LAYERS`, keyed by
the spec's model classes: each layer class declares the model it implements) and materialises every
parameter by a forward pass on an empty batch ``np.zeros((0, *spec.input))``.  Every
size — parameter shapes, output shapes — is read off the arrays numpy builds; nothing
here computes an output size.

BRIEF example 8, SimpleConvNet, counted from the arrays:

>>> from convcalc.spec import Spec
>>> spec = Spec.model_validate({"input": [1, 28, 28], "layers": [
...     {"type": "conv", "filters": 30, "kernel": 5}, "relu",
...     {"type": "maxpool", "kernel": 2, "stride": 2}, "flatten",
...     {"type": "dense", "units": 100}, "relu", {"type": "dense", "units": 10}, "softmax"]})
>>> net = build(spec, seed=0)
>>> net.param_count()
433890
>>> [net.param_count(name) for name in ("conv1", "dense1", "dense2")]
[780, 432100, 1010]
>>> y = net.forward(np.random.default_rng(1).standard_normal((4, 1, 28, 28)))
>>> y.shape, y.dtype
((4, 10), dtype('float32'))
>>> net.observed_shapes["maxpool1"], net.observed_shapes["flatten1"]
((30, 12, 12), (4320,))
>>> dx = net.backward(np.ones_like(y))
>>> dx.shape, net.gradients()["dense1"]["weight"].shape
((4, 1, 28, 28), (4320, 100))
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from convcalc import spec as specs

from .base import LAYERS, Layer, takes_many
from .padding import axis_names

DTYPES = ("float32", "float64")


def make_layer(layer_spec: specs.LayerBase, rng: np.random.Generator, dtype: Any,
               rounding: str = "floor") -> Layer:
    """The engine layer for one spec layer model (:data:`engine.base.LAYERS`, keyed by
    the model class).

    >>> from convcalc.spec import Dense as DenseSpec
    >>> type(make_layer(DenseSpec(type="dense", name="fc", units=3),
    ...                 np.random.default_rng(0), "float32")).__name__
    'Dense'
    """
    try:
        cls = LAYERS[type(layer_spec)]
    except KeyError:
        raise ValueError(f"{layer_spec.name}: no engine layer for "
                         f"{type(layer_spec).__name__}") from None
    return cls(layer_spec, rng, dtype, rounding=rounding)


def _named(layer: Layer, exc: ValueError) -> ValueError:
    """The error, prefixed with the layer's name unless it already starts with it."""
    message = str(exc)
    if message.startswith(f"{layer.name}:"):
        return exc
    return ValueError(f"{layer.name} ({layer.spec.type}): {message}")


class Network:
    """The layers of a spec, in file order (a topological order of its graph), with their
    parameters allocated.

    Each layer reads the outputs named by its spec's ``inputs`` (earlier layers, or
    ``"input"``, the network input); the network's output is the last layer's.

    ``forward(x)``: ``(N, *spec.input) → (N, *output)``; records
    :attr:`observed_shapes` ``{layer name: output shape without the batch axis}``.  An
    output is kept until its last reader has run, then dropped.
    ``backward(dout)``: output gradient → input gradient, in reverse file order, filling
    every parameter's gradient.  Where an output feeds several layers (a shortcut), the
    gradients its readers return are summed before its layer sees them; so is the input
    gradient when several layers read ``input``.  A layer whose output nothing reads
    (a dead branch) gets no gradient: its parameter gradients are zero.
    :meth:`parameters`, :meth:`gradients` and :meth:`buffers` return the very arrays
    the layers use, ``{layer name: {"weight": array, ...}}`` (layers without any are
    left out), so assigning into them loads weights.

    A ResNet-style block, ``relu(conv(x) + x)``, whose input gradient sums both paths:

    >>> from convcalc.spec import Spec
    >>> net = build(Spec.model_validate({"input": [2, 5, 5], "layers": [
    ...     {"type": "conv", "filters": 2, "kernel": 3, "padding": 1, "name": "conv"},
    ...     {"type": "add", "inputs": ["conv", "input"], "name": "add"}, "relu"]}),
    ...     dtype="float64")
    >>> net.sources[1], net.readers["input"]
    (('conv', 'input'), (0, 1))
    >>> x = np.random.default_rng(0).standard_normal((3, 2, 5, 5))
    >>> y = net.forward(x)
    >>> dx = net.backward(np.ones_like(y))
    >>> conv_path = net.layer("conv").backward(1.0 * (y > 0))    # dL/dx through the conv
    >>> bool(np.allclose(dx, conv_path + (y > 0)))               # ... plus the shortcut
    True
    """

    def __init__(self, spec: specs.Spec, layers: list[Layer], dtype: np.dtype):
        self.spec = spec
        self.layers = layers
        self.dtype = np.dtype(dtype)
        if spec.open_axes:
            names = axis_names(len(spec.input) - 1)
            raise ValueError(f"input: {', '.join(names[i] for i in spec.open_axes)} "
                             f"{'is' if len(spec.open_axes) == 1 else 'are'} open (null); the "
                             "engine builds a network for one input size: give every size "
                             "(Spec.with_input; convcalc sizes says which work)")
        self.input_shape: tuple[int, ...] = tuple(n for n in spec.input if n is not None)
        self.observed_shapes: dict[str, tuple[int, ...]] = {}
        self.training = True
        #: per layer, the names of the outputs it reads (``"input"``: the network input)
        self.sources: list[tuple[str, ...]] = []
        readers: dict[str, list[int]] = {"input": []}
        later = {layer.name for layer in layers}
        for index, layer in enumerate(layers):
            if layer.name == "input":
                raise ValueError("input: a layer cannot be called 'input' (that name is "
                                 "the network input's)")
            if layer.name in readers:
                raise ValueError(f"{layer.name}: duplicate layer name (layer {index + 1})")
            names = tuple(layer.spec.inputs or (["input"] if index == 0
                                                else [layers[index - 1].name]))
            for name in names:
                if name not in readers:
                    what = "a later layer" if name in later else "no layer"
                    raise ValueError(f"{layer.name}: reads {name!r}, which is {what}; a "
                                     "layer reads earlier layers (or 'input') only")
                if index not in readers[name]:
                    readers[name].append(index)
            self.sources.append(names)
            readers[layer.name] = []
        #: per output name, the indices of the layers that read it, in order
        self.readers: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in readers.items()}
        self._output = layers[-1].name if layers else "input"

    # --- running -------------------------------------------------------------------

    def _apply(self, index: int, args: list[np.ndarray]) -> np.ndarray:
        """Run layer ``index`` on the arrays it reads (a list for a merge layer)."""
        layer = self.layers[index]
        try:
            if takes_many(layer):
                return layer.forward(args)
            if len(args) != 1:
                raise ValueError(f"{layer.spec.type} takes one input (got {len(args)}: "
                                 f"{', '.join(self.sources[index])}); merge branches with "
                                 "an add or concat layer first")
            return layer.forward(args[0])
        except ValueError as exc:
            raise _named(layer, exc) from exc

    def _check_input(self, x: Any) -> np.ndarray:
        array = np.asarray(x, dtype=self.dtype)
        if array.shape[1:] != self.input_shape:
            raise ValueError(f"input: expected (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {array.shape}")
        return array

    def forward(self, x: Any, on_layer: Callable[[int, Layer], None] | None = None
                ) -> np.ndarray:
        """Run every layer on ``x`` (converted to the network's dtype, never modified).

        Layers run in file order; each output is kept until its last reader has run.
        ``on_layer(index, layer)`` is called after each layer (for progress reports).
        A layer that cannot take its input raises ``ValueError`` naming the layer.
        """
        values = {"input": self._check_input(x)}
        self._batch_shape = values["input"].shape
        last = {name: readers[-1] for name, readers in self.readers.items() if readers}
        for index, layer in enumerate(self.layers):
            sources = self.sources[index]
            out = self._apply(index, [values[name] for name in sources])
            self.observed_shapes[layer.name] = tuple(out.shape[1:])
            for name in sources:                  # drop what no later layer reads
                if last.get(name) == index and name in values:
                    del values[name]
            if self.readers[layer.name] or index == len(self.layers) - 1:
                values[layer.name] = out
            del out
            if on_layer is not None:
                on_layer(index, layer)
        return values[self._output]

    def evaluate(self, values: dict[str, np.ndarray], start: int = 0
                 ) -> dict[str, np.ndarray]:
        """Run layers ``start, start + 1, …`` given ``values``, the outputs they read that
        come from before ``start`` (``"input"`` among them), by name; return ``values``
        with every layer's output added (a new dict; nothing is dropped).  For tools that
        need every intermediate output (:func:`engine.gradcheck`); prefer :meth:`forward`.
        """
        values = dict(values)
        for index in range(start, len(self.layers)):
            values[self.layers[index].name] = self._apply(
                index, [values[name] for name in self.sources[index]])
        return values

    def backward(self, dout: Any, on_layer: Callable[[int, Layer], None] | None = None,
                 on_gradient: Callable[[str, np.ndarray], None] | None = None
                 ) -> np.ndarray:
        """Back-propagate ``dout`` (the gradient of the loss w.r.t. the last output)
        through every layer, last first; returns the gradient w.r.t. the input.

        Gradients from several readers of one output are summed (into a new array, never
        into one a layer returned).  ``on_gradient(name, grad)`` is called with each
        output's complete gradient (``name`` a layer, or ``"input"`` last) just before it
        is used — for checks; the array must not be modified.
        """
        grads: dict[str, np.ndarray] = {self._output: np.asarray(dout, dtype=self.dtype)}
        owned: set[str] = set()      # sums made here, safe to add into in place

        def accumulate(name: str, grad: np.ndarray) -> None:
            if name not in grads:
                grads[name] = grad
            elif name in owned:
                grads[name] += grad
            else:
                grads[name] = grads[name] + grad
                owned.add(name)

        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            grad = grads.pop(layer.name, None)
            owned.discard(layer.name)
            if grad is None:               # nothing reads this output: no gradient
                for value in layer.grads.values():
                    value.fill(0)
            else:
                if on_gradient is not None:
                    on_gradient(layer.name, grad)
                try:
                    result = layer.backward(grad)
                except ValueError as exc:
                    raise _named(layer, exc) from exc
                del grad
                if layer.many_inputs:
                    for name, part in zip(self.sources[index], result):
                        accumulate(name, part)
                else:
                    accumulate(self.sources[index][0], result)
                del result
            if on_layer is not None:
                on_layer(index, layer)
        dx = grads.pop("input", None)
        if dx is None:
            dx = np.zeros(getattr(self, "_batch_shape", (0, *self.input_shape)), self.dtype)
        if on_gradient is not None:
            on_gradient("input", dx)
        return dx

    __call__ = forward

    def train(self) -> "Network":
        """Training mode: dropout drops, batchnorm uses and updates batch statistics."""
        return self._set_mode(True)

    def eval(self) -> "Network":
        """Eval mode: dropout is the identity, batchnorm uses its running statistics."""
        return self._set_mode(False)

    def _set_mode(self, training: bool) -> "Network":
        self.training = training
        for layer in self.layers:
            layer.training = training
        return self

    def zero_grads(self) -> None:
        """Set every parameter gradient to zero (in place where it already exists)."""
        for layer in self.layers:
            for key, value in layer.params.items():
                grad = layer.grads.get(key)
                if grad is not None and grad.shape == value.shape:
                    grad.fill(0)
                else:
                    layer.grads[key] = np.zeros_like(value)

    # --- looking inside --------------------------------------------------------------

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def parameters(self) -> dict[str, dict[str, np.ndarray]]:
        """``{layer: {"weight": ..., "bias": ...}}`` — the arrays the layers compute with."""
        return {layer.name: layer.params for layer in self.layers if layer.params}

    def gradients(self) -> dict[str, dict[str, np.ndarray]]:
        """``{layer: {name: gradient}}``, same names and shapes as :meth:`parameters`."""
        return {layer.name: layer.grads for layer in self.layers if layer.params}

    def buffers(self) -> dict[str, dict[str, np.ndarray]]:
        """``{layer: {"running_mean": ..., "running_var": ...}}`` (state that is not learned)."""
        return {layer.name: layer.buffers for layer in self.layers if layer.buffers}

    def param_count(self, layer: str | None = None) -> int:
        """Number of parameter values of one layer (by name), or of the whole network,
        summed from the arrays' sizes."""
        layers = self.layers if layer is None else [self.layer(layer)]
        return sum(int(array.size) for item in layers for array in item.params.values())

    def buffer_count(self, layer: str | None = None) -> int:
        """Number of buffer values (batchnorm running statistics), from the arrays."""
        layers = self.layers if layer is None else [self.layer(layer)]
        return sum(int(array.size) for item in layers for array in item.buffers.values())

    def __repr__(self) -> str:
        return (f"Network({self.spec.name or 'unnamed'!r}, {len(self.layers)} layers, "
                f"{self.param_count()} parameters, {self.dtype})")


def build(spec: specs.Spec | dict[str, Any], seed: int = 0, dtype: Any = "float32") -> Network:
    """Build ``spec`` as arrays: one layer per spec layer, parameters allocated.

    ``spec`` is a :class:`convcalc.spec.Spec` (a dict is validated into one; a dict that
    uses blocks or ``repeat`` needs :func:`convcalc.validate` first, which expands them
    into the flat list of layers with resolved ``inputs`` the engine runs).  Each layer
    gets its own generator, spawned from ``seed`` (same seed → same weights).  ``dtype``
    is ``"float32"`` or ``"float64"``.  The parameters are materialised by a forward pass
    on an empty batch, so a layer that does not fit its input raises ``ValueError``
    naming it:

    >>> build({"input": [3, 4, 4], "layers": [{"type": "conv", "filters": 2, "kernel": 5}]})
    Traceback (most recent call last):
    ...
    ValueError: conv1: H: window 5 is larger than the padded input 4; W: window 5 is larger than the padded input 4

    An input size left open (``null``) is refused the same way:

    >>> build({"input": [3, 32, None], "layers": ["relu"]})
    Traceback (most recent call last):
    ...
    ValueError: input: W is open (null); the engine builds a network for one input size: give every size (Spec.with_input; convcalc sizes says which work)
    """
    if not isinstance(spec, specs.Spec):
        spec = specs.Spec.model_validate(spec)
    if np.dtype(dtype).name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    rngs = [np.random.default_rng(child)
            for child in np.random.SeedSequence(seed).spawn(len(spec.layers))]
    layers = [make_layer(layer_spec, rng, dtype, spec.rounding)
              for layer_spec, rng in zip(spec.layers, rngs)]
    net = Network(spec, layers, np.dtype(dtype))
    net.forward(np.zeros((0, *spec.input), dtype=net.dtype))
    net.zero_grads()    # every parameter has a gradient array (layers allocate them)
    return net
