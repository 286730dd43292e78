"""The picture of the graph: a :class:`~convcalc.Report` as Graphviz DOT, laid out by
Graphviz's ``dot`` (a subprocess) into SVG or PNG.

One node per layer (its name, type and window, output shape, and a small bar where the
layer changes the shape: width ∝ log₂ channels, height ∝ log₂ of the largest spatial
size), one edge per input (branches, shortcuts, skips), block instances as nested
clusters, and the network input as a node of its own.  A *folded* block instance is
one node (name, block, output shape, parameters) keeping the edges that cross its
border.  Nodes with errors have a red border and ✗, with warnings an orange one and !.
Fill colours follow the kind's family: the module of :mod:`convcalc.kinds` that
computes it (``conv``, ``pool``, ``norm``, …).

Which blocks are folded: every instance nested deeper than ``depth`` (``0``: the top
level's blocks are single nodes; ``None``: none), plus the ones named in ``fold``.
``depth="auto"`` (the default) draws everything when that is at most
:data:`AUTO_NODES` nodes, else the deepest level that fits — so ResNet-50 and
GoogLeNet are drawn whole, DenseNet-121 one node per dense layer.

The SVG's node groups carry the names (any text, escaped): ``<g class="node layer"
data-layer="NAME">``, ``<g class="node group folded" data-group="NAME"
data-folded="true">``, ``<g class="cluster" data-group="NAME">``, ``<g class="node
input" data-input="input">`` and ``<g class="edge" data-from="NAME" data-to="NAME">``;
each has a ``<title>`` (a tooltip: name, type, shape, parameters, problems).

>>> import convcalc
>>> report = convcalc.analyze({"input": [3, 8, 8], "layers": [
...     {"type": "conv", "filters": 4, "kernel": 3, "padding": 1}, "relu"]})
>>> text = to_dot(report)
>>> text.count("->"), "L0 -> L1" in text
(2, True)
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal, Union

from .errors import ArgumentError, ConvCalcError, printable
from .report import GroupSummary, LayerRow, Report, Shape

#: What :func:`draw` makes, and the media type of each.
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png", "dot": "text/vnd.graphviz"}
FORMATS = tuple(MEDIA_TYPES)
#: The most layers and folded blocks a drawing may have (the service's layer limit; the
#: input's node is not counted): fold blocks to draw a larger network.
MAX_NODES = 2000
#: ``depth="auto"`` folds deeper blocks until the drawing has at most this many nodes.
AUTO_NODES = 200
#: Seconds ``dot`` may run.
DOT_TIMEOUT = 20.0
#: The zoo's drawings stay this wide (in pt, 4/3 CSS px each: 960 px): they fit beside
#: an editor in a 1440-px-wide window without sideways scrolling (tests/test_draw.py).
WIDTH_BUDGET_PT = 720

FONT = "Helvetica,Arial,sans-serif"   # Liberation Sans where Helvetica is not: same metrics
INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian, Ubuntu), "
                "brew install graphviz (macOS), or see https://graphviz.org/download/")

#: Fill colour of each family of kinds (the module in convcalc/kinds/ that computes it);
#: a family not listed gets a colour of :data:`SPARE_COLOURS` chosen from its name.
FAMILY_COLOURS = {
    "conv": "#cfe2f3", "pool": "#d9ead3", "adaptive": "#d9ead3", "dense": "#fce5cd",
    "elementwise": "#eeeeee", "norm": "#e6dcef", "merge": "#fff2cc", "resize": "#d0ece7",
    "routing": "#f4d7e1",
}
SPARE_COLOURS = ("#e2efda", "#ddebf7", "#fbe4d5", "#ededed", "#e4dfec")
INPUT_COLOUR = "#ffffff"
FOLDED_COLOUR = "#dde3ec"
MARKS = {"error": ("✗", "#c62828", "3"), "warning": ("!", "#e08a00", "2.5")}
HINT_COLOUR = "#6b7d92"

Depth = Union[int, None, Literal["auto"]]


class DrawError(ConvCalcError):
    """The graph could not be drawn (``dot`` failed, or the drawing would be too big)."""


class GraphvizMissing(DrawError):
    """Graphviz's ``dot`` is not installed (or not on ``PATH``)."""


