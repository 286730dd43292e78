"""The picture of the graph (convcalc/draw.py, ``convcalc draw``): the DOT read back has
one node per layer and one edge per input, a cluster per block instance, folds that keep
the edges crossing them; hostile names escaped for DOT and SVG; errors and warnings
marked; the SVG well-formed with the names on its node groups; the zoo's drawings within
the width budget; no ``dot`` and a ``dot`` that hangs or fails give clear errors.

The tests that run Graphviz skip where ``dot`` is missing, and fail in CI (``CI`` set),
which must run them (``.ci/run`` installs Debian's graphviz).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import draw as drawing
from convcalc import zoo
from convcalc.cli import main
from convcalc.draw import (WIDTH_BUDGET_PT, ArgumentError, DrawError, DrawTimeout,
                           GraphvizMissing, TooLargeToDraw, draw, family, plan, svg_size,
                           to_dot, xml_safe)
from convcalc.spec import LAYER_MODELS, layer_types

SVG = "{http://www.w3.org/2000/svg}"
#: The models the issue names: ResNet-50, GoogLeNet, DenseNet-121 and the U-Nets.
LONG_MODELS = ["resnet50", "googlenet", "densenet121", "unet", "unet_same"]


@pytest.fixture
def needs_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the drawing tests, but Graphviz's dot is missing "
                        "(apt-get install graphviz)")
        pytest.skip("Graphviz's dot is missing (apt-get install graphviz)")


def report_of(source: str) -> convcalc.Report:
    spec = convcalc.load(source) if source.startswith("zoo:") else convcalc.loads(source)
    return convcalc.analyze(spec)


# --- reading the DOT back ------------------------------------------------------------------

NODE = re.compile(r"^\s*(I|L\d+|G\d+) \[(.*)\];$")
EDGE = re.compile(r'^\s*(I|L\d+|G\d+) -> (I|L\d+|G\d+) \[id="E\d+"(?: weight=\d+)?\];$')
CLUSTER = re.compile(r"^\s*subgraph cluster_C(\d+) \{$")


def parse_dot(text: str) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str]],
                                  dict[str, str | None]]:
    """Our DOT, statement by statement: node id → the clusters it is in (outermost
    first), the edges, and cluster → its parent cluster.  Every line must be one of
    the known statements, so nothing a name holds can add one."""
    nodes: dict[str, tuple[str, ...]] = {}
    edges: list[tuple[str, str]] = []
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    lines = text.splitlines()
    assert lines[0] == "digraph convcalc {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if (match := CLUSTER.match(line)):
            cluster = "C" + match.group(1)
            parents[cluster] = stack[-1] if stack else None
            stack.append(cluster)
        elif line.strip() == "}":
            stack.pop()
        elif (match := EDGE.match(line)):
            edges.append((match.group(1), match.group(2)))
        elif (match := NODE.match(line)):
            assert match.group(1) not in nodes, line
            nodes[match.group(1)] = tuple(stack)
        else:
            assert re.match(r"^\s*(graph|node|edge) \[|^\s*label=<|^\s*id=\"C\d+\"; ", line), line
    assert not stack
    return nodes, edges, parents


def graphviz_reading(text: str) -> tuple[Counter[str], Counter[tuple[str, str]], set[str]]:
    """What Graphviz's own parser reads in the DOT: node names, edges, cluster ids."""
    done = subprocess.run(["dot", "-Tdot_json"], input=text.encode(), capture_output=True,
                          check=True, timeout=60)
    data = json.loads(done.stdout)
    objects = data.get("objects", [])
    names = {o["_gvid"]: o["name"] for o in objects}
    nodes = Counter(o["name"] for o in objects if "nodes" not in o and "subgraphs" not in o
                    and not o["name"].startswith("cluster_"))
    clusters = {o["name"] for o in objects if o["name"].startswith("cluster_")}
    edges = Counter((names[e["tail"]], names[e["head"]]) for e in data.get("edges", []))
    return nodes, edges, clusters


