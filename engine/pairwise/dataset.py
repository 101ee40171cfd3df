"""``pairwise.zarr`` read back as an xarray Dataset: checkpoints as a dim, agreement derived.

The store keeps one group per split and checkpoint (engine/pairwise/output.py writes it, layout
in docs/pairwise.md); :func:`open_pairwise` stacks a split's groups along ``checkpoints`` (epochs
as a coordinate), one variable per measure over (``checkpoints``, ``networks``,
``networks_other``), with the agreement counts A = X - c_i - c_j + 2 B derived from
``both_correct`` and each network's ``correct_count``. Lazy (Dask, chunked as stored) by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from engine.errors import ConfigError, StoreError
from engine.pairwise.counts import agreement_counts
from engine.pairwise.output import ATTRS_KEY

if TYPE_CHECKING:
    import xarray as xr
    import zarr

#: Dims of the matrices in the Dataset (the stored arrays say ``networks_0``, ``networks_1``).
MATRIX_DIMS = ("networks", "networks_other")

#: Attributes of each variable: long name, units, definition.
ATTRS = {
    "both_correct": ("examples both right", "examples", "examples both networks get right"),
    "agree": (
        "correctness agreement count",
        "examples",
        "examples on which both networks are right or both wrong: X - c_i - c_j + 2 B_ij",
    ),
    "agreement": (
        "correctness agreement",
        "1",
        "share of the examples on which both networks are right or both wrong: agree / X",
    ),
    "kappa": (
        "error consistency (Cohen's kappa)",
        "1",
        "agreement beyond that expected of independent networks of the same accuracies, "
        "(agreement - expected) / (1 - expected); NaN where undefined",
    ),
    "prediction_agree": (
        "prediction agreement count",
        "examples",
        "examples on which both networks predict the same class",
    ),
    "correct_count": ("examples right", "examples", "examples each network gets right"),
    "correct_count_other": (
        "examples right (other side)",
        "examples",
        "examples each network of the other side gets right",
    ),
}


def _attrs(name: str) -> dict[str, str]:
    long_name, units, description = ATTRS[name]
    return {"long_name": long_name, "units": units, "description": description}


def _group(parent: zarr.Group, name: str) -> zarr.Group:
    # The layout puts groups at these paths; zarr's types allow an array too.
    return cast("zarr.Group", parent[name])


def _array(group: zarr.Group, name: str) -> zarr.Array:
    return cast("zarr.Array", group[name])


def _open_root(path: str | Path) -> tuple[Path, zarr.Group]:
    import zarr

    path = Path(path)
    if path.name != "pairwise.zarr" and (path / "pairwise.zarr").exists():
        path = path / "pairwise.zarr"
    try:
        return path, zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as error:
        raise StoreError(f"no pairwise.zarr at {path}") from error


def stored_splits(root: zarr.Group) -> list[str]:
    """The splits of a ``pairwise.zarr`` of one store (not the ``stores_<a>_<b>`` groups)."""
    return sorted(name for name in root.group_keys() if not name.startswith("stores_"))


def stored_checkpoints(path: Path, root: zarr.Group, split: str) -> list[int]:
    """The checkpoints stored for ``split``, ascending."""
    splits = stored_splits(root)
    if split not in splits:
        raise StoreError(f"split {split!r} is not in {path}; it has {', '.join(splits) or 'none'}")
    return sorted(
        int(name.removeprefix("checkpoint_")) for name in _group(root, split).group_keys()
    )


def _read(group: zarr.Group, name: str) -> np.ndarray:
    """A small stored array, whole."""
    return np.asarray(_array(group, name)[:])


def _load(array: zarr.Array, lazy: bool) -> Any:
    import dask.array as da

    return da.from_array(array, chunks=array.chunks) if lazy else array[:]


def _stack(values: list[Any], lazy: bool) -> Any:
    import dask.array as da

    return da.stack(values) if lazy else np.stack(values)


def _group_names(root: zarr.Group, codes: np.ndarray) -> np.ndarray:
    """Group names of the codes where the output says them (one store), else the codes."""
    names = cast("dict", root.attrs.get(ATTRS_KEY, {})).get("groups")
    if not names:
        return codes.astype(np.int64)
    return np.asarray(names, dtype=object)[codes].astype(str)


def _matrices(
    groups: list[zarr.Group], lazy: bool, cross: bool, names: zarr.Group
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The variables (dims checkpoints x networks x networks_other) and the network
    coordinates of matrix groups of the same networks, one per checkpoint."""
    first = groups[0]
    ids, other = _read(first, "networks_0"), _read(first, "networks_1")
    for g in groups[1:]:
        if not (
            np.array_equal(_read(g, "networks_0"), ids)
            and np.array_equal(_read(g, "networks_1"), other)
        ):
            raise StoreError("the matrices of the split hold different networks per checkpoint")
    examples = np.asarray([int(cast(int, g.attrs["examples"])) for g in groups])
    count_0 = np.stack([np.asarray(_array(g, "correct_count")[:]) for g in groups])
    count_1 = np.stack(
        [
            np.asarray(
                _array(g, "correct_count_1" if "correct_count_1" in g else "correct_count")[:]
            )
            for g in groups
        ]
    )
    dims = ("checkpoints", *MATRIX_DIMS)
    both = _stack([_load(_array(g, "both_correct"), lazy) for g in groups], lazy)
    wide = agreement_counts(both, count_0[:, :, None], count_1[:, None, :], examples[:, None, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        agreement = (wide / np.where(examples > 0, examples, np.nan)[:, None, None]).astype(
            np.float32
        )
    data: dict[str, Any] = {
        "both_correct": (dims, both),
        "agree": (dims, wide.astype(both.dtype)),
        "agreement": (dims, agreement),
        "kappa": (dims, _stack([_load(_array(g, "kappa"), lazy) for g in groups], lazy)),
    }
    if all("prediction_agree" in g for g in groups):
        predictions = [_load(_array(g, "prediction_agree"), lazy) for g in groups]
        data["prediction_agree"] = (dims, _stack(predictions, lazy))
    data["correct_count"] = (("checkpoints", "networks"), count_0)
    if cross:
        data["correct_count_other"] = (("checkpoints", "networks_other"), count_1)
    coords = {
        "networks": ("networks", ids),
        "networks_other": ("networks_other", other),
        "group": ("networks", _group_names(names, _read(first, "network_group_0"))),
        "group_other": ("networks_other", _group_names(names, _read(first, "network_group_1"))),
        "num_examples": ("checkpoints", examples),
    }
    return data, coords


def _dataset(
    groups: list[zarr.Group], lazy: bool, cross: bool, root: zarr.Group, attrs: dict[str, Any]
) -> xr.Dataset:
    import xarray as xr

    data, coords = _matrices(groups, lazy, cross, root)
    checkpoints = [g.attrs.get("checkpoint", -1) for g in groups]
    epochs = [g.attrs.get("epoch", np.nan) for g in groups]
    coords["checkpoints"] = ("checkpoints", np.asarray(checkpoints, np.int64))
    coords["epoch"] = ("checkpoints", np.asarray([np.nan if e is None else e for e in epochs]))
    variables = {
        name: xr.Variable(dims, values, attrs=_attrs(name)) for name, (dims, values) in data.items()
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _one_split(
    path: Path, root: zarr.Group, split: str, checkpoint: int | None, lazy: bool
) -> xr.Dataset:
    stored = stored_checkpoints(path, root, split)
    if checkpoint is not None and checkpoint not in stored:
        raise StoreError(
            f"checkpoint {checkpoint} of split {split!r} is not in {path}; it "
            f"has {', '.join(map(str, stored))}"
        )
    chosen = stored if checkpoint is None else [checkpoint]
    groups = [_group(root, f"{split}/checkpoint_{t}") for t in chosen]
    dataset = _dataset(groups, lazy, False, root, {"split": split, "path": str(path)})
    return dataset if checkpoint is None else dataset.isel(checkpoints=0)


def open_pairwise(
    path: str | Path,
    split: str | None = None,
    checkpoint: int | None = None,
    *,
    group: str | None = None,
    lazy: bool = True,
) -> xr.Dataset:
    """The pairwise matrices of a ``pairwise.zarr`` as a Dataset, agreement derived.

    Parameters
    ----------
    path : str or Path
        The output folder of :func:`~engine.pairwise.pairwise_report` (``engine pairwise``,
        ``engine analyze --matrices``) or the ``pairwise.zarr`` in it.
    split : str, optional
        One split. Default: every split stored, along a ``splits`` dim (which needs the same
        checkpoints in each, as one run writes them).
    checkpoint : int, optional
        One stored checkpoint (the ``checkpoints`` dim then dropped). Default: every one.
    group : str, optional
        A matrix group of :func:`~engine.pairwise.cross_pairwise_report` instead, e.g.
        ``"stores_0_1/test"``: dims (``networks``, ``networks_other``), the networks of store a
        and of store b; its checkpoints are the attrs ``checkpoints``.
    lazy : bool
        Dask arrays chunked as stored (True) or NumPy arrays (False).

    Returns
    -------
    xarray.Dataset
        Dims ``checkpoints`` (coordinates: the checkpoint index, ``epoch``, ``num_examples``
        X),
        ``networks`` and ``networks_other`` (network ids; ``group``, ``group_other``).
        Variables over (checkpoints, networks, networks_other): ``both_correct`` and ``agree``
        (uint16, uint32 above 65,535 examples), ``agreement`` (float32, agree / X), ``kappa``
        (float32, NaN where undefined), ``prediction_agree`` (where predictions are stored);
        ``correct_count`` (int64, checkpoints x networks), and for a cross matrix
        ``correct_count_other``.

    Raises
    ------
    StoreError
        No ``pairwise.zarr`` at ``path``, or no such split, checkpoint or group in it.
    ConfigError
        Several splits with different checkpoints and no ``split`` named.
    """
    import xarray as xr

    path, root = _open_root(path)
    if group is not None:
        if group not in root:
            raise StoreError(f"{path} has no group {group!r}")
        matrices = _group(root, group)
        attrs = {k: v for k, v in matrices.attrs.items() if k != "examples"}
        dataset = _dataset([matrices], lazy, True, root, {**attrs, "path": str(path)})
        # Each side has its own checkpoint (attrs ``checkpoints``): no checkpoints dim.
        return dataset.isel(checkpoints=0).drop_vars(["checkpoints", "epoch"])
    if split is not None:
        return _one_split(path, root, split, checkpoint, lazy)
    splits = stored_splits(root)
    if not splits:
        raise StoreError(f"{path} holds no split's matrices")
    datasets = [_one_split(path, root, s, checkpoint, lazy) for s in splits]
    if len(datasets) == 1:
        return datasets[0]
    try:
        stacked = xr.concat(datasets, dim="splits", join="exact", combine_attrs="drop_conflicts")
    except ValueError as error:
        raise ConfigError(
            f"{path} holds splits {', '.join(splits)} at different checkpoints: name one"
        ) from error
    return stacked.assign_coords(splits=splits)


__all__ = ["MATRIX_DIMS", "open_pairwise", "stored_checkpoints", "stored_splits"]