class DrawTimeout(DrawError):
    """``dot`` did not finish in time (it was killed)."""


class TooLargeToDraw(DrawError):
    """The drawing would have more than :data:`MAX_NODES` nodes."""


# --- what is drawn -------------------------------------------------------------------------


@dataclass
class Cluster:
    """An unfolded block instance (``group`` None: the whole graph) and what it holds,
    in file order: node ids and clusters."""

    group: GroupSummary | None
    items: list[Union[str, "Cluster"]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The graph as drawn: which blocks are folded, each layer's node, the edges."""

    report: Report
    #: the depth applied (None: no block folded by depth)
    depth: int | None
    #: the folded block instances drawn as nodes (outermost folded only), in file order
    folded: tuple[str, ...]
    #: node id → the layer row or the folded group it stands for (``"I"``: the input)
    nodes: dict[str, LayerRow | GroupSummary | None]
    #: (from, to) node ids
    edges: tuple[tuple[str, str], ...]
    root: Cluster
    #: every block instance by name
    summaries: dict[str, GroupSummary]


def family(type_tag: str) -> str:
    """The family of a layer type: the module of :mod:`convcalc.kinds` computing it.

    >>> family("conv"), family("maxpool"), family("relu"), family("add")
    ('conv', 'pool', 'elementwise', 'merge')
    """
    from .kinds import kind_of
    from .spec import MODEL_BY_TYPE

    model = MODEL_BY_TYPE.get(type_tag)
    if model is None:
        return "unknown"
    return type(kind_of(model)).__module__.rsplit(".", 1)[-1]


def family_colour(name: str) -> str:
    if name in FAMILY_COLOURS:
        return FAMILY_COLOURS[name]
    return SPARE_COLOURS[zlib.crc32(name.encode()) % len(SPARE_COLOURS)]


def _outermost_folded(row: LayerRow, folded: Collection[str]) -> int | None:
    """The index in ``row.group`` of its outermost folded block, if any."""
    for index, name in enumerate(row.group):
        if name in folded:
            return index
    return None


def _count_nodes(report: Report, folded: Collection[str]) -> int:
    """Nodes drawn with ``folded`` blocks, the input's included."""
    nodes: set[tuple[str, str]] = set()
    for row in report.layers:
        index = _outermost_folded(row, folded)
        nodes.add(("layer", row.name) if index is None else ("group", row.group[index]))
    return len(nodes) + 1


def _folded_by_depth(summaries: Iterable[GroupSummary], depth: int | None) -> set[str]:
    if depth is None:
        return set()
    return {g.name for g in summaries if g.depth > depth}


def resolve_depth(report: Report, depth: Depth, fold: Collection[str] = (),
                  summaries: tuple[GroupSummary, ...] | None = None) -> int | None:
    """The depth ``"auto"`` stands for by its node count (see the module docstring);
    any other as given.  (``summaries``: ``report.group_summaries``, if at hand.)"""
    if depth != "auto":
        return depth
    summaries = report.group_summaries if summaries is None else summaries
    deepest = max((g.depth for g in summaries), default=0)
    candidates: list[int | None] = [None, *range(deepest - 1, -1, -1)]
    for candidate in candidates:
        folded = _folded_by_depth(summaries, candidate) | set(fold)
        if _count_nodes(report, folded) <= AUTO_NODES:
            return candidate
    return 0


def _check_fold(report: Report, fold: Iterable[str]) -> tuple[str, ...]:
    import difflib

    names = [name for name, _ in report.groups]
    known = set(names)
    wanted = tuple(fold)
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, names, n=3)
            if close:
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
            elif names:
                hint = (f"; its blocks are {', '.join(repr(n) for n in names[:5])}"
                        + (", …" if len(names) > 5 else ""))
            else:
                hint = "; it has no blocks"
            raise ArgumentError(f"fold: the network has no block instance called "
                                f"{printable(name)!r}{hint}")
    return wanted


def _check_depth(depth: Depth) -> None:
    if depth == "auto" or depth is None:
        return
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be an int, None or 'auto', not {type(depth).__name__}")
    if depth < 0:
        raise ArgumentError(f"depth must be ≥ 0 (got {depth})")


