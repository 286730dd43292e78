"""The calculator and the engine agree on random valid specs.

For random stacks of conv / conv_transpose / pool / activation / batchnorm / flatten /
dense layers in 1-D, 2-D and 3-D (random stride, padding — numbers, pairs, same, full —,
dilation, groups, rounding floor/ceil/exact and ceil_mode):

- when :func:`convcalc.analyze` reports no impossible layer, the engine builds the spec,
  runs a batch forward and backward, and every layer's observed output shape, parameter
  and buffer counts equal the report's (``exact`` specs that do not tile are errors for
  the calculator, which continues with floor — so does the engine);
- the specs in which the calculator cannot compute some layer's output (a window larger
  than its padded input, a transposed-conv padding that crops everything, pool padding
  not smaller than its window, an add of different shapes, a concat of different
  spatial sizes, groups that do not divide, a per-axis list of the wrong length, …)
  are exactly those the engine refuses with a ``ValueError``, at the same layer.

Besides the hand-drawn geometry, chains and graphs take layers from every kind's
declared examples (:attr:`convcalc.spec.LayerBase.examples`) and every merge kind, so a
new kind is in this property without an edit here.

The same holds for random small graphs (:func:`graphs`): layers reading earlier outputs
(branches, fan-out, the input read again), add and concat merges of compatible
branches, and now and then of incompatible ones.

The engine reads every size off its arrays; the calculator uses its formulas.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
import engine
from convcalc.kinds import REGISTRY
from convcalc.spec import LAYER_MODELS, Spec, layer_types

#: Kinds with both halves (one without is failed by tests/test_kinds.py, not here).
BUILT = [model for model in LAYER_MODELS if model in REGISTRY and model in engine.LAYERS]
#: Layers of every single-input kind, as their models' examples declare them.
EXAMPLE_LAYERS = [example.layer for model in BUILT for example in model.examples
                  if REGISTRY[model].max_inputs == 1 and not example.before]
#: Every kind that reads two or more inputs.
MERGE_TYPES = sorted(tag for model in BUILT if REGISTRY[model].min_inputs >= 2
                     for tag in layer_types(model))

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


def draw_layer(draw, dims, channels, flat, graph=False):
    """A random layer for an input with ``channels`` channels (None: unknown) that is flat
    or not; returns it with the channels after it (None: unknown), whether its output is
    flat, and whether it certainly keeps the spatial sizes.  For graphs, convs and pools
    that keep the sizes are drawn too (so that branches can merge)."""
    kinds = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "batchnorm", "dropout",
             "lrn", "dense", "example"] if flat else [
        "conv", "conv", "conv", "conv_transpose", "pool", "pool", "relu", "batchnorm",
        "flatten", "global", "example", "example"] + (["same_conv", "same_pool"] if graph else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "example":     # any kind's example layer: the output's shape is unknown here
        layer = draw(st.sampled_from(EXAMPLE_LAYERS))
        return dict(layer), None, flat, False
    keeps = kind not in ("conv", "conv_transpose", "pool", "flatten", "global", "dense")
    if kind == "conv":
        options = divisors(channels) + ["depthwise"] if channels else [1]
        groups = draw(st.sampled_from(options))
        g = channels if groups == "depthwise" else groups
        layer = {"type": "conv", "filters": g * draw(st.integers(1, 3)),
                 "kernel": per_axis(draw, dims, st.integers(1, 4)),
                 "stride": per_axis(draw, dims, st.integers(1, 3)),
                 "padding": padding(draw, dims),
                 "dilation": per_axis(draw, dims, st.integers(1, 2)),
                 "groups": groups, "bias": draw(st.booleans())}
        channels = layer["filters"]
    elif kind == "same_conv":        # stride 1, odd kernel, "same": the sizes stay
        layer = {"type": "conv", "filters": draw(st.integers(1, 4)),
                 "kernel": draw(st.sampled_from([1, 3])), "padding": "same",
                 "dilation": draw(st.integers(1, 2))}
        channels = layer["filters"]
    elif kind == "conv_transpose":
        g = draw(st.sampled_from(divisors(channels))) if channels else 1
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
    elif kind == "same_pool":
        layer = {"type": draw(st.sampled_from(["maxpool", "avgpool"])), "kernel": 3,
                 "stride": 1, "padding": 1}
    elif kind == "flatten":
        layer, flat, channels = {"type": "flatten"}, True, None
    elif kind == "global":
        layer, flat = {"type": draw(st.sampled_from(["global_avgpool", "global_maxpool"]))}, True
    elif kind == "dense":
        layer = {"type": "dense", "units": draw(st.integers(1, 5)), "bias": draw(st.booleans())}
        channels = layer["units"]
    elif kind == "leaky_relu":
        layer = {"type": "leaky_relu", "negative_slope": 0.1}
    elif kind == "dropout":
        layer = {"type": "dropout", "rate": 0.5}
    elif kind == "lrn":
        layer = {"type": "lrn", "size": draw(st.integers(1, 4))}
    else:
        layer = {"type": kind}
    return layer, channels, flat, keeps


def draw_input(draw):
    dims = draw(st.integers(1, 3))
    max_size = {1: 12, 2: 9, 3: 6}[dims]
    channels = draw(st.integers(1, 4))
    return dims, {"input": [channels] + [draw(st.integers(1, max_size)) for _ in range(dims)],
                  "rounding": draw(st.sampled_from(["floor", "ceil", "exact"])), "layers": []}


@st.composite
def specs(draw):
    """A random chain of layers."""
    dims, spec = draw_input(draw)
    channels, flat = spec["input"][0], False
    for _ in range(draw(st.integers(1, 5))):
        layer, channels, flat, _ = draw_layer(draw, dims, channels, flat)
        spec["layers"].append(layer)
    return Spec.model_validate(spec)


@st.composite
def graphs(draw):
    """A random small graph: each layer reads the previous one or an earlier one (a
    branch), or merges two or three earlier outputs with add or concat.  Merges mostly
    pick compatible outputs — ones descending through size-keeping layers from one
    output, with equal channels for add — and sometimes any outputs at all, so that
    both sides must refuse the incompatible ones at the same layer."""
    dims, spec = draw_input(draw)
    # per output: (name, channels or None, flat, lineage); equal lineage = equal sizes
    nodes = [("input", spec["input"][0], False, 0)]
    for index in range(draw(st.integers(2, 8))):
        name = f"n{index}"
        action = draw(st.sampled_from(["chain", "chain", "branch", "merge", "merge"]))
        if action == "merge" and len(nodes) >= 2:
            kind = draw(st.sampled_from(MERGE_TYPES))
            count = draw(st.integers(2, 3))
            key = (lambda n: (n[3], n[1], n[2])) if kind != "concat" else (lambda n: (n[3], n[2]))
            groups: dict = {}
            for node in nodes:
                groups.setdefault(key(node), []).append(node)
            compatible = [g for g in groups.values()
                          if len(g) >= 2 and (kind == "concat" or g[0][1] is not None)]
            if compatible and draw(st.integers(0, 3)) > 0:
                group = draw(st.sampled_from(compatible))
                picked = [draw(st.sampled_from(group)) for _ in range(count)]
                if len({n[0] for n in picked}) == 1:
                    picked[1] = next(n for n in group if n[0] != picked[0][0])
            else:
                picked = [draw(st.sampled_from(nodes)) for _ in range(count)]
            channels = picked[0][1] if kind == "add" else (
                None if any(n[1] is None for n in picked) else sum(n[1] for n in picked))
            spec["layers"].append({"name": name, "type": kind,
                                   "inputs": [n[0] for n in picked]})
            nodes.append((name, channels, picked[0][2], picked[0][3]))
            continue
        source = nodes[-1] if action == "chain" else draw(st.sampled_from(nodes))
        layer, channels, flat, keeps = draw_layer(draw, dims, source[1], source[2], True)
        spec["layers"].append({**layer, "name": name, "inputs": source[0]})
        nodes.append((name, channels, flat, source[3] if keeps else index + 1))
    return Spec.model_validate(spec)


def first_impossible(report):
    """The first layer whose output the calculator could not compute (its inputs
    could be: layers after it are skipped), or None."""
    return next((row.name for row in report.layers if row.output_shape is None), None)


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


def check_agreement(spec):
    report = convcalc.analyze(spec)
    impossible = first_impossible(report)
    net, error = run(spec)
    if impossible is not None:
        assert error is not None, f"engine ran a spec the calculator calls impossible: {impossible}"
        named = str(error).split(":")[0].split(" (")[0]
        assert named == impossible, (str(error), impossible, report.errors)
        return
    assert error is None, f"engine refused a possible spec: {error}\n{report.errors}"
    for row in report.layers:
        assert net.observed_shapes[row.name] == row.output_shape, row.name
        assert net.param_count(row.name) == row.params, row.name
        assert net.buffer_count(row.name) == row.buffers, row.name
        for key, grad in net.layer(row.name).grads.items():
            assert grad.shape == net.layer(row.name).params[key].shape


@SETTINGS
@given(specs())
def test_calculator_and_engine_agree(spec):
    check_agreement(spec)


@SETTINGS
@given(graphs())
def test_calculator_and_engine_agree_on_graphs(spec):
    check_agreement(spec)


def test_the_generator_reaches_every_outcome():
    """The strategy is not degenerate: it yields runnable, impossible and non-tiling specs."""
    seen = set()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
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


def test_the_graph_generator_reaches_every_outcome():
    """Graphs with merges that run, merges both sides refuse, fan-out, dead branches."""
    seen = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(graphs())
    def classify(spec):
        report = convcalc.analyze(spec)
        impossible = first_impossible(report)
        merges = {layer.name for layer in spec.layers if layer.type in ("add", "concat")}
        if impossible is not None and impossible in merges:
            seen.add("refused merge")
        if impossible is None and not report.errors and merges:
            seen.add("ok with merges")
        reads = [name for layer in spec.layers for name in layer.inputs]
        if any(reads.count(name) > 1 for name in set(reads)):
            seen.add("fan-out")
        if any("never used" in p.message for p in report.problems):
            seen.add("dead branch")
        seen.update(layer.type for layer in spec.layers)

    classify()
    assert {"refused merge", "ok with merges", "fan-out", "dead branch", "add",
            "concat"} <= seen
