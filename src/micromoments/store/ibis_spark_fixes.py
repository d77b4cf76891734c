"""A fix to Ibis 12's PySpark SQL, applied when the Spark engine is used.

Ibis compiles `.strip()` as `TRIM(' \\t\\n\\r\\v\\f' FROM s)`; Spark SQL reads `\\v` and `\\f` in a
literal as the letters v and f, so "fire pit" became "ire pit" and "Form Submitted" lost its F on
Spark while DuckDB kept them. The whitespace set is built with `chr()` instead, so both engines
strip the same six characters (ASCII whitespace, Python's `string.whitespace`).

>>> import ibis
>>> apply()
>>> t = ibis.table({"q": "string"}, name="t")
>>> "CHR(" in ibis.to_sql(t.select(x=t.q.strip()), dialect="pyspark")
True
"""

from __future__ import annotations

import string

_APPLIED: list[bool] = []


def apply() -> None:
    """Patch the PySpark compiler's Strip, LStrip and RStrip (once per process)."""
    if _APPLIED:
        return
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    def whitespace(self):  # type: ignore[no-untyped-def]
        return self.f.concat(*[self.f.chr(sge.Literal.number(ord(c))) for c in string.whitespace])

    def strip(position: str):  # type: ignore[no-untyped-def]
        def visit(self, op, *, arg):  # type: ignore[no-untyped-def]
            return sge.Trim(this=arg, expression=whitespace(self), position=position)
        return visit

    PySparkCompiler.visit_Strip = strip("BOTH")  # type: ignore[attr-defined]
    PySparkCompiler.visit_LStrip = strip("LEADING")  # type: ignore[attr-defined]
    PySparkCompiler.visit_RStrip = strip("TRAILING")  # type: ignore[attr-defined]
    _APPLIED.append(True)
