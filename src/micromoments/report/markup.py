"""Text from data, made safe for HTML pages, the report and Plotly labels.

Notes and intros are written as text with a few fixed tags (`<b>`, `<code>`, ...). `rich` escapes
the whole text first and then turns back on only those exact tags, without attributes, so a
value from the data can never open a tag of its own; a `<b>` typed by a visitor at worst shows
in bold. `plot_text` escapes a value for Plotly, which reads `<b>`, `<br>` and `<a href>` in
titles, tick and hover labels. `PlotlyDiv` is a chart of the `/app` pages: an empty `<div>`
carrying the figure's JSON in an escaped attribute, drawn by `/app/static/app.js` (no inline script).

>>> str(rich("<b>know</b> peaks: <img src=x onerror=alert(1)>"))
'<b>know</b> peaks: &lt;img src=x onerror=alert(1)&gt;'
>>> plot_text('"><script>')
'&#34;&gt;&lt;script&gt;'
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

__all__ = ["PlotlyDiv", "plot_text", "built_html", "rich"]

# The tags our own note texts use, as `escape` writes them; nothing else is turned back on.
_ALLOWED = ("<b>", "</b>", "<i>", "</i>", "<code>", "</code>", "<br>", "</span>",
            "<span class='flag-gap'>", "<span class='flag-peak'>")
_RESTORE = {str(escape(tag)): tag for tag in _ALLOWED}
_TAGS = re.compile("|".join(re.escape(k) for k in sorted(_RESTORE, key=len, reverse=True)))


def rich(text: Any) -> Markup:
    """`text` escaped, with only the fixed tags of `_ALLOWED` left working (a Jinja filter too).

    >>> str(rich("a <code>cmd</code> & <span class='flag-gap'>red</span>"))
    "a <code>cmd</code> &amp; <span class='flag-gap'>red</span>"
    >>> str(rich('<b onclick="x">'))
    '&lt;b onclick=&#34;x&#34;&gt;'
    """
    if text is None:
        return Markup("")
    out = _TAGS.sub(lambda m: _RESTORE[m.group(0)], str(escape(str(text))))
    # Tags opened but not closed (a data value cut in half) must not swallow the rest of the page.
    for tag in ("b", "i", "code", "span"):
        opened = out.count(f"<{tag}>") + (out.count("<span class=") if tag == "span" else 0)
        out += f"</{tag}>" * max(0, opened - out.count(f"</{tag}>"))
    return Markup(out)


def plot_text(value: Any) -> str:
    """A data value as text for a Plotly title, tick or hover label (Plotly reads a few HTML tags).

    >>> plot_text("Tom & Jerry <b>")
    'Tom &amp; Jerry &lt;b&gt;'
    """
    return str(escape("" if value is None else str(value)))


def built_html(html_from_escaped_parts: str) -> Markup:
    """Mark as HTML what a builder assembled from `escape`d values and Plotly's output only.

    Plotly's `to_html` writes the figure as JSON with `<`, `>` and `/` as `\\u003c`-style escapes,
    so a value in a figure cannot close its `<script>`.
    """
    return Markup(html_from_escaped_parts)


class PlotlyDiv:
    """A Plotly figure for a page with a strict Content-Security-Policy: JSON in `data-figure`.

    >>> import plotly.graph_objects as go
    >>> html = PlotlyDiv(go.Figure(layout={"title": {"text": "</div><script>"}}), "c1").__html__()
    >>> html.startswith('<div class="plot" id="c1" data-figure="{') and "<script>" not in html
    True
    """

    def __init__(self, fig: Any, div_id: str, config: dict[str, Any] | None = None):
        self.div_id = div_id
        self.figure_json = fig.to_json()
        self.config = config or {}

    def __html__(self) -> str:
        config = json.dumps(self.config)
        return (f'<div class="plot" id="{escape(self.div_id)}" data-figure="{escape(self.figure_json)}" '
                f'data-config="{escape(config)}"></div>')

    def __str__(self) -> str:
        return self.__html__()
