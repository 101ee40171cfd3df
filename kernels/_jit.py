"""The one compilation policy of every kernel.

``nogil=True``: Dask runs kernels side by side on threads, which only helps if they release the
GIL. ``cache=True``: the machine code is kept beside the module, so that a fresh worker process
does not compile every kernel again. Kernels stay serial (no ``parallel=True``): parallelism
comes from Dask, and Numba threads nested inside Dask threads would oversubscribe the cores.
"""

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

Function = TypeVar("Function", bound=Callable[..., Any])

_policy = njit(nogil=True, cache=True)


def kernel(function: Function) -> Function:
    """Decorator of every kernel: compiles ``function`` with the policy above.

    The type checker sees the function's own signature (numba's dispatcher is untyped).
    """
    return cast(Function, _policy(function))