def plan(report: Report, fold: Iterable[str] = (), depth: Depth = "auto") -> Plan:
    """Decide what is drawn: the folded blocks, the nodes, the edges and the clusters.

    Raises :class:`~convcalc.errors.ArgumentError` for a ``fold`` name that is no
    block instance, :class:`TooLargeToDraw` above :data:`MAX_NODES` nodes.
    """
    _check_depth(depth)
    wanted = _check_fold(report, fold)
    every = report.group_summaries
    applied = resolve_depth(report, depth, wanted, every)
    chosen = _folded_by_depth(every, applied) | set(wanted)
    summaries = {g.name: g for g in every}
    count = _count_nodes(report, chosen) - 1   # the input is not counted
    if count > MAX_NODES:
        raise TooLargeToDraw(
            f"the drawing would have {count:,} layers and folded blocks, more than the "
            f"{MAX_NODES:,} that are drawn: fold blocks (a smaller depth, or fold NAME)"
            + ("" if report.groups else "; this network has no blocks to fold"))

    group_ids = {name: f"G{index}" for index, (name, _) in enumerate(report.groups)}
    nodes: dict[str, LayerRow | GroupSummary | None] = {"I": None}
    node_of: dict[str, str] = {"input": "I"}
    root = Cluster(None)
    clusters: dict[str, Cluster] = {}
    folded: list[str] = []
    for index, row in enumerate(report.layers):
        cut = _outermost_folded(row, chosen)
        path = row.group if cut is None else row.group[:cut]
        parent = root
        for name in path:
            if name not in clusters:
                clusters[name] = Cluster(summaries[name])
                parent.items.append(clusters[name])
            parent = clusters[name]
        if cut is None:
            node = f"L{index}"
            nodes[node] = row
            parent.items.append(node)
        else:
            name = row.group[cut]
            node = group_ids[name]
            if node not in nodes:   # the folded block's first layer
                nodes[node] = summaries[name]
                folded.append(name)
                parent.items.append(node)
        node_of[row.name] = node

    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for row in report.layers:
        target = node_of[row.name]
        for source_name in row.inputs:
            source = node_of.get(source_name)
            if source is None or source == target:
                continue   # an unknown input (reported by the analysis), or inside a fold
            pair = (source, target)
            if pair in seen and (source[0] == "G" or target[0] == "G"):
                continue   # a folded block keeps one edge per neighbour
            seen.add(pair)
            edges.append(pair)
    return Plan(report, applied, tuple(folded), nodes, tuple(edges), root, summaries)


# --- DOT -----------------------------------------------------------------------------------


