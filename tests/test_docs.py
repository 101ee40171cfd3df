"""Documentation that runs: every fenced code block of README.md and docs/ is run or marked.

- ```python blocks run in order, the blocks of one file in one namespace, in a temporary folder;
- ```bash, ```sh, ```console and ```shell blocks: each line is an ``engine ...`` command (a
  trailing ``\\`` continues it; ``#`` starts a comment), run in-process by ``cli.app.main`` and
  expected to exit 0, or the status its comment gives as ``exit status N``;
- ```toml blocks are parsed, and loaded as a study where they define groups; ```json parsed;
- ```text blocks (schemas, trees, output samples) are not run.

A block preceded by ``<!-- not-run: reason -->`` is not run (a GPU, a cluster, a full-size
study); one preceded by ``<!-- reduced: reason -->`` runs with the reductions of
:data:`REDUCED` (the doc says so in the reason). Any other block, one without a language
included, fails :func:`test_every_block_is_run_or_marked`, so that nothing rots silently.

The inputs the docs name (``pop.zarr``, ``logits.npy``, ``runs/``, ...) are made on first use by
:data:`FIXTURES`, small, unless an earlier block of the same file made them.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

SHELL = frozenset({"bash", "sh", "console", "shell"})
RUN = SHELL | {"python"}
DATA = frozenset({"toml", "json"})
TEXT = frozenset({"text"})

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^`\s]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|reduced):\s*(?P<reason>.*?)\s*-->\s*$")
EXIT = re.compile(r"exit status (\d+)")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its code (dedented) and its marker."""

    path: Path
    line: int
    language: str
    code: str
    marker: str | None = None  # "not-run" or "reduced"
    reason: str = ""

    def __str__(self) -> str:
        return (
            f"{self.path.relative_to(ROOT) if self.path.is_absolute() else self.path}:{self.line}"
        )


def blocks(text: str, path: Path = Path("doc.md")) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the marker on the nearest non-blank
    line before its opening fence."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        code = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : j])
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = MARKER.match(lines[k]) if k >= 0 else None
        found.append(
            Block(
                path,
                i + 1,
                opening["info"].lower(),
                code + "\n",
                marker["kind"] if marker else None,
                marker["reason"] if marker else "",
            )
        )
        i = j + 1
    return found


def problems(block: Block) -> Iterator[str]:
    """Why a block can rot unseen: no language, an unknown one, a marker without a reason."""
    if block.marker is not None and not block.reason:
        yield f"{block}: a {block.marker} marker needs a reason"
    if block.marker == "not-run":
        return
    if not block.language:
        yield (
            f"{block}: a code block without a language: write ```text for a sample or a schema, "
            "or put <!-- not-run: reason --> before it"
        )
    elif block.language not in RUN | DATA | TEXT:
        yield (
            f"{block}: ```{block.language} is neither run nor known as text "
            f"({', '.join(sorted(RUN | DATA | TEXT))}); mark it <!-- not-run: reason -->"
        )
    elif block.marker == "reduced" and block.language not in SHELL:
        yield f"{block}: only shell blocks are reduced"


def all_blocks() -> list[Block]:
    return [block for path in DOCS for block in blocks(path.read_text(), path)]


# ----------------------------------------------------------------------------------------------
# The checker checks


def test_the_parser_finds_fences_languages_and_markers():
    text = (
        "# Doc\n\n```python\nx = 1\n```\n\n<!-- not-run: needs a GPU -->\n\n"
        "```bash\nengine pairwise p.zarr --device cuda\n```\n\n"
        "1. a step:\n\n   ```bash\n   engine info p.zarr\n   ```\n\n```\ntree\n```\n"
        "<!-- reduced: smaller -->\n```toml\na = 1\n```\n"
    )
    found = blocks(text)
    assert [(b.line, b.language, b.marker) for b in found] == [
        (3, "python", None),
        (9, "bash", "not-run"),
        (15, "bash", None),
        (19, "", None),
        (23, "toml", "reduced"),
    ]
    assert found[0].code == "x = 1\n" and found[2].code == "engine info p.zarr\n"
    assert found[1].reason == "needs a GPU"
    assert [len(list(problems(b))) for b in found] == [0, 0, 0, 1, 1]
    assert list(problems(Block(Path("d.md"), 1, "yaml", "a: 1\n")))  # unknown language
    assert not list(problems(Block(Path("d.md"), 1, "yaml", "a: 1\n", "not-run", "why")))
    assert list(problems(Block(Path("d.md"), 1, "yaml", "a: 1\n", "not-run", "")))


