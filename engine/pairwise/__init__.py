"""Pairwise agreement and error consistency between every two networks, out of core.

Layout letters: n networks, t checkpoints, x examples, w 64-bit words, r bootstrap replicates,
g groups. For one split and checkpoint the work is cut into tiles of ``block x block`` network
pairs. Dask runs one task per block of networks that reads the store's packed correctness bits
(and predictions) once, and one task per block of rows (a strip) that calls the kernels of
:mod:`kernels.pairwise` on its tiles: the upper triangle's tiles give the sums over pairs per
group pair (with bootstrap weights) and the exact histograms, and are written into
``pairwise.zarr`` where the matrices are asked for (by default up to 4,096 networks); every tile
gives the row networks' own statistics (mean and median kappa, most and least similar
networks). Nothing holds the N x N matrix, let alone N x N x checkpoints. See docs/pairwise.md.

The rooms:

- :mod:`~engine.pairwise.inputs`: checkpoints, networks, classes, devices; the two sides
  (:class:`~engine.pairwise.inputs.PairwiseSide`);
- :mod:`~engine.pairwise.blocks`: kernel inputs of one block of networks, read once;
- :mod:`~engine.pairwise.counts`: agreement and kappa from co-correct counts (the algebra);
- :mod:`~engine.pairwise.tiles`: the strip task and the scheduling of one matrix's strips;
- :mod:`~engine.pairwise.cuda`: tile counts on a GPU (the only module that imports torch);
- :mod:`~engine.pairwise.output`: ``pairwise.zarr``, written tile by tile;
- :mod:`~engine.pairwise.dataset`: :func:`open_pairwise`, ``pairwise.zarr`` as an xarray Dataset;
- :mod:`~engine.pairwise.summaries`: means, network and example bootstrap intervals;
- :mod:`~engine.pairwise.figures`: the kappa heatmap and distribution;
- :mod:`~engine.pairwise.api`: :func:`pairwise_report` and :func:`cross_pairwise_report`.
"""

from engine.pairwise.api import cross_pairwise_report, pairwise_report
from engine.pairwise.blocks import words_from_bytes
from engine.pairwise.dataset import open_pairwise
from engine.pairwise.figures import kappa_distribution, kappa_heatmap
from engine.pairwise.inputs import resolve_checkpoints

__all__ = [
    "cross_pairwise_report",
    "kappa_distribution",
    "kappa_heatmap",
    "open_pairwise",
    "pairwise_report",
    "resolve_checkpoints",
    "words_from_bytes",
]
