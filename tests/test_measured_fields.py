"""Receptive fields measured on the engine, for every kind: the oracle for kinds whose
field is not textbook (adaptive pools, upsampling, slices, shuffles, products, norms
over channels).

Back-propagate a gradient that is nonzero at one output position only (every channel
there, random positive values) through the engine in float64, and take the bounding
box of the nonzero input gradient along each spatial axis: it must equal the field the
calculator predicts for that position (its first and last input positions, from the
report's :class:`~convcalc.receptive.ReceptiveField`), clipped to the input.

So that no gradient is zero by accident, parameters are drawn positive (``U(0.5, 1.5)``,
weights divided by their fan-in so that sums stay near 1 and nothing saturates),
inputs in turn positive, negative and mixed (six draws: a rectifier or a saturating
function passes some of them), and the network runs in eval mode (dropout and drop
path are the identity; batchnorm is a per-channel affine map).  A random network whose
output is constant (a relu of a log_softmax over one channel) has nothing to measure.
A max or min picks one position of its window per draw: with such a layer the boxes of
many draws (different inputs) are joined, each window position winning in some draw.

Only output positions whose whole predicted field lies inside the input are compared:
the field counts padding positions (of the input, or of any layer on the way) as
positions outside the input, and such a position depends on no input at all, or — for
reflect, replicate and circular padding — on a copied one.  For the first, middle and
last such position of the last layer, the measured box must equal the field exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_agreement import graphs, specs

import convcalc
import engine
from convcalc.spec import LAYER_MODELS, MODEL_BY_TYPE, Example

EXAMPLES = [pytest.param(example, id=f"{model.__name__}-{index}")
            for model in LAYER_MODELS for index, example in enumerate(model.examples)]
#: kinds whose gradient reaches one position of a window per draw
PICKS_ONE = {"maxpool", "minpool", "global_maxpool", "adaptive_maxpool"}


def interior(field: convcalc.receptive.ReceptiveField, out: tuple[int, ...],
             sizes: tuple[int, ...]) -> list[list[tuple[int, int]]]:
    """Per axis, the output positions whose field lies inside the input, each with its
    field ``(first, last)``: the first, middle and last of them."""
    per_axis = []
    for axis, m, n in zip(field.axes, out, sizes):
        fields = [(o, axis.edges(o)) for o in range(m)]
        inner = [(o, edges) for o, edges in fields
                 if edges[0] is not None and edges[0] >= 0 and edges[1] <= n - 1]
        per_axis.append([inner[i] for i in sorted({0, len(inner) // 2, len(inner) - 1})]
                        if inner else [])
    return per_axis


def measured_box(net: engine.Network, position: tuple[int, ...], draws: int,
                 rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """Bounding box of the input positions whose gradient is nonzero, joined over
    ``draws`` random positive inputs."""
    spatial = net.input_shape[1:]
    hit = np.zeros(spatial, bool)
    shape = (2, *net.input_shape)
    for draw in range(draws):      # positive, negative and mixed inputs in turn
        x = (rng.uniform(0.5, 1.5, shape), -rng.uniform(0.5, 1.5, shape),
             rng.standard_normal(shape))[draw % 3]
        y = net.forward(x)
        dy = np.zeros(y.shape)
        dy[(slice(None), slice(None), *position)] = rng.uniform(0.5, 1.5, y.shape[:2])
        dx = net.backward(dy)
        hit |= np.abs(dx).sum(axis=(0, 1)) > 0
    if not hit.any():
        return None
    box = []
    for axis in range(len(spatial)):
        along = np.nonzero(hit.any(axis=tuple(a for a in range(len(spatial)) if a != axis)))[0]
        box.append((int(along[0]), int(along[-1])))
    return box


def check_fields(spec: convcalc.Spec, rng: np.random.Generator, strict: bool = False) -> int:
    """Compare measured and predicted fields at a few output positions of the last
    layer; return how many positions were compared."""
    report = convcalc.analyze(spec)
    last = report.layers[-1]
    if (report.errors or last.output_shape is None or len(last.output_shape) < 2
            or last.receptive_field is None or not last.receptive_field.axes
            or len(spec.input) < 2):
        return 0
    net = engine.build(spec, seed=2, dtype="float64").eval()
    for layer in net.layers:
        for key, value in list(layer.params.items()) + list(layer.buffers.items()):
            value[...] = rng.uniform(0.5, 1.5, value.shape)
            if value.ndim >= 2:   # a weight: divided by its fan-in, so sums stay near 1
                value /= (value.shape[0] if layer.spec.type == "dense"
                          else np.prod(value.shape[1:]))
            elif key == "bias":
                value *= 0.1
    draws = 40 if any(layer.type in PICKS_ONE for layer in spec.layers) else 6
    sizes, out = tuple(spec.input[1:]), last.output_shape[1:]
    chosen = interior(last.receptive_field, out, sizes)
    if not all(chosen):
        return 0
    compared = 0
    for picks in zip(*(axis * 3 for axis in chosen)):      # up to three positions
        position = tuple(o for o, _ in picks)
        expected = [edges for _, edges in picks]
        measured = measured_box(net, position, draws, rng)
        if measured is None and not strict:   # a constant output (a relu of a log_softmax)
            continue
        assert measured == expected, \
            f"{position} {measured} {expected} " \
            f"{[layer.model_dump(exclude_defaults=True) for layer in spec.layers]}"
        compared += 1
        if compared == 3:
            break
    return compared


@pytest.mark.parametrize("example", EXAMPLES)
def test_measured_field_of_every_example(example: Example) -> None:
    check_fields(convcalc.validate(example.spec()), np.random.default_rng(11), strict=True)


def test_every_kind_with_spatial_output_has_a_measured_example() -> None:
    """The test above compares something for each kind that keeps spatial axes."""
    rng = np.random.default_rng(12)
    measured = {model: 0 for model in LAYER_MODELS}
    for model in LAYER_MODELS:
        for example in model.examples:
            measured[model] += check_fields(convcalc.validate(example.spec()), rng)
    flat_only = {MODEL_BY_TYPE[t] for t in ("flatten", "dense", "global_avgpool")}
    assert [m.__name__ for m, count in measured.items() if not count and m not in flat_only] \
        == []


SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@SETTINGS
@given(specs())
def test_measured_fields_of_random_chains(spec: convcalc.Spec) -> None:
    check_fields(spec, np.random.default_rng(13))


@SETTINGS
@given(graphs())
def test_measured_fields_of_random_graphs(spec: convcalc.Spec) -> None:
    check_fields(spec, np.random.default_rng(14))


def test_random_networks_are_compared_often() -> None:
    """The random tests above compare fields in a good share of their networks (most are
    too small to have an output whose field lies inside the input)."""
    from hypothesis import HealthCheck as Health

    compared = {"chains": 0, "graphs": 0}
    for name, strategy in (("chains", specs()), ("graphs", graphs())):
        @settings(max_examples=150, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(Health))
        @given(strategy)
        def count(spec: convcalc.Spec) -> None:
            compared[name] += check_fields(spec, np.random.default_rng(15)) > 0
        count()
    assert compared["chains"] >= 20 and compared["graphs"] >= 20, compared
