"""The example browser of ``report.html``: the hardest, easiest and most disputed examples of each
labelled split, with the example itself where the store's data set has a picture.

Hardest: lowest accessibility (mean TP-agreement over checkpoints); easiest: highest; most
disputed: TP-agreement at the last checkpoint closest to one half (the networks split most
evenly). Ties go to the first example. A store keeps no inputs, so pictures come from the data
set regenerated or reread as training built it (``engine.train.data``, from the study saved in the
store), and only when the result's fingerprint equals the store's: then the pictures are of the
very examples measured. Where that cannot be done offline the page says why.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.store import Population

#: Examples shown of each kind per split.
BROWSED = 6
KINDS = ("hardest", "easiest", "disputed")
#: Data sets whose inputs the report can rebuild without files: generated or shipped with a
#: library (scikit-learn's digits, the mnist1d package).
REBUILT = ("digits", "mnist1d")
#: Generated data sets of feature vectors: no picture to show.
VECTORS = ("gaussian", "teacher")


@dataclass(frozen=True)
class Picture:
    """An example's input drawn on the page.

    ``kind`` is ``image`` (``pixels``: base64 of uint8 (H, W, C) scaled to 0..255 per example,
    ``shape`` (H, W, C)) or ``sequence`` (``points``: an SVG polyline's points, one line per
    channel, in a 120 x 40 box).
    """

    kind: str
    shape: tuple[int, ...] = ()
    pixels: str = ""
    points: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrowsedExample:
    """One example of the browser.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    index : int
        Its position in the split (the row of ``examples.parquet`` within the split).
    example_id : int
        Its id in the source data set (the store's ``example_ids``).
    label : str
        Its true class, by name.
    accessibility, tpa_last, first_learned : float
        Mean TP-agreement over checkpoints, TP-agreement at the last checkpoint, mean
        checkpoint (index) at which networks first learned it (NaN if none did).
    confidence, variability, aum : float
        Its soft measures (means over networks), NaN without soft verdicts.
    curve : ndarray of float64, dims (checkpoints,)
        Its TP-agreement per checkpoint.
    picture : Picture, optional
    """

    kind: str
    index: int
    example_id: int
    label: str
    accessibility: float
    tpa_last: float
    first_learned: float
    confidence: float
    variability: float
    aum: float
    curve: np.ndarray = field(repr=False)
    picture: Picture | None = None

    @property
    def has_soft(self) -> bool:
        """Its soft measures are known (the split records soft verdicts)."""
        return bool(np.isfinite(self.confidence))


def choose_examples(
    accessibility: np.ndarray, tpa_last: np.ndarray, count: int = BROWSED
) -> dict[str, np.ndarray]:
    """Positions (int64, at most ``count`` each) of the hardest, easiest and most disputed
    examples among those with a finite accessibility.

    Parameters
    ----------
    accessibility, tpa_last : ndarray of float64, dims (examples,)
        NaN for examples without a label.
    """
    accessibility = np.asarray(accessibility, np.float64)
    tpa_last = np.asarray(tpa_last, np.float64)
    valid = np.flatnonzero(np.isfinite(accessibility))
    # Stable sorts: ties go to the first example, so the choice is reproducible.
    hardest = valid[np.argsort(accessibility[valid], kind="stable")]
    easiest = valid[np.argsort(-accessibility[valid], kind="stable")]
    disputed = valid[np.argsort(np.abs(tpa_last[valid] - 0.5), kind="stable")]
    return {
        "hardest": hardest[:count].astype(np.int64),
        "easiest": easiest[:count].astype(np.int64),
        "disputed": disputed[:count].astype(np.int64),
    }


def browse_split(
    examples: Mapping[str, np.ndarray],
    labels: np.ndarray,
    example_ids: np.ndarray,
    class_names: list[str],
    inputs: np.ndarray | None = None,
    count: int = BROWSED,
) -> dict[str, list[BrowsedExample]]:
    """The browser's examples of one split, by kind.

    Parameters
    ----------
    examples : dict of ndarray
        The split's per-example measures (``accessibility``, ``tpa_last``, ``tpa`` (t, x') over
        the labelled examples, and the soft means where present).
    labels : ndarray of int32, dims (examples,)
        -1 where an example has none.
    example_ids : ndarray of int64, dims (examples,)
    class_names : list of str
    inputs : ndarray of float32, dims (examples, ...), optional
        The split's inputs (:func:`split_inputs`), for the pictures.
    """
    accessibility = np.asarray(examples["accessibility"], np.float64)
    chosen = choose_examples(accessibility, examples["tpa_last"], count)
    # ``tpa`` has a column per labelled example: its column of a split position.
    column = np.cumsum(np.isfinite(accessibility)) - 1
    nan = np.full(accessibility.size, np.nan)

    def value(name: str, i: int) -> float:
        return float(np.asarray(examples.get(name, nan))[i])

    browsed = {}
    for kind, positions in chosen.items():
        browsed[kind] = [
            BrowsedExample(
                kind=kind,
                index=int(i),
                example_id=int(example_ids[i]),
                label=_class_name(class_names, int(labels[i])),
                accessibility=value("accessibility", i),
                tpa_last=value("tpa_last", i),
                first_learned=value("first_learned_mean", i),
                confidence=value("confidence_mean", i),
                variability=value("variability_mean", i),
                aum=value("aum_mean", i),
                curve=np.asarray(examples["tpa"], np.float64)[:, column[i]],
                picture=picture(inputs[i]) if inputs is not None else None,
            )
            for i in positions
        ]
    return browsed


def _class_name(class_names: list[str], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else str(label)


# ----------------------------------------------------------------------------------------------
# Pictures


def picture(values: np.ndarray) -> Picture | None:
    """The picture of one input: ``(C, H, W)`` an image (1 or 3 channels), ``(C, L)`` curves;
    None for anything else (feature vectors)."""
    values = np.asarray(values, np.float64)
    if values.ndim == 3 and values.shape[0] in (1, 3):
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        pixels = np.round(255 * np.moveaxis(scaled, 0, -1)).astype(np.uint8)
        return Picture("image", pixels.shape, base64.b64encode(pixels.tobytes()).decode("ascii"))
    if values.ndim == 2 and values.shape[1] > 1:
        low, high = float(values.min()), float(values.max())
        span = high - low if high > low else 1.0
        x = np.linspace(2, 118, values.shape[1])
        lines = tuple(
            " ".join(
                f"{a:.1f},{38 - 36 * (v - low) / span:.1f}" for a, v in zip(x, row, strict=True)
            )
            for row in values
        )
        return Picture("sequence", values.shape, points=lines)
    return None


def split_inputs(
    population: Population, splits: list[str], data_dir: str | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """The inputs of ``splits`` as training built them, or none and why (a sentence).

    Only stores made by ``engine train-population`` say how their data set was built (the
    study in their attributes). ``digits`` and ``mnist1d`` are rebuilt offline; a data set read
    from files needs ``data_dir``, which the store does not keep. The rebuilt data set is used
    only if its fingerprint is the store's.
    """
    from engine.store import dataset_fingerprint

    name = population.attrs["dataset"]["name"]
    config = population.attrs.get("extra", {}).get("train_config")
    if config is None:
        return {}, (
            f"the store's data set ({name}) was not built by engine train-population, so the "
            "report cannot rebuild its inputs: the store keeps verdicts, not examples"
        )
    if name in VECTORS:
        return {}, f"the data set ({name}) is made of feature vectors, which have no picture"
    if name not in REBUILT and data_dir is None:
        return {}, (
            f"the data set ({name}) is read from files whose folder the store does not keep; "
            "engine analyze --data-dir FOLDER shows their pictures"
        )
    try:
        dataset = _rebuilt(config["data"], data_dir)
    except (ConfigError, TypeError, ValueError, KeyError, OSError, ImportError) as error:
        # A study saved by another version, a missing library or file: the report goes on
        # without pictures rather than failing an analysis that is done.
        return {}, f"the data set ({name}) could not be rebuilt here ({error})"
    if dataset_fingerprint(dataset.fingerprints()) != population.dataset_fingerprint:
        return {}, (
            f"the data set ({name}) rebuilt here differs from the one the store was trained on "
            "(fingerprints differ), so no picture is shown"
        )
    return {s: dataset.splits[s].inputs for s in splits if s in dataset.splits}, ""


def _rebuilt(data: Mapping[str, Any], data_dir: str | None):
    """The data set of a study's ``data`` section (engine.train.data, imported here only: it is
    the one place that knows how training built the inputs)."""
    from engine.train.data import DataConfig, load_dataset

    values = dict(data)
    for name in ("holdout_classes", "probes"):
        values[name] = tuple(values.get(name, ()))
    return load_dataset(DataConfig(**values, data_dir=data_dir))


__all__ = [
    "BROWSED",
    "KINDS",
    "BrowsedExample",
    "Picture",
    "browse_split",
    "choose_examples",
    "picture",
    "split_inputs",
]
