"""Collection of the whole repository (the doctests of engine/ and kernels/ too): the modules of
an optional extra that is not installed are left out, as their tests skip themselves."""

from importlib.util import find_spec

collect_ignore = []
if find_spec("lightning") is None and find_spec("pytorch_lightning") is None:
    collect_ignore.append("engine/record/lightning.py")
if find_spec("transformers") is None:
    collect_ignore.append("engine/record/transformers.py")
