"""A split's measures as an xarray Dataset: from computed measures, or lazily from the counts.

The values of every variable (:data:`~engine.analysis.variables.VARIABLES`) come from one
function, :func:`split_values`, on the results of :func:`engine.measures.split_measures` and the
computed counts: the same measures the report writes. Eagerly (:func:`split_dataset`) it runs on
computed counts; lazily (:func:`lazy_split_datasets`) it is one Dask task per split whose inputs
are the split's lazy counts, and each variable is a piece of that task's result, so that
computing the variables together (``Dataset.compute()``) reads every chunk once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.compute import split_measures_of
from engine.analysis.results import SplitCounts, StoreSelection
from engine.analysis.variables import VARIABLES, Variable

if TYPE_CHECKING:
    import xarray as xr

#: The value of a missing number in the measures' summaries (JSON's null).
_NAN = float("nan")


def group_indices(selection: StoreSelection, group: str | None) -> list[int]:
    """The group indices pooled for ``group``: every group for None, else the named one."""
    from engine.errors import ConfigError

    names = list(selection.networks.group_names)
    if group is None:
        return list(range(len(names)))
    if group not in names:
        raise ConfigError(f"group {group!r} is not in the store; it has {', '.join(names)}")
    return [names.index(group)]


def kinds_present(
    selection: StoreSelection, split: str, groups: Iterable[int], counts: SplitCounts
) -> set[str]:
    """The kinds of variables (:data:`~engine.analysis.variables.KINDS`) the split's measures
    have for the networks of ``groups``; the same conditions as
    :func:`engine.measures.split_measures`, decided before anything is computed."""
    size = int(selection.networks.networks_in(list(groups)).sum())
    labelled = bool((selection.labels[split] >= 0).any())
    kinds = set()
    if size and labelled and counts.verdicts is not None:
        kinds.add("correctness")
        if split == selection.population.attrs.get("membership_split"):
            kinds.add("holdout")
    if size and labelled and counts.soft is not None:
        kinds.add("soft")
    if size and counts.classes is not None:
        kinds.add("consensus")
    return kinds


def dim_sizes(selection: StoreSelection, split: str, groups: Iterable[int]) -> dict[str, int]:
    """The length of each dim of the split's Dataset for the networks of ``groups``."""
    size = int(selection.networks.networks_in(list(groups)).sum())
    return {
        "checkpoints": selection.population.num_checkpoints,
        "examples": selection.population.num_examples(split),
        "networks": size,
        "k": size + 1,
    }


def _floats(values: Any) -> np.ndarray:
    """A summary's numbers (None for missing) as float64."""
    return np.asarray([_NAN if v is None else v for v in values], np.float64)


def _consensus_value(name: str, summary: dict[str, Any], sizes: dict[str, int]) -> np.ndarray:
    """A consensus variable on every checkpoint, NaN on those not counted (the summary's
    section holds the counted ones, the last ``len`` checkpoints)."""
    section = summary.get("consensus") or summary["consensus_last"]
    key = name.removeprefix("consensus_")
    kept = _floats(section[key]) if key.endswith("mean") else np.asarray(section[key], np.float64)
    shape = (sizes["checkpoints"],) + ((sizes["k"],) if key.endswith("histogram") else ())
    out = np.full(shape, np.nan)
    if len(kept):
        out[-len(kept) :] = kept
    return out


def _value(
    variable: Variable,
    measures: dict[str, Any],
    counts: SplitCounts,
    labels: np.ndarray,
    networks: np.ndarray,
    sizes: dict[str, int],
) -> np.ndarray:
    """The values of one variable from the split's measures (and counts, per network)."""
    name, summary, examples = variable.name, measures["summary"], measures["examples"]
    labelled = labels >= 0
    if variable.kind == "consensus" and name != "consensus_last":
        return _consensus_value(name, summary, sizes)
    if name == "tpa":
        out = np.full((sizes["checkpoints"], labels.size), np.nan)
        out[:, labelled] = examples["tpa"]
        return out
    if name in ("network_accuracy", "network_forgetting"):
        assert counts.verdicts is not None  # the kind is present
        field = "network_count" if name == "network_accuracy" else "network_forgetting"
        return np.asarray(counts.verdicts[field])[networks] / max(int(labelled.sum()), 1)
    if variable.dims == ("examples",):
        return np.asarray(examples[name])
    if variable.dims == ():
        value = summary.get(name)
        return np.asarray(_NAN if value is None else value, np.float64)
    if variable.dims == ("checkpoints",):
        return _floats(summary[name])
    return np.asarray(summary[name])