def escape_html(text: str) -> str:
    r"""``text`` for a Graphviz HTML-like label: control characters written as escapes
    (:func:`~convcalc.errors.printable`), then ``& < > "`` as entities.

    >>> escape_html('a<b>&"c"\n')
    'a&lt;b&gt;&amp;&quot;c&quot;\\n'
    """
    text = printable(text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _relative(name: str, scope: str) -> str:
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def shape_text(shape: Shape | None) -> str:
    """``64×56×56`` (channels first); ``—`` when not computed.

    >>> shape_text((64, 56, 56)), shape_text((1000,)), shape_text(None)
    ('64×56×56', '1000', '—')
    """
    return "—" if shape is None else "×".join(str(n) for n in shape)


def _one_or_each(values: tuple[int, ...]) -> str:
    """``2`` when every axis has 2, else ``2×1``."""
    return str(values[0]) if len(set(values)) == 1 else "×".join(str(v) for v in values)


def window_text(row: LayerRow) -> str:
    """``3×3/2`` (kernel / stride, ``d2`` for a dilation): the window of a windowed layer.

    >>> import convcalc
    >>> report = convcalc.analyze({"input": [1, 9, 9], "layers": [
    ...     {"type": "conv", "filters": 1, "kernel": [3, 1], "stride": 2, "dilation": 2}]})
    >>> window_text(report.layers[0])
    '3×1/2 d2'
    """
    window = row.window
    if window is None:
        return ""
    text = "×".join(str(k) for k in window.kernel)
    if any(s != 1 for s in window.stride):
        text += "/" + _one_or_each(window.stride)
    if any(d != 1 for d in window.dilation):
        text += " d" + _one_or_each(window.dilation)
    return text


def resolution_hint(before: tuple[Shape, ...], after: Shape | None) -> Shape | None:
    """``after`` when it has other spatial sizes than ``before[0]`` (a pool, a strided
    conv, an upsample, a flatten): where the feature-map hint helps; else None."""
    if after is None or not before:
        return None
    return after if before[0][1:] != after[1:] else None


def hint_cell(shape: Shape) -> str:
    """The feature-map hint: an empty cell of width ``3 + 3·log₂ C`` and height
    ``3 + 2·log₂ S`` pt (S the largest spatial size; a flat vector is 3 pt high).

    >>> hint_cell((64, 56, 56))
    '<TD FIXEDSIZE="TRUE" WIDTH="21" HEIGHT="15" BGCOLOR="#6b7d92"></TD>'
    """
    channels = shape[0]
    spatial = max(shape[1:], default=1)
    width = min(48, round(3 + 3 * math.log2(max(channels, 1))))
    height = min(24, round(3 + 2 * math.log2(max(spatial, 1))))
    return (f'<TD FIXEDSIZE="TRUE" WIDTH="{width}" HEIGHT="{height}" '
            f'BGCOLOR="{HINT_COLOUR}"></TD>')


def _label(title: str, lines: list[str], hint: Shape | None = None) -> str:
    """An HTML-like label: ``title`` bold, then smaller ``lines`` (all escaped here)."""
    rows = [f"<TR><TD ALIGN=\"LEFT\"><B>{escape_html(title)}</B></TD></TR>"]
    rows += [f"<TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"9\">{escape_html(line)}</FONT>"
             "</TD></TR>" for line in lines]
    text = "<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">" \
        + "".join(rows) + "</TABLE>"
    if hint is None:
        return f"<{text}>"
    return ("<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"0\">"
            f"<TR>{hint_cell(hint)}<TD WIDTH=\"5\"></TD><TD>{text}</TD></TR></TABLE>>")


def severities(report: Report) -> dict[str, str]:
    """Layer name → ``error`` or ``warning``, the worst of its problems (other
    severities, such as notes, are in the tooltip only)."""
    rank = {"error": 2, "warning": 1}
    worst: dict[str, str] = {}
    for problem in report.problems:
        if problem.layer is not None and \
                rank.get(problem.severity, 0) > rank.get(worst.get(problem.layer, ""), 0):
            worst[problem.layer] = problem.severity
    return worst


def _group_severity(group: GroupSummary, worst: dict[str, str]) -> str | None:
    found = {worst.get(row.name) for row in group.layers}
    return "error" if "error" in found else ("warning" if "warning" in found else None)


def _mark_attrs(severity: str | None) -> tuple[str, list[str]]:
    if severity is None:
        return "", []
    mark, colour, width = MARKS[severity]
    return f" {mark}", [f'color="{colour}"', f"penwidth={width}"]


def _attrs(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


def _layer_node(node: str, row: LayerRow, scope: str, worst: dict[str, str]) -> str:
    severity = worst.get(row.name)
    mark, extra = _mark_attrs(severity)
    kind = row.type + (f" {window_text(row)}" if row.window is not None else "")
    hint = resolution_hint(row.input_shapes, row.output_shape)
    label = _label(_relative(row.name, scope) + mark, [f"{kind} · {shape_text(row.output_shape)}"],
                   hint)
    classes = "layer" + (f" {severity}" if severity else "")
    return (f"{node} " + _attrs([f'id="{node}"', f'class="{classes}"',
                                 f'fillcolor="{family_colour(family(row.type))}"',
                                 *extra, f"label={label}"]) + ";")


def _group_node(node: str, group: GroupSummary, scope: str, worst: dict[str, str]) -> str:
    severity = _group_severity(group, worst)
    mark, extra = _mark_attrs(severity)
    label = _label(_relative(group.name, scope) + mark,
                   [f"{group.block} · {shape_text(group.output_shape)}",
                    f"{group.params:,} params"],
                   resolution_hint(group.layers[0].input_shapes, group.output_shape))
    classes = "group folded" + (f" {severity}" if severity else "")
    return (f"{node} " + _attrs([f'id="{node}"', f'class="{classes}"', "peripheries=2",
                                 'style="filled"', f'fillcolor="{FOLDED_COLOUR}"',
                                 *extra, f"label={label}"]) + ";")


def _input_node(report: Report) -> str:
    label = _label("input", [shape_text(report.input_shape)], report.input_shape)
    return ("I " + _attrs(['id="I"', 'class="input"', 'shape=box', 'style="filled"',
                           f'fillcolor="{INPUT_COLOUR}"', f"label={label}"]) + ";")


def _emit(plan: Plan, cluster: Cluster, scope: str, indent: str, group_ids: dict[str, str],
          worst: dict[str, str], out: list[str]) -> None:
    for item in cluster.items:
        if isinstance(item, Cluster):
            group = item.group
            assert group is not None
            cid = "C" + group_ids[group.name][1:]
            out.append(f"{indent}subgraph cluster_{cid} {{")
            inner = indent + "  "
            title = _relative(group.name, scope)
            out.append(f'{inner}id="{cid}"; class="block"; margin=6;')
            out.append(f"{inner}label=<<B>{escape_html(title)}</B> "
                       f"<FONT POINT-SIZE=\"9\">{escape_html(group.block)}</FONT>>;")
            _emit(plan, item, group.name, inner, group_ids, worst, out)
            out.append(f"{indent}}}")
            continue
        target = plan.nodes[item]
        if isinstance(target, GroupSummary):
            out.append(indent + _group_node(item, target, scope, worst))
        elif isinstance(target, LayerRow):
            out.append(indent + _layer_node(item, target, scope, worst))


#: How much more dot straightens the spine's edges than the others.
SPINE_WEIGHT = 8


def _spine(drawn: Plan) -> set[tuple[str, str]]:
    """The edges of the main path: from a node's first input, when the node is the
    first to read it (a branch's other heads and every skip are not), so that the path
    through the first branch of each block runs straight down and the others beside it."""
    first_reader: dict[str, str] = {}
    first_input: dict[str, str] = {}
    for source, target in drawn.edges:
        first_reader.setdefault(source, target)
        first_input.setdefault(target, source)
    return {(source, target) for source, target in drawn.edges
            if first_reader[source] == target and first_input[target] == source}


def to_dot(report: Report, fold: Iterable[str] = (), depth: Depth = "auto",
           *, drawn: Plan | None = None) -> str:
    """The DOT text of the graph (see the module docstring; ``drawn``: a plan already
    made by :func:`plan` for the same arguments)."""
    drawn = drawn or plan(report, fold, depth)
    group_ids = {name: f"G{index}" for index, (name, _) in enumerate(report.groups)}
    worst = severities(report)
    out = ["digraph convcalc {",
           f'  graph [rankdir=TB newrank=true nodesep=0.18 ranksep=0.22 '
           f'fontname="{FONT}" fontsize=11 outputorder=edgesfirst '
           f'labeljust=l labelloc=t style="rounded" color="#9aa5b1" ordering=out '
           f'bgcolor="white" pad=0.1];',
           f'  node [shape=box style="rounded,filled" fontname="{FONT}" fontsize=11 '
           f'margin="0.06,0.03" height=0.3 color="#4a5563" penwidth=1];',
           '  edge [arrowsize=0.6 color="#5f6b7a" penwidth=1];']
    if report.name:
        out.append(f"  label=<<B>{escape_html(report.name)}</B>>;")
    out.append("  " + _input_node(report))
    _emit(drawn, drawn.root, "", "  ", group_ids, worst, out)
    spine = _spine(drawn)
    for index, (source, target) in enumerate(drawn.edges):
        weight = f" weight={SPINE_WEIGHT}" if (source, target) in spine else ""
        out.append(f'  {source} -> {target} [id="E{index}"{weight}];')
    out.append("}")
    return "\n".join(out) + "\n"


# --- dot, SVG and PNG ----------------------------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    """A drawing: its ``format`` (svg, png, dot), its bytes, and what was folded."""

    format: str
    data: bytes
    #: the depth applied (None: no block folded by depth)
    depth: int | None
    #: the block instances drawn as single nodes, in file order
    folded: tuple[str, ...]
    #: nodes drawn (layers, folded blocks and the input)
    nodes: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def dot_program() -> str:
    """The path of Graphviz's ``dot``, or :class:`GraphvizMissing` saying how to get it."""
    path = shutil.which("dot")
    if path is None:
        raise GraphvizMissing("drawing needs Graphviz's dot program, which is not on PATH: "
                              + INSTALL_HINT)
    return path


def _dot_failure(stderr: bytes) -> str:
    lines = [printable(line.strip()) for line in stderr.decode("utf-8", "replace").splitlines()
             if line.strip()]
    return "; ".join(lines[:3])[:300] or "no message"


def run_dot(text: str, fmt: str, timeout: float = DOT_TIMEOUT,
            limit: float | None = None) -> bytes:
    """``dot -T<fmt>`` on the DOT ``text``, killed after ``timeout`` seconds
    (:class:`DrawTimeout`, naming ``limit``: the whole drawing's, when this run has
    what is left of it)."""
    program = dot_program()
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DrawTimeout(f"Graphviz's dot did not finish within {limit or timeout:g} s and was "
                          "stopped: fold blocks to draw fewer nodes (a smaller depth, or "
                          "fold NAME)") from None
    except OSError as error:
        raise GraphvizMissing(f"Graphviz's dot ({program}) cannot be run "
                              f"({error.strerror or error}): {INSTALL_HINT}") from None
    if done.returncode != 0:
        raise DrawError(f"Graphviz's dot failed (exit status {done.returncode}): "
                        f"{_dot_failure(done.stderr)}")
    return done.stdout


SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    r"""``text`` with the characters XML cannot hold (most control characters, lone
    surrogates) written as escapes; everything else exact (the XML writer escapes it).

    >>> xml_safe("a\x01b\nc")
    'a\\x01b\nc'
    """
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _node_name(drawn: Plan, node: str) -> str:
    target = drawn.nodes.get(node)
    return "input" if target is None else target.name


def _count_text(label: str, value: int | None) -> str:
    return f"{label} —" if value is None else f"{label} {value:,}"


def problem_lines(report: Report) -> dict[str, list[str]]:
    """Layer name → its problems as tooltip lines."""
    lines: dict[str, list[str]] = {}
    for p in report.problems:
        if p.layer is not None:
            lines.setdefault(p.layer, []).append(f"{p.severity}: {p.format(tag=False)}")
    return lines


def node_title(drawn: Plan, node: str, problems: dict[str, list[str]]) -> str:
    """The tooltip of a node: what it is, its shapes and counts, its problems (from
    :func:`problem_lines`)."""
    report, target = drawn.report, drawn.nodes.get(node)
    if target is None:
        return f"input {shape_text(report.input_shape)}"
    if isinstance(target, GroupSummary):
        lines = [f"{target.name} (block {target.block}, folded: {len(target.layers)} layers)",
                 f"output {shape_text(target.output_shape)}",
                 f"params {target.params:,}, MACs {target.macs:,}"]
        return "\n".join(lines + [line for r in target.layers for line in problems.get(r.name, [])])
    row = target
    shapes = ", ".join(shape_text(s) for s in row.input_shapes) or "—"
    kind = row.type + (f" {window_text(row)}" if row.window is not None else "")
    lines = [f"{row.name} ({kind})", f"{shapes} → {shape_text(row.output_shape)}",
             f"{_count_text('params', row.params)}, {_count_text('MACs', row.macs)}"]
    return "\n".join(lines + problems.get(row.name, []))


def annotate_svg(svg: bytes, drawn: Plan) -> bytes:
    """Graphviz's SVG with the names on the node, cluster and edge groups
    (``data-layer``, ``data-group``, ``data-folded``, ``data-input``, ``data-from``,
    ``data-to``) and each node's ``<title>`` its tooltip."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(svg)
    groups = {f"C{index}": name for index, (name, _) in enumerate(drawn.report.groups)}
    edges = {f"E{index}": pair for index, pair in enumerate(drawn.edges)}
    problems = problem_lines(drawn.report)
    for element in root.iter(f"{{{SVG_NS}}}g"):
        ident = element.get("id", "")
        title = element.find(f"{{{SVG_NS}}}title")
        text: str | None = None
        if ident in drawn.nodes:
            target = drawn.nodes[ident]
            if target is None:
                element.set("data-input", "input")
            elif isinstance(target, GroupSummary):
                element.set("data-group", xml_safe(target.name))
                element.set("data-folded", "true")
            else:
                element.set("data-layer", xml_safe(target.name))
            text = node_title(drawn, ident, problems)
        elif ident in groups:
            element.set("data-group", xml_safe(groups[ident]))
            summary = drawn.summaries[groups[ident]]
            text = (f"{summary.name} (block {summary.block}): output "
                    f"{shape_text(summary.output_shape)}, params {summary.params:,}")
        elif ident in edges:
            source, target_node = edges[ident]
            element.set("data-from", xml_safe(_node_name(drawn, source)))
            element.set("data-to", xml_safe(_node_name(drawn, target_node)))
            text = f"{_node_name(drawn, source)} → {_node_name(drawn, target_node)}"
        if text is not None and title is not None:
            title.text = xml_safe(text)
    out = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            "<!-- drawn by convcalc with Graphviz's dot -->\n" + out + "\n").encode("utf-8")


def svg_size(svg: bytes) -> tuple[float, float]:
    """The width and height of an SVG drawing in pt (Graphviz writes ``"720pt"``)."""
    root = ET.fromstring(svg)

    def points(value: str | None) -> float:
        match = re.fullmatch(r"\s*([0-9.]+)\s*(pt|px)?\s*", value or "")
        if not match:
            raise ValueError(f"not an SVG size: {value!r}")
        number = float(match.group(1))
        return number * 0.75 if match.group(2) == "px" else number

    return points(root.get("width")), points(root.get("height"))


def _shallower(report: Report, drawn: Plan, fold: Iterable[str]) -> Plan | None:
    """The plan one level of folding shallower than ``drawn`` (the next depth that
    folds more), or None when every block is already folded."""
    deepest = max((g.depth for g in drawn.summaries.values()), default=0)
    current = deepest if drawn.depth is None else drawn.depth
    for depth in range(current - 1, -1, -1):
        candidate = plan(report, fold, depth)
        if len(candidate.nodes) < len(drawn.nodes):
            return candidate
    return None


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DrawTimeout(f"drawing did not finish within {timeout:g} s: fold blocks to "
                          "draw fewer nodes (a smaller depth, or fold NAME)")
    return left


def _fit_width(report: Report, drawn: Plan, fold: tuple[str, ...], deadline: float,
               timeout: float) -> tuple[Plan, bytes]:
    """``depth="auto"``'s second rule: fold one more level while dot's layout is wider
    than :data:`WIDTH_BUDGET_PT` (Inception v3's 6-branch modules at depth 1)."""
    while True:
        svg = run_dot(to_dot(report, drawn=drawn), "svg", _remaining(deadline, timeout), timeout)
        if svg_size(svg)[0] <= WIDTH_BUDGET_PT:
            return drawn, svg
        shallower = _shallower(report, drawn, fold)
        if shallower is None:
            return drawn, svg
        drawn = shallower


def draw(report: Report, format: str = "svg", fold: Iterable[str] = (),
         depth: Depth = "auto", timeout: float = DOT_TIMEOUT) -> Drawing:
    """The graph of ``report`` as SVG, PNG or DOT (see the module docstring), dot's
    runs together within ``timeout`` seconds.

    ``depth="auto"`` lays the graph out to measure it (also for DOT, when ``dot`` is
    installed; without it the DOT's depth follows the node count alone).

    Raises :class:`~convcalc.errors.ArgumentError` (a bad format, fold or depth),
    :class:`TooLargeToDraw`, and for SVG and PNG :class:`GraphvizMissing`,
    :class:`DrawTimeout` or :class:`DrawError`.
    """
    if format not in MEDIA_TYPES:
        raise ArgumentError(f"format must be one of {', '.join(FORMATS)} (got "
                            f"{printable(str(format))!r})")
    deadline = time.monotonic() + timeout
    fold = tuple(fold)
    drawn = plan(report, fold, depth)
    svg: bytes | None = None
    if depth == "auto" and (format != "dot" or shutil.which("dot")):
        drawn, svg = _fit_width(report, drawn, fold, deadline, timeout)
    text = to_dot(report, drawn=drawn)
    if format == "dot":
        data = text.encode("utf-8")
    elif format == "png":
        data = run_dot(text, "png", _remaining(deadline, timeout), timeout)
    else:
        svg = svg or run_dot(text, "svg", _remaining(deadline, timeout), timeout)
        data = annotate_svg(svg, drawn)
    return Drawing(format, data, drawn.depth, drawn.folded, len(drawn.nodes))
