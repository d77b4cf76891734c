"""The demo shop page of `serve --dev`: a search box, a product page and a store page, with
Analytics Next (when `[server] analytics_next_dir` has its bundle) and micromoments.js.

Typing "garden centre near me" tracks the search and asks `/v1/decide` again with the query:
the hero slot changes to the nearest store's content. The pages hold no inline script (the
CSP allows only this server's scripts); `/js/demo.js` wires the search box.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from micromoments.config import ServerConfig

STATIC = Path(__file__).with_name("static")
# A coarse location the shop "knows" (Leeds city centre): the demo catalog's stores are in the UK.
DEMO_LOCATION = "53.80,-1.55"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2a1d;background:#f6f8f4}
header{background:#2f6b3a;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:880px;margin:24px auto;padding:0 24px}
input#search{width:100%;font-size:18px;padding:10px 12px;border:1px solid #9bb59f;border-radius:6px}
[data-mm-slot]{margin:24px 0;padding:24px;border-radius:10px;background:#fff;border:2px solid #2f6b3a;min-height:110px}
.mm-title{margin:0 0 8px;font-size:24px}.mm-link{display:inline-block;margin-top:8px;padding:8px 14px;
background:#2f6b3a;color:#fff;border-radius:6px;text-decoration:none}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:16px}.card{background:#fff;padding:16px;border-radius:8px}
"""

_PAGES = {
    "": ("Greenhaven - garden, tools and DIY", """
<label for="search"><strong>Search the shop</strong></label>
<input id="search" type="search" placeholder="Try: garden centre near me" autocomplete="off">
<div data-mm-slot="hero"><h3>Welcome to Greenhaven</h3><p>Garden, tools and DIY.</p></div>
<div class="grid">
  <div class="card"><a href="/demo/product">Cordless drill 18V</a><p>From 79.00</p></div>
  <div class="card"><a href="/demo/product">Raised bed kit</a><p>From 49.00</p></div>
  <div class="card"><a href="/demo/store">Our stores</a><p>25 garden centres</p></div>
</div>"""),
    "product": ("Cordless drill 18V - Greenhaven", """
<h1>Cordless drill 18V</h1><p>Two batteries, charger and case. 79.00</p>
<input id="search" type="search" placeholder="Search" autocomplete="off">
<div data-mm-slot="hero"></div>"""),
    "store": ("Our stores - Greenhaven", """
<h1>Our garden centres</h1><p>Opening hours, stock and directions for every store.</p>
<input id="search" type="search" placeholder="Search" autocomplete="off">
<div data-mm-slot="hero"></div>"""),
}


def demo_html(page: str, write_key: str, *, analytics_next: bool) -> str:
    """The HTML of one demo page (`""`, `"product"` or `"store"`).

    >>> "data-mm-slot" in demo_html("", "wk", analytics_next=False)
    True
    """
    title, body = _PAGES[page]
    key = html.escape(write_key, quote=True)
    ajs = '<script src="/js/analytics-next/index.js"></script>\n' if analytics_next else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/js/demo.css">
{ajs}<script src="/js/micromoments.js" data-write-key="{key}" data-location="{DEMO_LOCATION}" defer></script>
<script id="mm-demo" src="/js/demo.js" data-write-key="{key}" defer></script>
</head><body>
<header><a href="/demo">Greenhaven</a><a href="/demo/product">Products</a><a href="/demo/store">Stores</a></header>
<main>{body}</main>
</body></html>"""


def add_demo_routes(app: FastAPI, server: ServerConfig, *, analytics_next: bool) -> None:
    """`/demo`, `/demo/product`, `/demo/store` and their script and style."""
    write_key = next(iter(server.write_keys), "")

    def page(name: str) -> HTMLResponse:
        return HTMLResponse(demo_html(name, write_key, analytics_next=analytics_next))

    app.get("/demo", include_in_schema=False)(lambda: page(""))
    app.get("/demo/product", include_in_schema=False)(lambda: page("product"))
    app.get("/demo/store", include_in_schema=False)(lambda: page("store"))
    app.get("/js/demo.js", include_in_schema=False)(
        lambda: Response((STATIC / "demo.js").read_bytes(), media_type="text/javascript; charset=utf-8"))
    app.get("/js/demo.css", include_in_schema=False)(lambda: Response(_STYLE, media_type="text/css"))