def split_values(
    selection: StoreSelection,
    split: str,
    groups: Iterable[int],
    measures: dict[str, Any],
    counts: SplitCounts,
) -> dict[str, np.ndarray]:
    """Every variable of the split's Dataset for the networks of ``groups``, as NumPy arrays of
    the catalogue's dims and dtypes, from their :func:`engine.measures.split_measures` and the
    computed counts."""
    groups = list(groups)
    kinds = kinds_present(selection, split, groups, counts)
    sizes = dim_sizes(selection, split, groups)
    networks = np.flatnonzero(selection.networks.networks_in(groups))
    labels = selection.labels[split]
    values = {}
    for variable in VARIABLES.values():
        if variable.kind in kinds:
            value = _value(variable, measures, counts, labels, networks, sizes)
            values[variable.name] = value.astype(variable.dtype, copy=False)
    return values


def coordinates(selection: StoreSelection, split: str, groups: Iterable[int]) -> dict[str, Any]:
    """The coordinates of the split's Dataset: checkpoints (index, ``epoch``, ``step``),
    examples (index, ``example_id``, ``label`` and the metadata columns), networks (id,
    ``group`` name) and ``k``."""
    population = selection.population
    in_groups = selection.networks.networks_in(list(groups))
    networks = np.flatnonzero(in_groups)
    names = np.asarray(selection.networks.group_names, dtype=object)
    table = population.checkpoints
    coords: dict[str, Any] = {
        "checkpoints": ("checkpoints", np.arange(population.num_checkpoints)),
        "epoch": ("checkpoints", selection.epochs),
        "examples": ("examples", np.arange(population.num_examples(split))),
        "example_id": ("examples", population.example_ids(split)),
        "label": ("examples", selection.labels[split]),
        "networks": ("networks", networks),
        "group": ("networks", names[selection.networks.network_group[networks]].astype(str)),
        "k": ("k", np.arange(int(in_groups.sum()) + 1)),
    }
    if "step" in table:
        coords["step"] = ("checkpoints", table["step"].to_numpy(np.int64))
    for column, values in population.example_metadata(split).items():
        coords[metadata_coordinate(str(column))] = ("examples", _metadata_values(values))
    return coords


#: Coordinate names of the examples dim besides the metadata columns.
_EXAMPLE_COORDINATES = frozenset({"examples", "example_id", "label"})
#: Names a metadata column cannot take as a coordinate (those of other dims, variables).
_TAKEN = frozenset({"checkpoints", "epoch", "step", "networks", "group", "k"})


def metadata_coordinate(column: str) -> str:
    """The coordinate of an example-metadata column: its own name, or ``metadata_<name>``
    where a coordinate or variable of the Dataset has it."""
    taken = column in _EXAMPLE_COORDINATES or column in _TAKEN or column in VARIABLES
    return f"metadata_{column}" if taken else column


def _metadata_values(values: Any) -> np.ndarray:
    """A metadata column's values: numbers as stored, text as objects (None where missing)."""
    if values.dtype.kind in "biuf":
        return values.to_numpy()
    return np.asarray([None if v is None or v != v else str(v) for v in values], dtype=object)


def dataset_attrs(selection: StoreSelection, split: str, groups: Iterable[int]) -> dict[str, Any]:
    """The Dataset's own attributes: where it comes from and which networks it pools."""
    names = [selection.networks.group_names[g] for g in groups]
    return {
        "store": str(selection.population.path),
        "split": split,
        "groups": ",".join(names),
        "incomplete_networks_left_out": selection.incomplete,
        # Which checkpoints the accessibility variables average over.
        "accessibility_from": selection.accessibility.rule,
        "accessibility_first_checkpoint": selection.accessibility.start,
        "definitions": "docs/measures.md, docs/python-api.md and docs/outputs.md of Created Equal",
    }


def _variable_attrs(variable: Variable) -> dict[str, Any]:
    from engine.measures import POPULATION_REGIONS

    attrs: dict[str, Any] = dict(variable.attrs)
    if variable.name == "population_region":
        attrs["flag_values"] = list(range(len(POPULATION_REGIONS)))
        attrs["flag_meanings"] = " ".join(POPULATION_REGIONS)
    return attrs


