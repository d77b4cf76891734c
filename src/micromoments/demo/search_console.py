"""A realistic Search Console export for the demo site: the bulk URL table (Parquet) and the UI zip.

Queries come from the demo's query grammar (so their moments are known); drawing many and keeping the
distinct texts gives a natural head and long tail (a text drawn often is a popular query). Each
query lands on the page a real garden-and-DIY shop would rank: guides for "do", advice for "know",
store pages for "go/local", product pages for "buy". Planted, and written to `search_truth.csv`:

- content gaps: some "do" queries land on product pages, some "know" questions on category pages,
  some "go/local" queries on the home page;
- cannibalisation: some queries rank with two pages that split the impressions;
- under-performers: popular queries whose CTR is a third of what their position earns;
- a trend: question and voice-style queries grow over the period;
- anonymized rows: the rarest queries, as Google withholds them.

Impressions are Poisson per (day, query, page, country, device), clicks binomial on a CTR curve
that falls with position; `target_rows` scales the volume to about that many rows.

>>> import tempfile
>>> paths = write_search_console(tempfile.mkdtemp(), days=7, draws=2_000, daily_impressions=3_000)
>>> paths.bulk.name, paths.rows > 100, paths.ui_zip.name
('searchdata_url_impression.parquet', True, 'Performance-on-Search.zip')
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from micromoments.demo.queries import QueryContext, generate_query
from micromoments.demo.stores import STORES
from micromoments.demo.vocab import PRODUCTS, PROJECTS, SITE

DEFAULT_START = dt.date(2026, 9, 1)
MOMENT_WEIGHTS = {"know": 0.30, "do": 0.25, "buy": 0.30, "go": 0.15}
COUNTRIES = {"gbr": 0.72, "irl": 0.10, "usa": 0.10, "aus": 0.03, "can": 0.03, "deu": 0.02}
COUNTRY_NAMES = {"gbr": "United Kingdom", "irl": "Ireland", "usa": "United States", "aus": "Australia",
                 "can": "Canada", "deu": "Germany"}
DEVICES = {"MOBILE": 0.62, "DESKTOP": 0.33, "TABLET": 0.05}
LOCAL_DEVICES = {"MOBILE": 0.80, "DESKTOP": 0.16, "TABLET": 0.04}
# The bulk URL table's search-appearance flags (Google's schema); the demo sets none of them.
APPEARANCE_FLAGS = (
    "is_amp_top_stories", "is_amp_blue_link", "is_job_listing", "is_job_details", "is_tpf_qa", "is_tpf_faq",
    "is_tpf_howto", "is_weblite", "is_action", "is_events_listing", "is_events_details",
    "is_search_appearance_android_app", "is_amp_story", "is_amp_image_result", "is_video", "is_organic_shopping",
    "is_review_snippet", "is_special_announcement", "is_recipe_feature", "is_recipe_rich_snippet",
    "is_subscribed_content", "is_page_experience", "is_practice_problems", "is_math_solvers",
    "is_translated_result", "is_edu_q_and_a")


@dataclass
class SearchExportPaths:
    """What `write_search_console` wrote."""

    bulk: Path
    ui_zip: Path | None
    truth: Path
    rows: int
    queries: int
    impressions: int


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _sku(name: str) -> str:
    return str(int(hashlib.md5(name.encode()).hexdigest()[:6], 16) % 9000 + 1000)


def _expected_ctr(position: np.ndarray) -> np.ndarray:
    # A typical organic curve: ~30 % at the top, ~3 % at the foot of page one.
    return 0.30 * np.power(position, -1.05)


def _queries(rng: random.Random, draws: int) -> pd.DataFrame:
    """Distinct queries with their draw count (popularity), moment, style and landing pages."""
    projects = list(PROJECTS.values())
    cities = [s.city for s in STORES]
    seen: dict[str, dict[str, object]] = {}
    moments, weights = list(MOMENT_WEIGHTS), list(MOMENT_WEIGHTS.values())
    for _ in range(draws):
        project = rng.choice(projects)
        product = PRODUCTS[rng.choice(project.products)]
        task = rng.choice(project.tasks)
        city = rng.choice(cities)
        ctx = QueryContext(project, product, task, city)
        moment = rng.choices(moments, weights)[0]
        text, fam = generate_query(rng, ctx, moment, typo_rate=0.01)
        text = " ".join(text.lower().split())
        if text in seen:
            seen[text]["draws"] += 1  # type: ignore[operator]
            continue
        product_page = f"{SITE}/p/{_slug(product.name)}-{_sku(product.name)}"
        category_page = f"{SITE}/c/{product.category}"
        pages = {
            "buy": product_page if rng.random() < 0.75 else category_page,
            "do": f"{SITE}/how-to/{_slug(task.base)}",
            "know": f"{SITE}/advice/{_slug(project.name)}",
            "go": f"{SITE}/stores/{_slug(city)}" if fam.go_type == "local" else
            rng.choice([f"{SITE}/account/login", f"{SITE}/track-order"]),
        }
        gap = ""
        page = pages[moment]
        if moment == "do" and rng.random() < 0.12:
            page, gap = product_page, "do_on_product_page"
        elif moment == "know" and fam.style == "question" and rng.random() < 0.2:
            page, gap = category_page, "know_question_no_answer_page"
        elif moment == "go" and fam.go_type == "local" and rng.random() < 0.25:
            page, gap = f"{SITE}/", "go_local_no_store_page"
        second = {"do": f"{SITE}/advice/{_slug(project.name)}", "buy": category_page,
                  "know": f"{SITE}/how-to/{_slug(task.base)}"}.get(moment)
        seen[text] = {"query": text, "moment": moment, "go_type": fam.go_type or None, "style": fam.style,
                      "draws": 1, "page": page, "gap": gap,
                      "second_page": second if second and second != page and rng.random() < 0.08 else None}
    return pd.DataFrame(list(seen.values()))


def _pairs(q: pd.DataFrame, nrng: np.random.Generator) -> pd.DataFrame:
    """(query, page) pairs with their share of the query's impressions and base position."""
    n = len(q)
    popularity = q.draws.to_numpy(dtype=float)
    rank = popularity.argsort()[::-1].argsort() / max(n - 1, 1)   # 0 = most popular
    base = np.clip(np.exp(nrng.normal(np.log(2.5 + 12 * rank), 0.55)), 1.0, 60.0)
    # A third of the popular queries earn a third of their position's CTR: titles and snippets that miss.
    under = (rank < 0.3) & (nrng.random(n) < 0.12) & (q["query"].str.contains("greenhaven") == False)  # noqa: E712
    factor = np.where(q["query"].str.contains("greenhaven"), 1.8, 1.0) * np.where(under, 0.33, 1.0)
    factor = factor * np.where(q.gap != "", 0.6, 1.0)
    q = q.assign(base_position=base, ctr_factor=factor, under_performer=under)
    share = np.where(q.second_page.notna(), nrng.uniform(0.55, 0.8, n), 1.0)
    first = q.assign(url=q.page, share=share)
    second = q[q.second_page.notna()].assign(url=lambda d: d.second_page,
                                              share=lambda d: 1 - share[d.index],
                                              base_position=lambda d: d.base_position + 2.5)
    return pd.concat([first, second], ignore_index=True)