def test_every_block_is_run_or_marked():
    found = all_blocks()
    assert len(found) > 20  # README and docs/ were read
    wrong = [problem for block in found for problem in problems(block)]
    assert not wrong, "\n".join(wrong)


def test_shell_lines_are_engine_commands():
    assert commands(
        "engine info a.zarr  # splits\n\nengine merge a.zarr \\\n  b.zarr -o c.zarr\n"
    ) == [
        (["info", "a.zarr"], 0),
        (["merge", "a.zarr", "b.zarr", "-o", "c.zarr"], 0),
    ]
    assert commands("engine info bad.zarr   # exit status 1\n") == [(["info", "bad.zarr"], 1)]
    console = "$ engine info a.zarr\na.zarr: 8 networks\n$ engine info b.zarr  # exit status 1\n"
    assert commands(console, console=True) == [(["info", "a.zarr"], 0), (["info", "b.zarr"], 1)]
    with pytest.raises(AssertionError, match="only engine commands"):
        commands("dask scheduler\n")
    with pytest.raises(AssertionError, match="only engine commands"):
        commands("for a in 1 2; do engine info $a; done\n")


# ----------------------------------------------------------------------------------------------
# Running blocks


def commands(code: str, console: bool = False) -> list[tuple[list[str], int]]:
    """The engine command lines of a shell block: arguments after ``engine``, expected status.
    In a ``console`` block only the lines after a ``$`` prompt are commands (the rest is their
    output)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    if console:
        joined = "\n".join(
            line.lstrip().removeprefix("$ ")
            for line in joined.splitlines()
            if line.lstrip().startswith("$ ")
        )
    found = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        comment = line.split(" #", 1)[1] if " #" in line else ""
        words = shlex.split(line, comments=True)
        plain = all(not set(word) & set(";|&$<>`") for word in words)
        assert words[:1] == ["engine"] and plain, (
            f"only engine commands run in a shell block (not {line.strip()!r}); "
            "mark the block <!-- not-run: reason -->"
        )
        status = EXIT.search(comment)
        found.append((words[1:], int(status.group(1)) if status else 0))
    return found


#: Output flags: their values are what a command makes, never a fixture to make first.
OUTPUT_FLAGS = frozenset({"--out", "-o", "--output"})


def _reduced_quickstart(monkeypatch: pytest.MonkeyPatch) -> None:
    """engine quickstart with 4 networks a group and 1 epoch (as tests/test_train_cli.py)."""
    import cli.train_commands as commands

    small = re.sub(r"epochs = \d+", "epochs = 1", commands.QUICKSTART_STUDY)
    monkeypatch.setattr(
        commands, "QUICKSTART_STUDY", re.sub(r"networks = \d+", "networks = 4", small)
    )


#: Commands too slow to run as documented, and how a block marked ``reduced`` runs them.
REDUCED: dict[str, Callable[[pytest.MonkeyPatch], None]] = {"quickstart": _reduced_quickstart}


class Runner:
    """Runs one doc file's blocks in order in one folder, making fixtures on first use."""

    def __init__(self, folder: Path, capsys, monkeypatch: pytest.MonkeyPatch):
        self.folder, self.capsys, self.monkeypatch = folder, capsys, monkeypatch
        self.namespace: dict = {"__name__": "__doc__"}

    def fixtures(self, names: list[str], python: bool) -> None:
        for name in names:
            key = name.rstrip("/")
            fixture = FIXTURES.get(key)
            if fixture is None or (python and key in PYTHON_WRITES):
                continue
            if not (self.folder / key).exists():
                fixture(self.folder / key)

    def run(self, block: Block) -> None:
        if block.language == "python":
            self.python(block)
        elif block.language in SHELL:
            self.shell(block)
        elif block.language == "toml":
            self.toml(block)
        elif block.language == "json":
            json.loads(block.code)

    def python(self, block: Block) -> None:
        tree = ast.parse(block.code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    module = (node.module if isinstance(node, ast.ImportFrom) else alias.name) or ""
                    if module.split(".")[0] in OPTIONAL and not importlib.util.find_spec(
                        module.split(".")[0]
                    ):
                        pytest.skip(f"{block}: {module} is not installed (an optional extra)")
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        self.fixtures([s for s in strings if isinstance(s, str)], python=True)
        exec(compile(tree, str(block), "exec"), self.namespace)

    def shell(self, block: Block) -> None:
        from cli.app import main

        for args, expected in commands(block.code, console=block.language == "console"):
            if args and args[0] in REDUCED:
                assert block.marker == "reduced", (
                    f"{block}: engine {args[0]} is run reduced: say so before the block with "
                    "<!-- reduced: reason -->"
                )
                REDUCED[args[0]](self.monkeypatch)
            outputs = {args[i + 1] for i, a in enumerate(args[:-1]) if a in OUTPUT_FLAGS}
            self.fixtures([a for a in args if a not in outputs], python=False)
            status = main(args)
            captured = self.capsys.readouterr()
            assert status == expected, (
                f"{block}: engine {shlex.join(args)} exited {status}, not {expected}:\n"
                f"{captured.err[-2000:]}"
            )

    def toml(self, block: Block) -> None:
        data = tomllib.loads(block.code)
        if "groups" in data:
            from engine.train import load_study

            path = self.folder / f"block{block.line}.toml"
            path.write_text(block.code)
            load_study(path)


def test_a_block_that_fails_fails_its_doc(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = Runner(tmp_path, capsys, monkeypatch)
    text = "```bash\nengine info missing.zarr\n```\n```python\nundefined_name\n```\n"
    shell, python = blocks(text)
    with pytest.raises(AssertionError, match="exited 1, not 0"):
        runner.run(shell)
    runner.run(Block(shell.path, 1, "bash", "engine info missing.zarr  # exit status 1\n"))
    with pytest.raises(NameError):
        runner.run(python)
    runner.run(Block(shell.path, 1, "bash", "engine info pop.zarr\n"))  # made on first use
    assert (tmp_path / "pop.zarr").exists()


#: Modules of the optional extras: a block importing one is skipped where it is absent.
OPTIONAL = frozenset({"lightning", "pytorch_lightning", "transformers", "accelerate"})


def runnable(path: Path) -> bool:
    return any(
        b.marker != "not-run" and b.language in RUN | DATA for b in blocks(path.read_text(), path)
    )


@pytest.mark.slow
# Lightning 2.6 on torch 2.13 builds its data loaders with torch's deprecated pytree LeafSpec,
# and warns that a CPU data loader without worker processes may be slow: neither is ours (as in
# tests/test_record_callbacks.py).
@pytest.mark.filterwarnings(r"ignore:.*isinstance\(treespec, LeafSpec\).*:FutureWarning")
@pytest.mark.filterwarnings(r"ignore:.*does not have many workers.*")
@pytest.mark.parametrize(
    "doc", [p for p in DOCS if runnable(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_doc_runs(doc: Path, tmp_path, capsys, monkeypatch):
    import torch

    # Tiny models on a shared CPU: one thread is many times faster than several that spin.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    try:
        _run_doc(doc, tmp_path, capsys, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _run_doc(doc: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(tmp_path, capsys, monkeypatch)
    for block in blocks(doc.read_text(), doc):
        if block.marker != "not-run":
            runner.run(block)


# ----------------------------------------------------------------------------------------------
# Fixtures: small versions of the inputs the docs name


def _store(path: Path, **options) -> None:
    from engine.testing import simulate_population

    settings = dict(networks=8, checkpoints=4, splits={"train": 120, "test": 60}, predictions=True)
    simulate_population(path, **(settings | options))


def _labels(path: Path) -> None:
    np.save(path, np.random.default_rng(1).integers(0, 10, EXAMPLES))


def _logits(path: Path) -> None:
    """(networks, examples, classes) float16 logits of a final checkpoint."""
    np.save(path, _logit_values())


EXAMPLES, CLASSES, NETWORKS = 60, 10, 6


def _logit_values(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.random.default_rng(1).integers(0, CLASSES, EXAMPLES)
    logits = rng.standard_normal((NETWORKS, EXAMPLES, CLASSES))
    logits[:, np.arange(EXAMPLES), labels] += 1.5  # better than chance
    return logits.astype(np.float16)


def _runs(folder: Path) -> None:
    """A folder of one .npy of (examples, classes) logits per run."""
    folder.mkdir(parents=True)
    for n, logits in enumerate(_logit_values()):
        np.save(folder / f"run{n}.npy", logits)


def _datamodels(folder: Path) -> None:
    """The datamodels writer's layout: a memmap per key and ``_completed.npy``."""
    folder.mkdir(parents=True)
    logits = _logit_values()
    np.save(folder / "logits.npy", logits)
    np.save(folder / "masks.npy", np.random.default_rng(3).random(logits.shape[:2]) < 0.5)
    np.save(folder / "_completed.npy", np.ones(len(logits), bool))


def _trials(folder: Path) -> None:
    """model-vs-human raw data: one CSV of trials per observer."""
    import pandas as pd

    rng = np.random.default_rng(4)
    categories = ["airplane", "bear", "bicycle", "bird"]
    truth = rng.choice(categories, 12)
    folder.mkdir(parents=True)
    for subject in range(3):
        rows = [
            {
                "subj": f"subject-{subject:02d}",
                "session": 1,
                "trial": trial + 1,
                "rt": 500.0,
                "object_response": truth[image] if rng.random() < 0.7 else "bear",
                "category": truth[image],
                "condition": "0",
                "imagename": f"{image:04d}_cl_0_{truth[image]}.png",
            }
            for trial, image in enumerate(rng.permutation(12))
        ]
        pd.DataFrame(rows).to_csv(folder / f"colour_subject-{subject:02d}.csv", index=False)


TINY_STUDY = """\
epochs = 2
seed = 0
network_block = 1

[data]
name = "digits"

[[groups]]
name = "mlp"
arch = "mlp"
width = 16
networks = 4
"""

#: The inputs the docs name, each made small where a block needs it and it does not exist.
FIXTURES: dict[str, Callable[[Path], None]] = {
    "pop.zarr": lambda path: _store(path, soft=True),
    "mlp.zarr": _store,
    "cnn.zarr": lambda path: _store(path, groups=2),  # same examples, other networks
    "a.zarr": lambda path: _store(path, networks=4),
    "b.zarr": lambda path: _store(path, networks=6),
    "runs.zarr": lambda path: _store(path, networks=4, network_block=1),
    "runs/mnist1d.zarr": lambda path: _store(path, checkpoints=10),
    "runs/cnn.zarr": lambda path: _store(path, checkpoints=10, groups=2),
    "study.toml": lambda path: path.write_text(TINY_STUDY),
    "logits.npy": _logits,
    "labels.npy": _labels,
    "train_labels.npy": _labels,
    "runs": _runs,
    "datamodels_out": _datamodels,
    "raw-data/colour": _trials,
}
#: Fixture names that a Python block of the docs writes itself (docs/recording.md's
#: ``open_recorder("runs.zarr", ...)``): never made before a Python block.
PYTHON_WRITES = frozenset({"runs.zarr"})