def assemble(
    selection: StoreSelection, split: str, groups: Iterable[int], values: Mapping[str, Any]
) -> xr.Dataset:
    """The Dataset of ``values`` (NumPy or Dask arrays of the catalogue's shapes), with its
    coordinates and attributes."""
    import xarray as xr

    groups = list(groups)
    sizes = dim_sizes(selection, split, groups)
    data = {}
    for name, value in values.items():
        variable = VARIABLES[name]
        shape = tuple(sizes[d] for d in variable.dims)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name}: shape {value.shape}, its dims {variable.dims} say {shape}")
        data[name] = xr.Variable(variable.dims, value, attrs=_variable_attrs(variable))
    return xr.Dataset(
        data,
        coords=coordinates(selection, split, groups),
        attrs=dataset_attrs(selection, split, groups),
    )


def split_dataset(
    selection: StoreSelection,
    split: str,
    group: str | None,
    measures: dict[str, Any],
    counts: SplitCounts,
) -> xr.Dataset:
    """The Dataset of one split (and group, None for every analysed network) from its computed
    measures and counts."""
    groups = group_indices(selection, group)
    return assemble(
        selection, split, groups, split_values(selection, split, groups, measures, counts)
    )


def _split_task(
    selection: StoreSelection,
    split: str,
    verdicts: dict[str, np.ndarray] | None,
    classes: dict[str, np.ndarray] | None,
    soft: dict[str, np.ndarray] | None,
    template: SplitCounts,
) -> dict[str | None, dict[str, np.ndarray]]:
    """The task of one split: its measures from the computed counts, then the values of the
    Dataset of every analysed network (key None) and of each group with networks."""
    import dataclasses

    counts = dataclasses.replace(
        template,
        verdicts=None if verdicts is None else {k: np.asarray(v) for k, v in verdicts.items()},
        classes=None if classes is None else {k: np.asarray(v) for k, v in classes.items()},
        soft=None if soft is None else {k: np.asarray(v) for k, v in soft.items()},
    )
    measures = split_measures_of(selection, {split: counts})[split]
    everyone = group_indices(selection, None)
    values: dict[str | None, dict[str, np.ndarray]] = {
        None: split_values(selection, split, everyone, measures.overall, counts)
    }
    for name, group_measures in measures.groups.items():
        groups = group_indices(selection, name)
        values[name] = split_values(selection, split, groups, group_measures, counts)
    return values


def _pick(values: dict[str | None, dict[str, np.ndarray]], group: str | None, name: str):
    return values[group][name]


def lazy_split_datasets(
    selection: StoreSelection, split: str, counts: SplitCounts, groups: Iterable[str | None]
) -> dict[str | None, xr.Dataset]:
    """Dask-backed Datasets of one split for each of ``groups`` (None: every analysed network)
    from its lazy counts: one task computes the split's measures, every variable is a piece
    of its result."""
    import dask
    import dask.array as da

    token = uuid.uuid4().hex
    task = dask.delayed(_split_task, pure=False)(
        selection,
        split,
        counts.verdicts,
        counts.classes,
        counts.soft,
        dataclasses_template(counts),
        dask_key_name=f"analysis-measures-{split}-{token}",
    )
    datasets = {}
    for group in groups:
        indices = group_indices(selection, group)
        sizes = dim_sizes(selection, split, indices)
        values = {}
        for variable in VARIABLES.values():
            if variable.kind not in kinds_present(selection, split, indices, counts):
                continue
            piece = dask.delayed(_pick, pure=True)(task, group, variable.name)
            values[variable.name] = da.from_delayed(
                piece,
                shape=tuple(sizes[d] for d in variable.dims),
                dtype=np.dtype(variable.dtype),
                name=f"analysis-{variable.name}-{split}-{group}-{token}",
            )
        datasets[group] = assemble(selection, split, indices, values)
    return datasets


def dataclasses_template(counts: SplitCounts) -> SplitCounts:
    """``counts`` without its arrays (what the task needs besides them)."""
    import dataclasses

    return dataclasses.replace(counts, verdicts=None, classes=None, soft=None)


__all__ = [
    "assemble",
    "coordinates",
    "dim_sizes",
    "group_indices",
    "kinds_present",
    "lazy_split_datasets",
    "metadata_coordinate",
    "split_dataset",
    "split_values",
]
