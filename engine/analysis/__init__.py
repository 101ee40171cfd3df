"""Analyses as values: the measures of one store (:func:`analyze`) or several
(:func:`compare`) as xarray Datasets per split and pandas tables, computed by Dask on demand.

The rooms:

- :mod:`~engine.analysis.results`: what is read of a store, resolved once, and what is computed;
- :mod:`~engine.analysis.compute`: the selection, the lazy counts, one computation, the measures;
- :mod:`~engine.analysis.variables`: every variable of a split's Dataset, its dims and attributes;
- :mod:`~engine.analysis.dataset`: a split's Dataset from its measures, eager or lazy;
- :mod:`~engine.analysis.frames`: the tables (``examples``, ``networks``, ``histograms``);
- :mod:`~engine.analysis.api`: :class:`Analysis`, :class:`ComparisonAnalysis`, :func:`analyze`
  and :func:`compare`.

``engine analyze`` and ``engine compare`` (:mod:`engine.report`) write their tables from these.
"""

from engine.analysis.api import Analysis, ComparisonAnalysis, analyze, compare
from engine.analysis.variables import VARIABLES, Variable

__all__ = ["VARIABLES", "Analysis", "ComparisonAnalysis", "Variable", "analyze", "compare"]
