"""The self-contained HTML report: `build_report(store, "report.html")`."""

from micromoments.report.build import build_report, render

__all__ = ["build_report", "render"]
