"""Numba kernels of Created Equal: small, pure functions on NumPy blocks.

They import numpy and numba only, know nothing of Dask, Zarr or torch, and return sufficient
statistics (counts, sums) so that results from chunks add up exactly. Layout letters: n networks,
t checkpoints, x examples.
"""

#: Distinguishes this package from the unrelated PyPI package also called ``kernels``.
PROJECT = "created-equal"
