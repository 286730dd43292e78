"""``.. convcalc-drawing::`` — the drawing of a spec, made by :func:`convcalc.draw.draw`
(Graphviz's ``dot``) while the docs are built, so the picture on the page is the one the
code makes today.

The directive's content is the spec (YAML), shown first unless ``:hide-spec:``; ``:depth:``
and ``:fold:`` (comma-separated) are ``convcalc draw``'s options.  The SVG is written
next to the page as ``_drawings/<page>-<n>.svg`` and shown in an ``<object>`` (so its
tooltips work).  Without ``dot`` the page says how to make the drawing instead — except
in CI (``CI`` set), where a missing ``dot`` is a build error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


class DrawingDirective(SphinxDirective):
    has_content = True
    option_spec = {"depth": directives.unchanged, "fold": directives.unchanged,
                   "hide-spec": directives.flag, "caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        import convcalc
        from convcalc.draw import draw

        for path in sorted((ROOT / "convcalc").glob("*.py")):
            self.env.note_dependency(str(path))
        text = "\n".join(self.content) + "\n"
        out: list[nodes.Node] = []
        if "hide-spec" not in self.options:
            block = nodes.literal_block(text, text, language="yaml")
            out.append(block)
        depth: Any = self.options.get("depth", "auto")
        depth = None if depth == "all" else (int(depth) if str(depth).isdigit() else depth)
        fold = [n.strip() for n in self.options.get("fold", "").split(",") if n.strip()]
        if shutil.which("dot") is None:
            if os.environ.get("CI"):
                raise self.error("Graphviz's dot is missing: CI must build the drawings "
                                 "(apt-get install graphviz)")
            out.append(nodes.paragraph(text="(This drawing is made with Graphviz's dot "
                                            "when the docs are built; it is not installed "
                                            "here. convcalc draw makes it.)"))
            return out
        report = convcalc.analyze(convcalc.loads(text))
        svg = draw(report, "svg", fold=fold, depth=depth).data
        number = self.env.new_serialno("convcalc-drawing")
        name = f"{self.env.docname.replace('/', '-')}-{number}.svg"
        target = Path(self.env.app.outdir) / "_drawings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(svg)
        caption = self.options.get("caption", "")
        html = (f'<figure class="convcalc-drawing"><object type="image/svg+xml" '
                f'data="_drawings/{name}" style="max-width: 100%"></object>'
                + (f"<figcaption>{_escape(caption)}</figcaption>" if caption else "")
                + "</figure>")
        out.append(nodes.raw("", html, format="html"))
        return out


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("convcalc-drawing", DrawingDirective)
    return {"parallel_read_safe": True}