def expected_edges(report: convcalc.Report) -> Counter[tuple[str, str]]:
    ids = {row.name: f"L{i}" for i, row in enumerate(report.layers)} | {"input": "I"}
    return Counter((ids[name], f"L{i}") for i, row in enumerate(report.layers)
                   for name in row.inputs)


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "densenet121", "unet", "unet_same",
                                  "inception_v3", "shufflenet_v2_x1_0"])
def test_one_node_per_layer_one_edge_per_input_and_a_cluster_per_block(name):
    report = report_of(f"zoo:{name}")
    nodes, edges, parents = parse_dot(to_dot(report, depth=None))
    assert set(nodes) == {"I"} | {f"L{i}" for i in range(len(report.layers))}
    assert Counter(edges) == expected_edges(report)
    cluster_of = {name: f"C{i}" for i, (name, _) in enumerate(report.groups)}
    assert set(parents) == set(cluster_of.values())
    for index, row in enumerate(report.layers):
        assert nodes[f"L{index}"] == tuple(cluster_of[g] for g in row.group), row.name
        for outer, inner in zip(row.group, row.group[1:]):
            assert parents[cluster_of[inner]] == cluster_of[outer]


def test_graphviz_reads_the_same_graph(needs_dot):
    for name in ["googlenet", "unet"]:
        report = report_of(f"zoo:{name}")
        text = to_dot(report, depth=None)
        nodes, edges, parents = parse_dot(text)
        seen_nodes, seen_edges, clusters = graphviz_reading(text)
        assert seen_nodes == Counter(set(nodes))
        assert seen_edges == Counter(edges)
        assert clusters == {f"cluster_{c}" for c in parents}


def test_the_skips_shortcuts_and_branches_are_edges():
    """Drawn whole by default, so every input of the U-Net's crops and concats (its
    skips) and of ResNet-50's adds (its shortcuts) is an edge."""
    for name, merges, count in [("unet", ("concat", "crop"), 8), ("resnet50", ("add",), 16)]:
        report = report_of(f"zoo:{name}")
        assert plan(report).depth is None
        _, edges, _ = parse_dot(to_dot(report))
        ids = {row.name: f"L{i}" for i, row in enumerate(report.layers)} | {"input": "I"}
        rows = [row for row in report.layers if row.type in merges]
        assert len(rows) == count and all(len(row.inputs) == 2 for row in rows)
        for row in rows:
            for source in row.inputs:
                assert (ids[source], ids[row.name]) in edges


def test_fold_draws_a_block_as_one_node_and_keeps_its_edges():
    report = report_of("zoo:resnet50")
    drawn = plan(report, fold=["layer1.0"], depth=None)
    text = to_dot(report, drawn=drawn)
    nodes, edges, parents = parse_dot(text)
    inside = {row.name for row in report.layers if "layer1.0" in row.group}
    ids = {row.name: f"L{i}" for i, row in enumerate(report.layers)}
    group = f"G{[n for n, _ in report.groups].index('layer1.0')}"
    assert group in nodes and drawn.folded == ("layer1.0",)
    assert not {ids[n] for n in inside} & set(nodes)
    assert len(nodes) == len(report.layers) - len(inside) + 2
    # the edges that cross the block's border, each once: maxpool → block (its conv1
    # and downsample.0 both read it), block → layer1.1's conv1 and its add (the shortcut)
    crossing = {(group if source in inside else ids.get(source, "I"),
                 group if row.name in inside else ids[row.name])
                for row in report.layers for source in row.inputs
                if (source in inside) != (row.name in inside)}
    assert {e for e in edges if group in e} == crossing
    assert len([e for e in edges if group in e]) == len(crossing) == 3
    assert "layer1.0" not in {report.groups[int(c[1:])][0] for c in parents}
    label = next(line for line in text.splitlines() if line.strip().startswith(group + " ["))
    assert "bottleneck_proj · 256×56×56" in label and "75,008 params" in label


