"""Every layer kind, complete and exercised: parametrised over every spec ``type`` and
every example the spec models declare, with no table to keep in step.

For each ``type``: a calculator kind with a rule and a memory cost, an engine layer,
an example, and a PyTorch reference (tests/torch_reference.py).  For each example:
the calculator and the engine agree on every shape and count and the gradients match
centred differences (:func:`convcalc.verify` with ``gradcheck``), and the memory
estimate covers a measured run of the example scaled up.
"""

from __future__ import annotations

import tracemalloc
from math import prod
from typing import Any

import pytest
from torch_reference import REFERENCES

import convcalc
import engine
from convcalc.kinds import REGISTRY, Kind
from convcalc.memory import RUNTIME_BYTES, estimate_memory
from convcalc.spec import LAYER_MODELS, MODEL_BY_TYPE, Example

TYPES = sorted(MODEL_BY_TYPE)
EXAMPLES = [pytest.param(example, id=f"{model.__name__}-{index}")
            for model in LAYER_MODELS for index, example in enumerate(model.examples)]


def missing_parts(tag: str) -> list[str]:
    """What type ``tag`` lacks of the parts every kind has."""
    model = MODEL_BY_TYPE[tag]
    kind = REGISTRY.get(model)
    missing = []
    if kind is None:
        missing.append("a calculator kind")
    else:
        if type(kind).rule is Kind.rule:
            missing.append("a rule")
        if type(kind).cost is Kind.cost:
            missing.append("a memory cost")
    if model not in engine.LAYERS:
        missing.append("an engine layer")
    if not any(example.layer["type"] == tag for example in model.examples):
        missing.append("an example")
    if tag not in REFERENCES:
        missing.append("a PyTorch reference (tests/torch_reference.py)")
    return missing


@pytest.mark.parametrize("tag", TYPES)
def test_every_type_has_every_part(tag: str) -> None:
    assert not missing_parts(tag), f"{tag} lacks " + ", ".join(missing_parts(tag))


def test_every_model_is_in_both_registries_and_nothing_else_is() -> None:
    assert set(REGISTRY) == set(LAYER_MODELS) == set(engine.LAYERS)


def test_an_unknown_kind_fails_loudly() -> None:
    """A model without a calculator kind stops the analysis with an error naming it;
    it is never skipped or costed zero."""
    spec = convcalc.validate({"input": [2, 4, 4], "layers": ["identity"]})
    model = type(spec.layers[0])
    kind = REGISTRY.pop(model)
    try:
        with pytest.raises(convcalc.kinds.UnknownKind, match="no kind for Identity"):
            convcalc.analyze(spec)
    finally:
        REGISTRY[model] = kind


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_is_verified_with_gradients(example: Example) -> None:
    """The example analyses without errors; the engine builds it with the predicted
    shapes, parameters and buffers, and its gradients match centred differences."""
    report = convcalc.analyze(example.spec())
    assert not report.errors, report.errors
    result = convcalc.verify(example.spec(), batch=2, gradcheck=True)
    assert result.ok, convcalc.render_verification(result)


