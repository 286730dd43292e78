"""The calculator and the engine agree on random valid specs.

For random stacks of conv / conv_transpose / pool / activation / batchnorm / flatten /
dense layers in 1-D, 2-D and 3-D (random stride, padding — numbers, pairs, same, full —,
dilation, groups, rounding floor/ceil/exact and ceil_mode):

- when :func:`convcalc.analyze` reports no impossible layer, the engine builds the spec,
  runs a batch forward and backward, and every layer's observed output shape, parameter
  and buffer counts equal the report's (``exact`` specs that do not tile are errors for
  the calculator, which continues with floor — so does the engine);
- the specs the calculator rejects as impossible (a window larger than its padded input,
  a transposed-conv padding that crops everything, pool padding not smaller than its
  window) are exactly those the engine refuses with a ``ValueError``, at the same layer.

The engine reads every size off its arrays; the calculator uses its formulas.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
import engine
from convcalc.spec import Spec

#: Messages of the calculator's errors for layers that cannot be computed at all.
IMPOSSIBLE = ("larger than", "crops the whole output",
              "some windows would see only padding")

#: More examples for a deeper search: ``AGREEMENT_EXAMPLES=5000 pytest tests/test_agreement.py``.
EXAMPLES = int(os.environ.get("AGREEMENT_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def per_axis(draw, dims, values):
    """One int for every axis, or a list with one per axis."""
    if draw(st.booleans()):
        return draw(values)
    return [draw(values) for _ in range(dims)]


def padding(draw, dims, modes=("valid", "same", "full")):
    choice = draw(st.sampled_from(["int", "mode", "axes"]))
    if choice == "int":
        return draw(st.integers(0, 2))
    if choice == "mode" and modes:
        return draw(st.sampled_from(modes))
    return [draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))
                           .map(list))) for _ in range(dims)]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def specs(draw):
    dims = draw(st.integers(1, 3))
    max_size = {1: 12, 2: 9, 3: 6}[dims]
    channels = draw(st.integers(1, 4))
    spec = {"input": [channels] + [draw(st.integers(1, max_size)) for _ in range(dims)],
            "rounding": draw(st.sampled_from(["floor", "ceil", "exact"])), "layers": []}
    flat = False
    for _ in range(draw(st.integers(1, 5))):
        kinds = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "batchnorm", "dropout",
                 "lrn", "dense"] if flat else [
            "conv", "conv", "conv", "conv_transpose", "pool", "pool", "relu", "batchnorm",
            "flatten", "global"]
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            group_options = divisors(channels)
            groups = draw(st.sampled_from(group_options + ["depthwise"]))
            g = channels if groups == "depthwise" else groups
            layer = {"type": "conv", "filters": g * draw(st.integers(1, 3)),
                     "kernel": per_axis(draw, dims, st.integers(1, 4)),
                     "stride": per_axis(draw, dims, st.integers(1, 3)),
                     "padding": padding(draw, dims),
                     "dilation": per_axis(draw, dims, st.integers(1, 2)),
                     "groups": groups, "bias": draw(st.booleans())}
            channels = layer["filters"]
        elif kind == "conv_transpose":
            g = draw(st.sampled_from(divisors(channels)))
            stride = draw(st.integers(1, 3))
            dilation = draw(st.integers(1, 2))
            layer = {"type": "conv_transpose", "filters": g * draw(st.integers(1, 2)),
                     "kernel": per_axis(draw, dims, st.integers(1, 3)), "stride": stride,
                     "dilation": dilation, "padding": padding(draw, dims, modes=("valid",)),
                     "output_padding": draw(st.integers(0, max(stride, dilation) - 1)),
                     "groups": g, "bias": draw(st.booleans())}
            channels = layer["filters"]
        elif kind == "pool":
            layer = {"type": draw(st.sampled_from(["maxpool", "avgpool", "minpool"])),
                     "kernel": per_axis(draw, dims, st.integers(1, 3)),
                     "stride": draw(st.one_of(st.none(), st.integers(1, 3))),
                     "padding": draw(st.one_of(st.integers(0, 1), st.just("same"))),
                     "dilation": draw(st.integers(1, 2)),
                     "ceil_mode": draw(st.booleans())}
        elif kind == "flatten":
            layer, flat = {"type": "flatten"}, True
        elif kind == "global":
            layer, flat = {"type": draw(st.sampled_from(["global_avgpool", "global_maxpool"]))}, True
        elif kind == "dense":
            layer = {"type": "dense", "units": draw(st.integers(1, 5)), "bias": draw(st.booleans())}
        elif kind == "leaky_relu":
            layer = {"type": "leaky_relu", "negative_slope": 0.1}
        elif kind == "dropout":
            layer = {"type": "dropout", "rate": 0.5}
        elif kind == "lrn":
            layer = {"type": "lrn", "size": draw(st.integers(1, 4))}
        else:
            layer = {"type": kind}
        spec["layers"].append(layer)
    return Spec.model_validate(spec)


def first_impossible(report):
    for problem in report.errors:
        if any(marker in problem.message for marker in IMPOSSIBLE):
            return problem
    return None


def run(spec):
    """Build, run a batch of 2 forward and backward; the network or the ValueError."""
    try:
        net = engine.build(spec, seed=0, dtype="float32")
        x = np.random.default_rng(0).standard_normal((2, *spec.input)).astype(np.float32)
        y = net.forward(x)
        net.backward(np.ones_like(y))
    except ValueError as error:
        return None, error
    return net, None


@SETTINGS
@given(specs())
def test_calculator_and_engine_agree(spec):
    report = convcalc.analyze(spec)
    impossible = first_impossible(report)
    net, error = run(spec)
    if impossible is not None:
        assert error is not None, f"engine ran a spec the calculator calls impossible: {impossible}"
        named = str(error).split(":")[0].split(" (")[0]
        assert named == impossible.layer, (str(error), str(impossible))
        return
    assert error is None, f"engine refused a possible spec: {error}\n{report.errors}"
    for row in report.layers:
        assert net.observed_shapes[row.name] == row.output_shape, row.name
        assert net.param_count(row.name) == row.params, row.name
        assert net.buffer_count(row.name) == row.buffers, row.name
        for key, grad in net.layer(row.name).grads.items():
            assert grad.shape == net.layer(row.name).params[key].shape


def test_the_generator_reaches_every_outcome():
    """The strategy is not degenerate: it yields runnable, impossible and non-tiling specs."""
    seen = set()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(specs())
    def classify(spec):
        report = convcalc.analyze(spec)
        if first_impossible(report) is not None:
            seen.add("impossible")
        elif report.errors:
            seen.add("exact-not-tiling")
        else:
            seen.add("ok")
        seen.update(layer.type for layer in spec.layers)

    classify()
    assert {"impossible", "exact-not-tiling", "ok", "conv", "conv_transpose", "dense",
            "flatten"} <= seen
