"""Report section for predictions: test-period quality, feature importance, calibration and lift.

Reads the latest `micromoments predict train/evaluate` run logged in the store (`predict_runs`);
no run, no section.

>>> # sections = predict_sections(store, config)
"""

from __future__ import annotations

import html
from typing import Any

from micromoments.report.sections import Section, figure_html, section_provider


def _num(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


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
        f"Model: <code>{run.get('model_path', '')}</code>."))
    sec.kpis = [
        ("next-moment macro AUC (model)", _num(nm.get("model"))),
        ("… repeat the last moment", _num(nm.get("repeat_last"))),
        ("… global frequencies", _num(nm.get("global_frequency"))),
        ("buy this session: AUC / ECE", f"{_num(targets.get('buy_session', {}).get('auc'))} / "
                                        f"{_num(targets.get('buy_session', {}).get('ece'))}"),
        ("buy within days: AUC / ECE", f"{_num(targets.get('buy_7d', {}).get('auc'))} / "
                                       f"{_num(targets.get('buy_7d', {}).get('ece'))}"),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td class='num'>{_num(t.get('auc'))}</td><td class='num'>{_num(t.get('ece'))}</td>"
        f"<td class='num'>{t.get('n_test', 0):,}</td><td class='num'>{_num(t.get('test_rate'))}</td></tr>"
        for n, t in targets.items())
    sec.table = ("<table><thead><tr><th>target</th><th>AUC</th><th>ECE</th><th>test cutoffs</th><th>rate</th></tr>"
                 f"</thead><tbody>{rows}</tbody></table>")

    figs = []
    imp = run.get("importance") or {}
    if imp:
        fig = make_subplots(rows=1, cols=len(imp), subplot_titles=list(imp), horizontal_spacing=0.12)
        for i, (family, drops) in enumerate(imp.items(), start=1):
            items = sorted(drops.items(), key=lambda kv: kv[1])
            fig.add_trace(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                                 showlegend=False, marker_color="#4c78a8"), row=1, col=i)
        fig.update_layout(title="Feature importance: AUC lost when a feature family is shuffled", height=360,
                          margin=dict(l=10, r=10, t=70, b=30))
        figs.append(figure_html(fig, "predict-importance"))
    cal = make_subplots(rows=1, cols=2, subplot_titles=("Calibration", "Lift by score decile"))
    cal.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"),
                             name="perfect", showlegend=False), row=1, col=1)
    for name, color in (("buy_session", "#e45756"), ("buy_7d", "#54a24b")):
        t = targets.get(name) or {}
        bins = t.get("calibration") or []
        if bins:
            cal.add_trace(go.Scatter(x=[b["predicted"] for b in bins], y=[b["observed"] for b in bins],
                                     mode="lines+markers", name=name, line=dict(color=color)), row=1, col=1)
        lift = t.get("lift") or []
        if lift:
            cal.add_trace(go.Bar(x=[d["decile"] for d in lift], y=[d["lift"] for d in lift], name=f"{name} lift",
                                 marker_color=color, opacity=0.8), row=1, col=2)
    cal.update_xaxes(title_text="predicted", row=1, col=1)
    cal.update_yaxes(title_text="observed", row=1, col=1)
    cal.update_xaxes(title_text="decile (highest scores first)", row=1, col=2)
    cal.update_yaxes(title_text="rate / base rate", row=1, col=2)
    cal.update_layout(height=380, barmode="group", margin=dict(l=10, r=10, t=50, b=40))
    figs.append(figure_html(cal, "predict-calibration"))
    sec.figure = "".join(figs)
    sec.notes = ["Scores for everyone: <code>micromoments predict score -o scores.parquet</code> "
                 "(add <code>--where \"p_buy_7d > 0.6\"</code> to export a segment)."]
    return [sec]
