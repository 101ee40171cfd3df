"""Checks the commands make before any work, and the output folder a failed command removes.

A command checks its flags and its stores here before it reads a chunk or creates a file, so that
bad input ends in one line naming the flag (or the damaged file) and leaves nothing behind:
:func:`cluster_address`, :func:`analysis_device` and :func:`checkpoints` for flags several
commands share,
:func:`store_metadata` for the metadata files of a store, and :func:`output_folder` around the
work, which removes the output folder again where the command created it and failed before
writing anything into it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import typer

#: The subfolder that holds a Zarr v3 array's chunks: no metadata below it, so not walked.
CHUNK_FOLDER = "c"


def cluster_address(value: str | None) -> str | None:
    """``--cluster``'s callback: a Dask scheduler address (``tcp://host:8786``) or a usage error.

    Only the form is checked here (distributed's own parser); whether a scheduler answers there
    is the command's to find out.
    """
    if value is None:
        return None
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(value, strict=False)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except (ValueError, TypeError) as error:
        raise typer.BadParameter(
            f"{value!r} is not a Dask scheduler address such as tcp://host:8786 ({error})"
        ) from None
    return value


def analysis_device(device: str) -> None:
    """``--device`` of the analyses (pairwise measures): ``cpu``, or ``cuda`` where there is one.

    Raises
    ------
    ConfigError
        For another name, or ``cuda`` on a machine without a usable CUDA device.
    """
    from engine.errors import ConfigError

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        from engine.pairwise.inputs import check_device

        check_device(device)


def checkpoints(flag: str, store: str, value: str) -> None:
    """A checkpoints flag (``last``, ``all``, a comma list; ``none`` for the analyses' pairwise
    measures) checked against the store, with the flag named.

    Raises
    ------
    ConfigError
        For another form, or a checkpoint the store does not have.
    """
    from engine.errors import ConfigError
    from engine.pairwise import resolve_checkpoints
    from engine.store import open_population

    if flag == "--pairwise-checkpoints" and value.strip().lower() == "none":
        return
    try:
        resolve_checkpoints(open_population(store), value)
    except ConfigError as error:
        raise ConfigError(f"{flag} {value!r}: {error}") from None


def splits(store: str, names: list[str] | None) -> None:
    """``--split`` checked against the store before the output is looked at, so that a typo
    is named before an existing output folder is.

    Raises
    ------
    StoreError
        For a split the store does not have (or a store that cannot be opened).
    """
    from engine.store import open_population

    population = open_population(store)
    for name in names or []:
        population.require_split(name)


def local_path(flag: str, value: str | os.PathLike) -> None:
    """An output that must be a local folder (training and import write through the file
    system): a URL is refused, since as a path ``s3://b/x`` would quietly become the local
    folder ``s3:/b/x``.

    Raises
    ------
    ConfigError
        For a URL.
    """
    from engine.errors import ConfigError

    text = str(value)
    if "://" in text or text.startswith(("s3:/", "gs:/", "gcs:/", "az:/", "http:/", "https:/")):
        raise ConfigError(
            f"{flag} {text}: this command writes a local folder (or one on a shared file "
            "system), not a URL; write locally, then copy the store"
        )


def store_metadata(store: str | os.PathLike) -> None:
    """Read every ``zarr.json`` of a local store as JSON, so that a damaged one is named.

    Zarr itself reports a truncated metadata file as a bare ``JSONDecodeError`` that names no
    file. Chunk folders are not walked, so this reads a few dozen small files whatever the
    store's size. URLs and missing paths are left to the store's reader.

    Raises
    ------
    StoreError
        Naming the first metadata file that is not a JSON object.
    """
    from engine.errors import StoreError

    root = Path(store)
    if "://" in str(store) or not root.is_dir():
        return
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(s for s in subfolders if s != CHUNK_FOLDER)
        if "zarr.json" not in files:
            continue
        path = Path(folder) / "zarr.json"
        try:
            document = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            reason = (
                f"{error.msg} at line {error.lineno} column {error.colno}"
                if isinstance(error, json.JSONDecodeError)
                else "not UTF-8"
            )
            raise StoreError(
                f"{path} is damaged: not valid JSON ({reason}); the store's metadata "
                "must be restored from a copy"
            ) from None
        except OSError as error:
            raise StoreError(f"cannot read {path}: {error.strerror or error}") from None
        if not isinstance(document, dict):
            raise StoreError(f"{path} is damaged: not a JSON object")


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    made_by: str = "",
    marks: tuple[str, ...] = (),
    flag: str = "--out",
) -> Iterator[None]:
    """Run a command's work into ``path``, which must not hold an earlier output unless
    ``overwrite``; where the work fails, remove ``path`` if the work created it empty.

    An existing file or non-empty folder is refused before any work, naming ``flag``. With
    ``overwrite`` it must look like an output of the command ``made_by`` (a file name in
    ``marks`` inside the folder, or the file's suffix in ``marks``), so that a typo cannot
    remove another folder; it is moved aside while the work runs, removed once the work
    succeeds, and put back where the work fails.

    Raises
    ------
    ConfigError
        Where ``path`` holds something and ``overwrite`` is not given, or holds something no
        ``made_by`` wrote.
    """
    local_path(flag, path)
    folder = Path(path)
    existed = folder.exists()
    aside = _set_aside(folder, overwrite, made_by, marks, flag) if _occupied(folder) else None
    try:
        yield
    except BaseException:
        if aside is not None:
            with contextlib.suppress(OSError):
                _remove(folder)
                aside.rename(folder)
        elif not existed and folder.is_dir():
            with contextlib.suppress(OSError):
                folder.rmdir()  # fails, and so keeps it, unless it is empty
        raise
    if aside is not None:
        _remove(aside)


def _occupied(path: Path) -> bool:
    """Something is there: a file, or a folder with anything in it."""
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def _set_aside(
    path: Path, overwrite: bool, made_by: str, marks: tuple[str, ...], flag: str
) -> Path:
    """Check that ``path`` may be replaced, then move it aside; the new name."""
    from engine.errors import ConfigError

    if not overwrite:
        raise ConfigError(
            f"{flag} {path} already exists and is not overwritten: pass --overwrite to "
            "replace it, or choose another path"
        )
    ours = (
        any((path / mark).exists() for mark in marks)
        if path.is_dir()
        else any(path.name.endswith(mark) for mark in marks)
    )
    if not ours:
        raise ConfigError(
            f"{flag} {path}: it holds something that is not an output of engine {made_by}, so "
            "--overwrite does not remove it; remove it yourself or choose another path"
        )
    aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    _remove(aside)
    path.rename(aside)
    return aside


def _remove(path: Path) -> None:
    """Remove a file or a folder tree, if there."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