def _cells(pairs: pd.DataFrame, days: int, start: dt.date, nrng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Expected impressions for every (pair, day, country, device) cell, and the cells' coordinates."""
    t = np.arange(days) / max(days - 1, 1)
    weekday = np.array([(start + dt.timedelta(days=int(d))).weekday() for d in range(days)])
    growing = pairs["style"].isin(["question", "voice"]).to_numpy()
    trend = np.where(growing[:, None], 1 + 0.8 * t[None, :], 1 + 0.05 * t[None, :])
    dow = np.where(weekday >= 5, 1.15, 1.0)[None, :]
    base = (pairs.draws.to_numpy(dtype=float) * pairs.share.to_numpy())[:, None] * trend * dow   # pairs x days
    country_p = np.array(list(COUNTRIES.values()))
    local = (pairs.go_type == "local").to_numpy()
    dev = np.where(local[:, None], np.array(list(LOCAL_DEVICES.values()))[None, :],
                   np.array(list(DEVICES.values()))[None, :])                                        # pairs x devices
    lam = base[:, :, None, None] * country_p[None, None, :, None] * dev[:, None, None, :]
    return lam, country_p, dev


def _scale_for(lam: np.ndarray, target_rows: int, nrng: np.random.Generator) -> float:
    """The volume scale at which about `target_rows` cells get at least one impression."""
    flat = lam.ravel()
    sample = flat if flat.size <= 2_000_000 else nrng.choice(flat, 2_000_000, replace=False)
    factor = flat.size / sample.size
    lo, hi = 1e-4, 1e5
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        expected = factor * float(np.sum(-np.expm1(-mid * sample)))
        lo, hi = (mid, hi) if expected < target_rows else (lo, mid)
    return (lo * hi) ** 0.5


def write_search_console(
    out_dir: str | Path,
    *,
    days: int = 30,
    start: dt.date = DEFAULT_START,
    seed: int = 42,
    draws: int = 40_000,
    daily_impressions: int = 20_000,
    target_rows: int | None = None,
    ui_zip: bool = True,
) -> SearchExportPaths:
    """Write `searchdata_url_impression.parquet`, `Performance-on-Search.zip` and `search_truth.csv`.

    `daily_impressions` sets the volume, unless `target_rows` asks for about that many bulk rows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    queries = _queries(rng, draws)
    # Google withholds rare queries: half of those drawn once are anonymized.
    queries["anonymized"] = (queries.draws == 1) & (nrng.random(len(queries)) < 0.5)
    pairs = _pairs(queries, nrng)
    # Popularity: a head of queries many people type and a long tail (the draw counts alone are too flat).
    pairs["draws"] = pairs.draws.astype(float) ** 1.6 * np.exp(nrng.normal(0, 0.8, len(pairs)))
    lam, _, _ = _cells(pairs, days, start, nrng)
    if target_rows:
        scale = _scale_for(lam, target_rows, nrng)
    else:
        scale = daily_impressions / max(float(lam.sum()) / days, 1e-9)
    impressions = nrng.poisson(lam * scale)
    idx = np.nonzero(impressions)
    impr = impressions[idx].astype(np.int64)
    del impressions, lam
    p_idx, d_idx, c_idx, v_idx = idx
    p = pairs.iloc[p_idx]
    position = np.clip(p.base_position.to_numpy() * np.exp(nrng.normal(0, 0.12, len(impr))), 1.0, 100.0)
    ctr = np.clip(_expected_ctr(position) * p.ctr_factor.to_numpy(), 0, 0.95)
    clicks = nrng.binomial(impr, ctr).astype(np.int64)
    anonymized = p.anonymized.to_numpy()
    countries = np.array(list(COUNTRIES))
    devices = np.array(list(DEVICES))
    n = len(impr)
    columns: dict[str, pa.Array] = {
        "data_date": pa.array(np.datetime64(start, "D") + d_idx.astype("timedelta64[D]"), pa.date32()),
        "site_url": pa.array(np.full(n, "sc-domain:greenhaven.example"), pa.string()),
        "url": pa.array(p.url.to_numpy(), pa.string()),
        "query": pa.array(np.where(anonymized, None, p["query"].to_numpy()), pa.string()),
        "is_anonymized_query": pa.array(anonymized, pa.bool_()),
        "is_anonymized_discover": pa.array(np.zeros(n, bool), pa.bool_()),
        "country": pa.array(countries[c_idx], pa.string()),
        "search_type": pa.array(np.full(n, "WEB"), pa.string()),
        "device": pa.array(devices[v_idx], pa.string()),
    }
    false = pa.array(np.zeros(n, bool), pa.bool_())
    columns.update({flag: false for flag in APPEARANCE_FLAGS})
    columns.update({"impressions": pa.array(impr), "clicks": pa.array(clicks),
                    "sum_position": pa.array(np.round((position - 1) * impr).astype(np.int64))})
    table = pa.table(columns)
    bulk = out / "searchdata_url_impression.parquet"
    pq.write_table(table, bulk, row_group_size=256_000)
    zip_path = _write_ui_zip(table, out / "Performance-on-Search.zip", days) if ui_zip else None
    truth = out / "search_truth.csv"
    queries.assign(second_page=queries.second_page.fillna("")).merge(
        pairs.drop_duplicates("query")[["query", "under_performer", "base_position"]], on="query").drop(
        columns=["draws"]).to_csv(truth, index=False)
    return SearchExportPaths(bulk, zip_path, truth, n, int((~queries.anonymized).sum()), int(impr.sum()))


def _ui_table(frame: pd.DataFrame, name: str, limit: int | None = 1000) -> str:
    f = frame.sort_values(["clicks", "impressions"], ascending=False)
    f = f.head(limit) if limit else f
    ctr = (100 * f.clicks / f.impressions).map(lambda x: f"{x:.2f}%".replace(".00%", "%"))
    pos = (f.pos_sum / f.impressions + 1).map(lambda x: f"{x:.1f}")
    body = pd.DataFrame({name: f.key, "Clicks": f.clicks, "Impressions": f.impressions, "CTR": ctr, "Position": pos})
    return body.to_csv(index=False)


def _write_ui_zip(table: pa.Table, path: Path, days: int) -> Path:
    """The UI's Performance export of the same searches: top 1,000 queries and pages, and the splits."""
    df = table.select(["data_date", "url", "query", "country", "device", "impressions", "clicks",
                       "sum_position"]).to_pandas()
    df["pos_sum"] = df.sum_position

    def agg(key: pd.Series) -> pd.DataFrame:
        g = df.assign(key=key).groupby("key", as_index=False)[["clicks", "impressions", "pos_sum"]].sum()
        return g

    files = {
        "Queries.csv": _ui_table(agg(df["query"]).dropna(subset=["key"]), "Top queries"),
        "Pages.csv": _ui_table(agg(df.url), "Top pages"),
        "Countries.csv": _ui_table(agg(df.country.map(COUNTRY_NAMES)), "Country", None),
        "Devices.csv": _ui_table(agg(df.device.str.title()), "Device", None),
        "Dates.csv": _ui_table(agg(df.data_date.astype(str)), "Date", None),
        "Filters.csv": f"Filter,Value\nSearch type,Web\nDate,Last {days} days\n",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path