def test_depth_folds_deeper_blocks_and_auto_fits_the_node_budget():
    dense = report_of("zoo:densenet121")
    assert plan(dense, depth=None).depth is None and len(plan(dense, depth=None).nodes) == 427
    top = plan(dense, depth=0)
    assert top.folded == tuple(g.name for g in dense.group_summaries if g.depth == 1)
    auto = plan(dense)
    assert auto.depth == 1 and len(auto.nodes) <= drawing.AUTO_NODES
    assert all(dense.group_summaries[[n for n, _ in dense.groups].index(g)].depth == 2
               for g in auto.folded)
    # a fold inside a folded block: the outer one is the node
    inner = plan(dense, fold=["denseblock1.0"], depth=0)
    assert "denseblock1.0" not in inner.folded and "denseblock1" in inner.folded


def test_unknown_fold_names_and_bad_depths_are_refused_with_the_close_names():
    report = report_of("zoo:resnet50")
    with pytest.raises(ArgumentError, match=r"no block instance called 'layer1\.O'; did "
                                            r"you mean 'layer1\.\d'"):
        plan(report, fold=["layer1.O"])
    with pytest.raises(ArgumentError, match="it has no blocks"):
        plan(report_of("input: [1, 4, 4]\nlayers: [relu]\n"), fold=["x"])
    with pytest.raises(ArgumentError, match="depth must be ≥ 0"):
        plan(report, depth=-1)
    with pytest.raises(TypeError, match="depth must be an int"):
        plan(report, depth="2")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="format must be one of svg, png, dot"):
        draw(report, "gif")


def test_more_than_the_node_limit_is_refused_unless_folded():
    chain = "input: [2, 4, 4]\nlayers:\n" + "  - relu\n" * 2001
    with pytest.raises(TooLargeToDraw, match="2,001 layers and folded blocks, more than "
                                              "the 2,000 .* no blocks"):
        plan(report_of(chain))
    repeated = "input: [2, 4, 4]\nlayers:\n  - {type: relu, repeat: 2001}\n"
    assert len(plan(report_of(chain.replace("  - relu\n", "", 1)), depth=None).nodes) == 2001
    report = report_of(repeated)
    with pytest.raises(TooLargeToDraw, match="fold blocks"):
        plan(report, depth=None)
    assert len(plan(report).nodes) == 2   # auto: the repeat is one node


HOSTILE_NAMES = ['c<1>&amp;"x"', "r\x01\n}\"; node [x] -- <!-- ", "bad\\\"><script>",
                 "]]> */ \\N \\l \\G", "emoji 😀 ‮rtl", "a];\nL0 -> L1", "'<b>"]


def hostile_spec() -> str:
    block = [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1, "name": HOSTILE_NAMES[0]},
             {"type": "relu", "name": HOSTILE_NAMES[1]}]
    layers = [{"type": "blk<&>\"", "name": "g<&>\"'{}", "repeat": 2}]
    layers += [{"type": "relu", "name": name} for name in HOSTILE_NAMES[2:]]
    layers += [{"type": "concat", "name": "m\"<&>", "inputs": HOSTILE_NAMES[2:4]}]
    return json.dumps({"name": "<b>net</b> & \"co\" \\N", "input": [3, 8, 8],
                       "blocks": {"blk<&>\"": {"layers": block}}, "layers": layers},
                      ensure_ascii=False)


def test_hostile_names_are_escaped_for_dot():
    report = report_of(hostile_spec())
    text = to_dot(report, depth=None)
    nodes, edges, _ = parse_dot(text)   # no name added or broke a statement
    assert len(nodes) == len(report.layers) + 1
    assert Counter(edges) == expected_edges(report)
    assert "<script>" not in text and "<!--" not in text and "<b>net" not in text
    assert "&lt;script&gt;" in text and "\\x01\\n" in text