def scaled(example: Example, values: int = 2**16) -> dict:
    """The example on an input of about ``values`` values per example: its spatial axes
    (or a flat input's length) grown by one whole factor, rounding floor so that it
    still builds."""
    shape = list(example.input)
    spatial = shape[1:] or shape
    factor = max(1, round((values / prod(shape)) ** (1 / len(spatial))))
    shape = [n * factor for n in shape] if len(shape) == 1 else \
        [shape[0]] + [n * factor for n in shape[1:]]
    return {**example.spec(), "input": shape, "rounding": "floor"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_memory_estimate_covers_a_run_of_the_example(example: Example) -> None:
    """The estimate never under-counts what :func:`convcalc.verify` allocates on one
    layer whose input and output dominate (traced by tracemalloc; allowed beyond it:
    1 MiB of NumPy's fixed-size buffers), and never counts twice what is there (the
    examples come out at 1.0–1.8× their measured peak)."""
    spec = convcalc.validate(scaled(example))
    arrays = estimate_memory(spec, batch=16).total - RUNTIME_BYTES
    tracemalloc.start()
    try:
        result = convcalc.verify(spec, batch=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ok
    assert peak <= arrays + 2**20, (peak, arrays)
    assert arrays <= 2 * peak, (peak, arrays)


class Case:
    """An example built by the engine (float64 unless asked), run up to its layer: the
    layer, and the arrays it reads (a batch of 3, random, from the layers before)."""

    def __init__(self, example: Example, dtype: str = "float64", batch: int = 3):
        import numpy as np

        self.spec = convcalc.validate(example.spec())
        self.net = engine.build(self.spec, seed=1, dtype=dtype)
        self.layer = self.net.layers[-1]
        x = np.random.default_rng(5).standard_normal((batch, *example.input)).astype(dtype)
        values = self.net.evaluate({"input": x})
        self.inputs = [values[name] for name in self.net.sources[-1]]

    def forward(self) -> Any:
        return self.layer.forward(self.inputs if self.layer.many_inputs else self.inputs[0])

    def backward(self, dy: Any) -> list:
        grads = self.layer.backward(dy)
        return list(grads) if self.layer.many_inputs else [grads]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_pytorch(example: Example) -> None:
    """The layer's forward values, input gradients, parameter gradients (and updated
    buffers) equal PyTorch's CPU op's on random inputs, in float64."""
    torch = pytest.importorskip("torch")
    import numpy as np

    case = Case(example)
    layer = case.layer
    for key, value in layer.params.items():       # no parameter left at a special value
        value[...] = np.random.default_rng(4).uniform(0.5, 1.5, value.shape)
    before = {key: torch.tensor(value.copy()) for key, value in layer.buffers.items()}
    y = case.forward()
    dy = np.random.default_rng(6).standard_normal(y.shape)
    dxs = case.backward(dy)
    leaves = {}                                   # one leaf per distinct input array
    inputs = [leaves.setdefault(id(x), torch.tensor(x, requires_grad=True))
              for x in case.inputs]
    params = {key: torch.tensor(value, requires_grad=True) for key, value in layer.params.items()}
    yt = REFERENCES[layer.spec.type](layer.spec, params, before, inputs, layer)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    summed: dict[int, Any] = {}                   # an input read twice gets both shares
    for x, dx in zip(case.inputs, dxs):
        summed[id(x)] = summed.get(id(x), 0) + dx
    for key, leaf in leaves.items():
        expected = leaf.grad.numpy() if leaf.grad is not None else np.zeros(leaf.shape)
        np.testing.assert_allclose(summed[key], expected, rtol=1e-10, atol=1e-12)
    for key, value in params.items():
        np.testing.assert_allclose(layer.grads[key], value.grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=key)
    for key, value in before.items():                 # updated in place by both
        np.testing.assert_allclose(layer.buffers[key], value.numpy(), rtol=1e-10, err_msg=key)


@pytest.mark.parametrize("example", EXAMPLES)
def test_engine_layer_leaves_its_arguments_alone(example: Example) -> None:
    """Two forward/backward passes (the second reuses workspaces) change neither the
    inputs nor ``dy``."""
    import numpy as np

    case = Case(example)
    before = [x.copy() for x in case.inputs]
    dy = np.random.default_rng(7).standard_normal(case.forward().shape)
    dy_before = dy.copy()
    for _ in range(2):
        case.forward()
        case.backward(dy)
    for x, x_before in zip(case.inputs, before):
        np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)


@pytest.mark.parametrize("example", EXAMPLES)
def test_engine_layer_takes_an_empty_batch(example: Example) -> None:
    import numpy as np

    case = Case(example, batch=0)
    y = case.forward()
    assert y.shape == (0, *case.net.observed_shapes[case.layer.name])
    for x, dx in zip(case.inputs, case.backward(np.zeros(y.shape))):
        assert dx.shape == x.shape
    for name, grad in case.layer.grads.items():
        assert grad.shape == case.layer.params[name].shape


@pytest.mark.parametrize("example", EXAMPLES)
def test_engine_layer_keeps_float32(example: Example) -> None:
    import numpy as np

    case = Case(example, "float32")
    y = case.forward()
    assert y.dtype == np.float32
    assert all(dx.dtype == np.float32 for dx in case.backward(np.ones_like(y)))
    assert all(grad.dtype == np.float32 for grad in case.layer.grads.values())
