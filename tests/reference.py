"""Plain NumPy references of every measure, slow and obviously right.

Each has the same name and signature as its kernel and cites its definition in
``../shared/docs/science.md``. The agreement and learning measures live in
``reference_agreement.py``, the pairwise ones in ``reference_pairwise.py``, the soft-verdict
ones in ``reference_soft.py``; this module gathers them so that tests and benchmarks import one
name.
"""

from tests.reference_agreement import *  # noqa: F401,F403
from tests.reference_pairwise import *  # noqa: F401,F403
from tests.reference_soft import *  # noqa: F401,F403
