"""Plain, consistent numbers: separators, integers as integers, one decimal convention per unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from micromoments.report import charts
from micromoments.report.build import _table
from micromoments.report.measure import _rows, whole


def test_tables_write_counts_with_separators_and_as_integers() -> None:
    frame = pd.DataFrame({"path": ["know → buy"], "people": [np.int64(2361)], "conversion_rate": [0.123]})
    html = _table(frame, {"path": "path", "people": "people", "conversion_rate": "bought"})
    assert "2,361" in html and "2361" not in html and "12%" in html


def test_attribution_credits_whole_conversions_in_every_cell() -> None:
    wide = pd.DataFrame({"channel": ["social", "app"], "markov": [93.0, 603.2], "linear": [82.04, 0.0]})
    html = _rows(wide, {"channel": "channel", "markov": "Markov", "linear": "linear"}, fmt=whole)
    assert ">93<" in html and ">603<" in html and ">82<" in html and ">0<" in html
    assert "93.00" not in html and ".0" not in html


def test_default_cells_keep_integers_integers() -> None:
    html = _rows(pd.DataFrame({"n": [np.int64(6212), 3.0, 8.744]}), {"n": "n"})
    assert ">6,212<" in html and ">3<" in html and ">8.74<" in html


def test_funnel_and_axes_use_separators() -> None:
    fun = pd.DataFrame({"step": [1, 2], "step_name": ["Viewed", "Bought"], "people": [2361, 1200],
                        "conversion_from_previous": [1.0, 0.51], "conversion_from_start": [1.0, 0.51],
                        "median_s_from_start": [None, 600.0]})
    fig, _ = charts.funnel_chart(fun)
    assert fig.data[0].texttemplate.startswith("%{value:,}")
    assert charts.nice_step(2361) == 500 and charts.paired_ticks(181, 14) == ((50, 5), 4)
