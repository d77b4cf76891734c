"""Report section for predictions: test-period quality, feature importance, calibration and lift.

Reads the latest `micromoments predict train/evaluate` run logged in the store (`predict_runs`);
no run, no section.

>>> # sections = predict_sections(store, config)
"""

from __future__ import annotations

import html
from typing import Any

from micromoments.report import charts
from micromoments.report.sections import Section, figure_html, section_provider

TARGET_NAMES = {"buy_session": "buy this session", "buy_7d": "buy within days"}


def _num(v: Any, digits: int = 2) -> str:
    """A score such as AUC: two decimals everywhere (`0.84`)."""
    return "—" if v is None else f"{v:.{digits}f}"


def _auc_cell(t: dict[str, Any]) -> str:
    """The AUC with its bootstrap interval, and the verdict when it is not `ok` (HTML, escaped).

    >>> _auc_cell({"auc": 0.47, "auc_low": 0.41, "auc_high": 0.53, "status": "chance"})
    '0.47 (0.41–0.53) <b>chance level</b>'
    """
    text = _num(t.get("auc"))
    if t.get("auc_low") is not None and t.get("auc") is not None:
        text += f" ({t['auc_low']:.2f}–{t['auc_high']:.2f})"
    status = t.get("status", "ok")
    label = {"chance": "chance level", "thin": "too little data", "untestable": "not measurable"}.get(status)
    return text + (f" <b>{label}</b>" if label else "")


def _points(v: Any) -> str:
    """A calibration error as percentage points (`2.1 pts`): one decimal everywhere."""
    return "—" if v is None else f"{100 * v:.1f} pts"


# Plain words for every statistical term the section uses.
GLOSSARY = (
    "<b>AUC</b>: how well the score ranks the people who did it above those who did not "
    "(0.50 is guessing, 1.00 is perfect). <b>Calibration error (ECE)</b>: how far the predicted chances are "
    "from what happened, on average, in percentage points (0 is spot on). <b>Decayed frequency</b>: how often "
    "a person showed each moment, recent ones counting more. <b>Lift</b>: how many times the base rate the "
    "top-scored people convert."
)
FAMILY_NAMES = {"decayed frequency": "recent habits (decayed frequency)"}


@section_provider(order=30)
def predict_sections(store: Any, config: Any | None = None) -> list:
    """`Section`s for the report; [] when no model was trained on this store."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from micromoments.predict.pipeline import latest_run

    run = latest_run(store)
    if not run:
        return []
    targets = run.get("targets", {})
    nm = run.get("next_moment") or {}
    sec = Section("predict", "Anticipating the next moment", intro=(
        "Models trained on the past and tested on the most recent period (a time-based split): the chance of "
        "each moment type in the next hours, and the chance to buy before the session ends or within days. "
        f"Model: <code>{run.get('model_path', '')}</code>.<br>" + GLOSSARY))
    sec.kpis = [
        ("next-moment macro AUC (model)", _num(nm.get("model"))),
        ("… repeat the last moment", _num(nm.get("repeat_last"))),
        ("… global frequencies", _num(nm.get("global_frequency"))),
        ("buy this session: AUC / calibration error", f"{_num(targets.get('buy_session', {}).get('auc'))} / "
                                                      f"{_points(targets.get('buy_session', {}).get('ece'))}"),
        ("buy within days: AUC / calibration error", f"{_num(targets.get('buy_7d', {}).get('auc'))} / "
                                                     f"{_points(targets.get('buy_7d', {}).get('ece'))}"),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(TARGET_NAMES.get(n, n))}</td><td class='num'>{_auc_cell(t)}</td>"
        f"<td class='num'>{_points(t.get('ece'))}</td><td class='num'>{int(t.get('n_test', 0) or 0):,}</td>"
        f"<td class='num'>{charts.pct(float(t['test_rate'])) if t.get('test_rate') is not None else '—'}</td></tr>"
        for n, t in targets.items())
    flagged = [(n, t) for n, t in targets.items() if t.get("status", "ok") != "ok"]
    if flagged:  # a chance-level or thin-data model is never shown as a plain number
        sec.intro += "<br><b>Not to be trusted yet:</b> " + "; ".join(
            f"{TARGET_NAMES.get(n, n)}: {t.get('note', '')}" for n, t in flagged) + "."  # rich() escapes
    sec.table = ("<table><thead><tr><th>target</th><th class='num'>AUC (95 % interval)</th><th class='num'>calibration error</th>"
                 "<th class='num'>test cutoffs</th><th class='num'>share who did it</th></tr>"
                 f"</thead><tbody>{rows}</tbody></table>")

    figs = []
    imp = run.get("importance") or {}
    if imp:
        fig = make_subplots(rows=1, cols=len(imp), subplot_titles=list(imp), horizontal_spacing=0.12)
        for i, (family, drops) in enumerate(imp.items(), start=1):
            items = sorted(drops.items(), key=lambda kv: kv[1])
            fig.add_trace(go.Bar(x=[v for _, v in items], y=[FAMILY_NAMES.get(k, k) for k, _ in items],
                                 orientation="h", showlegend=False, marker_color=charts.COLORS["know"]), row=1, col=i)
        fig.update_layout(**{**charts.LAYOUT, "height": 380, "margin": dict(l=10, r=10, t=70, b=30)},
                          title="What the models lean on: AUC lost when a family of signals is scrambled")
        fig.update_xaxes(tickformat=".2f")
        figs.append(figure_html(fig, "predict-importance"))
    cal = make_subplots(rows=1, cols=2, subplot_titles=("Calibration", "Lift by score decile"))
    cal.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"),
                             name="perfect", showlegend=False), row=1, col=1)
    for name, color in (("buy_session", charts.COLORS["buy"]), ("buy_7d", charts.COLORS["do"])):
        t = targets.get(name) or {}
        bins = t.get("calibration") or []
        if bins:
            cal.add_trace(go.Scatter(x=[b["predicted"] for b in bins], y=[b["observed"] for b in bins],
                                     mode="lines+markers", name=TARGET_NAMES.get(name, name),
                                     line=dict(color=color)), row=1, col=1)
        lift = t.get("lift") or []
        if lift:
            cal.add_trace(go.Bar(x=[d["decile"] for d in lift], y=[d["lift"] for d in lift],
                                 name=f"{TARGET_NAMES.get(name, name)}: lift",
                                 marker_color=color, opacity=0.8), row=1, col=2)
    cal.update_xaxes(title_text="predicted chance", tickformat=".0%", row=1, col=1)
    cal.update_yaxes(title_text="what happened", tickformat=".0%", row=1, col=1)
    cal.update_xaxes(title_text="tenth of people (highest scores first)", dtick=1, row=1, col=2)
    cal.update_yaxes(title_text="times the base rate", row=1, col=2)
    cal.update_layout(**{**charts.LAYOUT, "height": 400, "margin": dict(l=10, r=10, t=50, b=40)}, barmode="group",
                      legend=dict(orientation="h", y=-0.25))
    figs.append(figure_html(cal, "predict-calibration"))
    sec.figure = "".join(figs)
    sec.notes = ["Calibration: the closer the lines follow the dotted diagonal, the more a predicted 30% really "
                 "means 3 in 10. Lift: the first bars show how many times more often the top-scored tenth buys.",
                 "Scores for everyone: <code>micromoments predict score -o scores.parquet</code> "
                 "(add <code>--where \"p_buy_7d > 0.6\"</code> to export a segment)."]
    return [sec]