def test_hostile_names_survive_graphviz_and_the_svg(needs_dot):
    report = report_of(hostile_spec())
    text = to_dot(report, depth=None)
    seen_nodes, seen_edges, _ = graphviz_reading(text)
    assert sum(seen_nodes.values()) == len(report.layers) + 1
    assert sum(seen_edges.values()) == sum(len(row.inputs) for row in report.layers)
    svg = draw(report, depth=None).data
    root = ET.fromstring(svg)
    layers = [g.get("data-layer") for g in root.iter(SVG + "g") if g.get("data-layer") is not None]
    assert layers == [xml_safe(row.name) for row in report.layers]
    assert xml_safe(HOSTILE_NAMES[1]) == "r\\x01\n}\"; node [x] -- <!-- "
    assert b"<script>" not in svg and b"<!-- \"" not in svg
    titles = [t.text or "" for t in root.iter(SVG + "title")]
    assert any("bad\\\"><script>" in t for t in titles)   # the text, as text
    group = [g for g in root.iter(SVG + "g") if g.get("data-group") == "g<&>\"'{}"]
    assert len(group) == 1


ERRORS = """\
input: [1, 7, 7]
rounding: floor
layers:
  - {name: floored, type: maxpool, kernel: 2, stride: 2}
  - {name: broken, type: conv, filters: 2, kernel: 5}
  - {name: after, type: relu}
"""


def test_errors_and_warnings_are_marked(needs_dot):
    report = report_of(ERRORS)
    severities = {p.layer: p.severity for p in report.problems}
    assert severities.get("broken") == "error" and severities.get("floored") == "warning"
    text = to_dot(report)
    line = {n: l for l in text.splitlines() for n in ["L0", "L1", "L2"]
            if l.strip().startswith(n + " [")}
    assert 'class="layer warning"' in line["L0"] and "#e08a00" in line["L0"] and "floored !" in line["L0"]
    assert 'class="layer error"' in line["L1"] and "#c62828" in line["L1"] and "broken ✗" in line["L1"]
    assert 'class="layer"' in line["L2"]
    root = ET.fromstring(draw(report).data)
    node = {g.get("data-layer"): g for g in root.iter(SVG + "g") if g.get("data-layer")}
    assert "node layer error" == node["broken"].get("class")
    title = node["broken"].find(SVG + "title").text
    error = next(p for p in report.problems if p.layer == "broken")
    assert title.startswith("broken (conv)\n") and error.message.split(":")[0] in title
    assert "warning: " in node["floored"].find(SVG + "title").text


def test_a_folded_block_with_an_error_is_marked():
    text = "input: [1, 7, 7]\nblocks:\n  b:\n    layers:\n      - {type: conv, filters: 1, " \
           "kernel: 3, stride: 3}\nlayers:\n  - {type: b, name: blk}\n"
    report = report_of(text)
    line = next(l for l in to_dot(report, depth=0).splitlines() if l.strip().startswith("G0 ["))
    assert 'class="group folded error"' in line and "blk ✗" in line


def test_the_svg_names_every_node_cluster_and_edge(needs_dot):
    report = report_of("zoo:googlenet")
    drawn = plan(report, fold=["inception3a", "inception4b.branch2.0"], depth=None)
    root = ET.fromstring(draw(report, fold=["inception3a", "inception4b.branch2.0"],
                              depth=None).data)
    groups = list(root.iter(SVG + "g"))
    layers = [g.get("data-layer") for g in groups if g.get("data-layer")]
    visible = [row.name for row in report.layers if not {"inception3a", "inception4b.branch2.0"}
               & set(row.group)]
    assert layers == visible
    folded = [g.get("data-group") for g in groups if g.get("data-folded") == "true"]
    assert folded == ["inception3a", "inception4b.branch2.0"] == list(drawn.folded)
    clusters = {g.get("data-group") for g in groups if "cluster" in g.get("class", "")}
    assert "inception4b" in clusters and "inception3a" not in clusters
    assert "inception3a.branch1" not in clusters
    assert [g.get("data-input") for g in groups if g.get("data-input")] == ["input"]
    edges = [(g.get("data-from"), g.get("data-to")) for g in groups if g.get("class") == "edge"]
    assert len(edges) == len(drawn.edges)
    assert ("maxpool2", "inception3a") in edges and ("inception3a", "inception3b.branch1.conv") in edges
    for g in groups:
        if g.get("data-layer") or g.get("data-group"):
            assert g.find(SVG + "title").text   # a tooltip


