"""The one compilation policy of every kernel.

``nogil=True``: Dask runs kernels side by side on threads, which only helps if they release the
GIL. ``cache=True``: the machine code is kept beside the module, so that a fresh worker process
does not compile every kernel again. Kernels stay serial (no ``parallel=True``): parallelism
comes from Dask, and Numba threads nested inside Dask threads would oversubscribe the cores.
"""

from numba import njit

#: Decorator of every kernel: ``@kernel`` compiles the function with the policy above.
kernel = njit(nogil=True, cache=True)
