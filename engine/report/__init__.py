"""`engine analyze` and `engine compare`: the measures of one store or of several, as tables,
figures and a self-contained page.

Rooms: :mod:`~engine.report.run` resolves what is read and computes it,
:mod:`~engine.report.tables` writes ``summary.json`` and the parquet tables,
:mod:`~engine.report.figures` the PNG figures and :mod:`~engine.report.html` the page, from
``templates/report.html.j2`` (see docs/outputs.md); :mod:`~engine.report.select` writes the
example ids a data-map filter takes (``engine select``).
"""

from engine.report.run import analyze_store, compare_stores
from engine.report.select import SelectedExamples, select_examples

__all__ = ["SelectedExamples", "analyze_store", "compare_stores", "select_examples"]