@pytest.mark.parametrize("name", [n.removeprefix(zoo.PREFIX) for n in zoo.names()])
def test_the_zoo_drawings_stay_within_the_width_budget(needs_dot, name):
    report = report_of(f"zoo:{name}")
    done = draw(report)
    width, height = svg_size(done.data)
    assert width <= WIDTH_BUDGET_PT, (name, width, done.depth)
    if name in LONG_MODELS and name != "densenet121":
        assert done.depth is None   # drawn whole: every branch, shortcut and skip


def test_the_families_are_the_kinds_modules():
    from convcalc.kinds import kind_of

    for model in LAYER_MODELS:
        for tag in layer_types(model):
            module = type(kind_of(model)).__module__
            assert module == f"convcalc.kinds.{family(tag)}", tag
    assert family("conv") != family("relu") != family("add")
    assert drawing.family_colour("conv") != drawing.family_colour("norm")
    assert drawing.family_colour("new_family") in drawing.SPARE_COLOURS


# --- Graphviz missing, hanging or failing ---------------------------------------------------


def fake_dot(folder: Path, script: str) -> None:
    path = folder / "dot"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def test_without_dot_a_clear_error_and_dot_text_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    report = report_of("zoo:resnet18")
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        draw(report)
    with pytest.raises(GraphvizMissing):
        draw(report, "png")
    assert draw(report, "dot").data.startswith(b"digraph convcalc {")
    result = CliRunner().invoke(main, ["draw", "zoo:resnet18", "-o", str(tmp_path / "r.svg")])
    assert result.exit_code == 1
    assert "drawing needs Graphviz's dot program, which is not on PATH" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r.svg").exists()


def test_a_hanging_dot_is_stopped_at_the_time_limit(tmp_path, monkeypatch):
    fake_dot(tmp_path, "exec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(DrawTimeout, match="did not finish within 0.5 s and was stopped"):
        draw(report_of("zoo:lenet5"), depth=None, timeout=0.5)


def test_a_failing_dot_says_what_it_said(tmp_path, monkeypatch):
    fake_dot(tmp_path, "echo 'Error: <stdin>: syntax error in line 3' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(DrawError, match=r"dot failed \(exit status 1\): Error: <stdin>: "
                                        r"syntax error in line 3"):
        draw(report_of("zoo:lenet5"), "png", depth=None)


# --- the command ------------------------------------------------------------------------------


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_cli_draws_resnet50_as_svg_png_and_dot(needs_dot, tmp_path):
    svg, png, dot = tmp_path / "x.svg", tmp_path / "x.png", tmp_path / "x.dot"
    result = run_cli("draw", "zoo:resnet50", "-o", str(svg))
    assert result.exit_code == 0, result.output
    assert f"{svg}: 175 nodes (every block open)" in result.output
    root = ET.fromstring(svg.read_bytes())
    assert len([g for g in root.iter(SVG + "g") if g.get("data-layer")]) == 174
    assert run_cli("draw", "zoo:resnet50", "-o", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run_cli("draw", "zoo:resnet50", "-o", str(dot), "--depth", "0").exit_code == 0
    assert dot.read_text().startswith("digraph convcalc {")
    assert "G0 [" in dot.read_text() and "L4 [" not in dot.read_text()


def test_cli_writes_svg_to_standard_output(needs_dot):
    for args in (["-o", "-"], []):
        result = CliRunner().invoke(main, ["draw", "zoo:lenet5", *args])
        assert result.exit_code == 0
        assert result.stdout.startswith("<?xml") and "data-layer=\"" in result.stdout
        ET.fromstring(result.stdout_bytes)


def test_cli_options(tmp_path):
    out = tmp_path / "r.dot"
    result = run_cli("draw", "zoo:resnet50", "--fold", "layer1.0", "--fold", "layer2.0",
                     "--format", "dot", "--depth", "all", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 blocks folded" in result.output
    assert run_cli("draw", "zoo:resnet50", "--fold", "nope").exit_code == 2
    bad = run_cli("draw", "zoo:resnet50", "--depth", "-1")
    assert bad.exit_code == 2 and "is not a depth" in bad.output
    suffix = run_cli("draw", "zoo:resnet50", "-o", str(tmp_path / "x.pdf"))
    assert suffix.exit_code == 2 and "cannot tell the format" in suffix.output
    assert run_cli("draw", "zoo:nosuch").exit_code == 1
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [3, null, null]\nlayers:\n  - {type: conv, filters: 2, kernel: 3, "
                    "stride: 2}\n")
    opened = run_cli("draw", str(spec), "--format", "dot", "-o", str(tmp_path / "o.dot"))
    assert opened.exit_code == 0 and "analysed at the smallest valid size" in opened.output
    assert "--input" in run_cli("draw", "--help").output


def test_cli_draws_a_network_with_errors_and_exits_1(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(ERRORS)
    out = tmp_path / "net.dot"
    result = run_cli("draw", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert re.search(r"the network has \d+ errors? \(marked in the drawing\)", result.output)
    assert 'class="layer error"' in out.read_text()


# --- random graphs ------------------------------------------------------------------------------


NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)


@st.composite
def networks(draw_from):
    """A random graph of relus and concats (all sizes equal: any merge is valid) with
    random names, using two blocks (one nested in the other, one repeated)."""
    count = draw_from(st.integers(1, 12))
    names = [f"{draw_from(NAMES)}{i}" for i in range(count)]
    layers, outputs = [], ["input"]
    for name in names:
        kind = draw_from(st.sampled_from(["relu", "concat", "pair", "nest"]))
        if kind == "concat":
            inputs = draw_from(st.lists(st.sampled_from(outputs), min_size=2, max_size=4))
            layers.append({"type": "concat", "name": name, "inputs": inputs})
        else:
            layer = {"type": kind, "name": name, "inputs": draw_from(st.sampled_from(outputs))}
            if kind != "relu" and draw_from(st.booleans()):
                layer["repeat"] = draw_from(st.integers(1, 3))
            layers.append(layer)
        outputs.append(name)
    blocks = {"pair": {"layers": [{"type": "relu", "name": "r"},
                                  {"type": "concat", "name": "c", "inputs": ["input", "r"]}]},
              "nest": {"layers": [{"type": "pair", "name": "p"}, {"type": "relu", "name": "q"},
                                  {"type": "concat", "inputs": ["p", "q", "input"]}]}}
    return {"input": [1, 3, 3], "blocks": blocks, "layers": layers}


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(networks(), st.sampled_from(["auto", None, 0, 1]))
def test_random_graphs_draw_with_every_edge(data, depth):
    try:
        report = convcalc.analyze(convcalc.loads(json.dumps(data)))
    except convcalc.SpecError:
        assume(False)
    drawn = plan(report, depth=depth)
    text = to_dot(report, drawn=drawn)
    nodes, edges, _ = parse_dot(text)
    assert len(nodes) == len(drawn.nodes)
    if drawn.depth is None and not drawn.folded:
        assert Counter(edges) == expected_edges(report)
    if shutil.which("dot"):
        root = ET.fromstring(draw(report, depth=depth).data)
        shown = [g.get("data-layer") for g in root.iter(SVG + "g") if g.get("data-layer") is not None]
        assert len(shown) == sum(1 for n in drawn.nodes if n.startswith("L"))
