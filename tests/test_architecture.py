"""The rules of docs/architecture.md, enforced by reading the source with :mod:`ast`.

Every module under engine/, kernels/ and cli/ is parsed, never imported (except in the last test,
which checks in a subprocess what ``engine --help`` actually loads). Each rule has a test that
builds a small violation in memory and checks the rule catches it, so that none can pass by
accident.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "kernels", "cli")
OURS = frozenset(PACKAGES)
STDLIB = frozenset(sys.stdlib_module_names)

# --- the rules, as tables (keep them in step with docs/architecture.md) ---------------------------

#: The rooms and which other rooms each may import (a room may always import itself). The base
#: modules ``engine.errors`` and ``engine._version`` import nothing of ours.
BASE = frozenset({"engine.errors", "engine._version"})
ARROWS: dict[str, frozenset[str]] = {
    "engine._version": frozenset(),
    "engine.errors": frozenset(),
    "kernels": frozenset(),
    "engine.store": BASE,
    "engine.scheduling": BASE,
    "engine.measures": BASE | {"engine.store", "kernels"},
    "engine.pairwise": BASE | {"engine.store", "kernels"},
    "engine.record": BASE | {"engine.store"},
    "engine.train": BASE | {"engine.store", "engine.scheduling"},
    # engine.train.data only: the labels of a data set the engine knows.
    "engine.importers": BASE | {"engine.store", "engine.train"},
    # The in-memory analyses (Datasets, tables) that the report writes to disk.
    "engine.analysis": BASE | {"engine.measures", "engine.store", "engine.scheduling"},
    # engine.train.data only (engine/report/browser.py): the inputs of the examples shown.
    "engine.report": BASE
    | {
        "engine.analysis",
        "engine.measures",
        "engine.pairwise",
        "engine.store",
        "engine.scheduling",
        "engine.train",
    },
    # engine/__init__.py: the public store, recorder and analysis API
    "engine": BASE | {"engine.store", "engine.record", "engine.analysis"},
    "engine.testing": BASE | {"engine", "engine.store"},
    "cli": BASE
    | {
        "engine",
        "engine.store",
        "engine.analysis",
        "engine.measures",
        "engine.pairwise",
        "engine.report",
        "engine.train",
        "engine.importers",
        "engine.scheduling",
    },
}

#: The only modules that may import torch (anything named torch or torch.*).
TORCH_ALLOWED = (
    "engine.train",
    "engine.pairwise.cuda",
    "engine.importers.runs",
    # The recorder itself takes tensors without importing torch; these evaluate models.
    "engine.record.evaluate",
    "engine.record.lightning",
    "engine.record.transformers",
)

#: What kernels/ may import besides the standard library and itself.
KERNEL_IMPORTS = frozenset({"numpy", "numba", "llvmlite"})

#: What cli/ may import at module level besides the standard library and cli itself: the
#: command-line libraries, and the engine modules light enough for ``engine --help``.
CLI_TOP_LEVEL = frozenset({"typer", "click"})
CLI_LIGHT_ENGINE = {
    "engine._version": "engine --version prints it; one string, and engine/__init__.py is lazy",
}

#: The names through which a class reaches its own private attributes.
OWN_OBJECTS = frozenset({"self", "cls"})

#: Lines of code (no docstring, blank or comment lines) above which a function says why.
LONG_FUNCTION = 80

#: Private names that a module may use from another, with the reason.
PRIVATE_ALLOWED = {
    ("*", "engine._version"): "the version, kept in a module of its own for the CLI",
    ("engine.pairwise.cuda", "torch._int_mm"): (
        "torch's only int8 x int8 -> int32 matrix product (exact on tensor cores); no public "
        "equivalent, and a float64 product takes over if it is missing or refuses the shapes"
    ),
}


# --- reading the source -----------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One thing a module imports: ``import target`` or ``from target import name``."""

    module: str  # the importing module
    target: str  # the module imported, or the one a name is taken from
    name: str | None  # for ``from target import name``
    line: int
    lazy: bool  # inside a function body
    typing_only: bool  # inside ``if TYPE_CHECKING:``, never run
    binds: tuple[str, str] | None = None  # (local name, what it names), if it binds one

    @property
    def full(self) -> str:
        """``target.name`` (the thing taken), or ``target``."""
        return f"{self.target}.{self.name}" if self.name else self.target

    def __str__(self) -> str:
        what = f"from {self.target} import {self.name}" if self.name else f"import {self.target}"
        return f"{self.module}:{self.line}: {what}"


@dataclass(frozen=True)
class Module:
    name: str
    is_package: bool
    tree: ast.Module
    source: str = ""

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def module_name(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    """The dotted name of the module at ``path``, and whether it is a package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def parse_modules(root: Path = ROOT) -> dict[str, Module]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name, is_package = module_name(path, root)
            source = path.read_text(encoding="utf-8")
            modules[name] = Module(name, is_package, ast.parse(source, str(path)), source)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("x")`` or ``__import__("x")``, when literal."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called in ("import_module", "__import__") and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def imports_of(module: Module) -> list[Import]:
    found: list[Import] = []

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.package.split(".")
        base = base[: len(base) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, lazy: bool, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds a (to a); `import a.b as c` binds c (to a.b).
                if alias.asname:
                    binds = (alias.asname, alias.name)
                else:
                    binds = (alias.name.split(".")[0],) * 2
                found.append(
                    Import(module.name, alias.name, None, node.lineno, lazy, typing_only, binds)
                )
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node)
            for alias in node.names:
                binds = (alias.asname or alias.name, f"{target}.{alias.name}")
                found.append(
                    Import(module.name, target, alias.name, node.lineno, lazy, typing_only, binds)
                )
        elif isinstance(node, ast.Call) and (target := _dynamic_import(node)):
            found.append(Import(module.name, target, None, node.lineno, lazy, typing_only))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, lazy, True)
            for child in node.orelse:
                visit(child, lazy, typing_only)
            return
        inside = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inside, typing_only)

    visit(module.tree, False, False)
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_allowed(module: str, thing: str) -> bool:
    return any(
        (where in ("*", module)) and (thing == allowed or thing.startswith(allowed + "."))
        for where, allowed in PRIVATE_ALLOWED
    )


def _own_private_module(module: Module, thing: str, modules: dict[str, Module]) -> bool:
    """A private module used inside its own package (kernels._jit by kernels.agreement)."""
    parts = thing.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            prefix = ".".join(parts[: i + 1])
            parent = ".".join(parts[:i])
            inside = module.name == parent or module.name.startswith(parent + ".")
            return prefix in modules and inside and not any(_private(p) for p in parts[i + 1 :])
    return False


def _bindings(module: Module) -> dict[str, str]:
    """Local name -> what it is bound to, for every import of the module."""
    return dict(item.binds for item in imports_of(module) if item.binds)


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


# --- the rules --------------------------------------------------------------------------------


def private_name_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(a) No module takes another module's private names, by import or by attribute."""
    for module in modules.values():
        for item in imports_of(module):
            thing = item.full
            parts = thing.split(".")
            if any(_private(part) for part in parts) and not (
                _private_allowed(module.name, thing) or _own_private_module(module, thing, modules)
            ):
                yield f"{item} (a private name)"
        bound = _bindings(module)
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain = _dotted(node)
            if chain is not None and chain[0] in OWN_OBJECTS:
                continue
            if chain is not None and chain[0] in bound:
                thing = ".".join([bound[chain[0]], *chain[1:]])
                what = f"a private attribute of {thing}"
            else:
                thing = ast.unparse(node)
                what = "a private attribute of an object not self or cls"
            if not _private_allowed(module.name, thing):
                yield f"{module.name}:{node.lineno}: {ast.unparse(node)} ({what})"


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def torch_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(b) torch only under engine/train/ and in engine/pairwise/cuda.py."""
    for module in modules.values():
        if any(_in(module.name, allowed) for allowed in TORCH_ALLOWED):
            continue
        for item in imports_of(module):
            if item.target.split(".")[0] == "torch":
                yield f"{item} (torch outside {', '.join(TORCH_ALLOWED)})"


def kernel_import_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(c) kernels/ imports numpy, numba, llvmlite, the standard library and itself only."""
    for module in modules.values():
        if not _in(module.name, "kernels"):
            continue
        for item in imports_of(module):
            top = item.target.split(".")[0]
            if top not in KERNEL_IMPORTS | STDLIB | {"kernels"}:
                yield f"{item} (kernels import only {', '.join(sorted(KERNEL_IMPORTS))})"


def room_of(module: str) -> str:
    """The room a module of ours belongs to: a key of :data:`ARROWS`."""
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) == 1:
        return parts[0]
    return f"engine.{parts[1]}"


def arrow_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(d) A room imports only itself and the rooms its row of :data:`ARROWS` names."""
    for module in modules.values():
        source = room_of(module.name)
        if source not in ARROWS:
            yield f"{module.name}: room {source} has no row in ARROWS (nor in the doc)"
            continue
        for item in imports_of(module):
            if item.target.split(".")[0] not in OURS:
                continue
            # `from engine import store` takes the subpackage engine.store.
            target = item.full if item.name and item.full in modules else item.target
            room = room_of(target)
            if room != source and room not in ARROWS[source]:
                yield f"{item} ({source} -> {room} is not an allowed arrow)"


def cli_eager_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(e) cli/ imports the engine (and anything heavy) only inside function bodies."""
    for module in modules.values():
        if not _in(module.name, "cli"):
            continue
        for item in imports_of(module):
            if item.lazy or item.typing_only:
                continue
            top = item.target.split(".")[0]
            target = item.full if item.name and item.full in modules else item.target
            if top in STDLIB | CLI_TOP_LEVEL | {"cli"} or target in CLI_LIGHT_ENGINE:
                continue
            yield f"{item} (cli imports this at module level; import it in the command body)"


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """Lines of code of a function: decorators to its end, less docstring, blanks and comments."""
    docstring: set[int] = set()
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            docstring = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    start = min([function.lineno, *(d.lineno for d in function.decorator_list)])
    return sum(
        1
        for number in range(start, (function.end_lineno or start) + 1)
        if number not in docstring
        and lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
    )


def long_function_violations(modules: dict[str, Module]) -> Iterator[str]:
    """(f) A function over LONG_FUNCTION lines of code says in its docstring why it is long."""
    for module in modules.values():
        lines = module.source.splitlines()
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = code_lines(node, lines)
            if length > LONG_FUNCTION and "long" not in (ast.get_docstring(node) or "").lower():
                yield (
                    f"{module.name}:{node.lineno}: {node.name} has {length} lines of code; split "
                    "it into named steps or say in its docstring why it is long"
                )


RULES = {
    "private": private_name_violations,
    "torch": torch_violations,
    "kernels": kernel_import_violations,
    "arrows": arrow_violations,
    "cli": cli_eager_violations,
    "long": long_function_violations,
}


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return parse_modules()


@pytest.mark.parametrize("rule", RULES)
def test_rule_holds(modules, rule):
    violations = list(RULES[rule](modules))
    assert not violations, "\n".join(violations)


def test_modules_are_found(modules):
    assert {"engine", "engine.store.format", "kernels._jit", "cli.app"} <= set(modules)
    assert all(imports_of(modules[name]) for name in ("engine.store.reader", "cli.app"))


def test_every_room_is_in_the_doc():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for room in ARROWS:
        path = room.replace(".", "/")
        assert f"`{room}`" in doc or f"{path}/" in doc or f"{path}.py" in doc, room


# --- each rule can fail ---------------------------------------------------------------------------


def _with(modules: dict[str, Module], name: str, source: str, is_package: bool = False):
    """The modules plus (or with a replaced) ``name`` whose text is ``source``."""
    return {**modules, name: Module(name, is_package, ast.parse(source), source)}


VIOLATIONS = [
    ("private", "engine.report.run", "from engine.store.format import _read_chunk\n"),
    ("private", "engine.report.run", "from engine.store import format\nformat._read_chunk(1)\n"),
    ("private", "engine.report.run", "import engine.store\nengine.store.format._NAN\n"),
    ("private", "engine.report.run", "from engine.store import Population\nPopulation._x\n"),
    ("private", "engine.report.run", "from kernels._jit import kernel\n"),
    ("private", "engine.report.run", "import zarr.core._info\n"),
    ("private", "engine.train.loop", "import torch\ntorch._int_mm(a, b)\n"),
    ("private", "engine.report.run", "def f(population):\n    return population._root\n"),
    ("private", "engine.report.run", "open_population(path)._read()\n"),
    ("torch", "engine.measures.graphs", "def f():\n    import torch\n"),
    ("torch", "engine.store.reader", "if TYPE_CHECKING:\n    import torch.nn\n"),
    ("torch", "cli.app", "import importlib\nimportlib.import_module('torch')\n"),
    ("kernels", "kernels.agreement", "import dask.array\n"),
    ("kernels", "kernels.learning", "def f():\n    from engine.errors import ConfigError\n"),
    ("arrows", "engine.store.reader", "from engine.measures import spearman\n"),
    ("arrows", "engine.measures.graphs", "from engine import report\n"),
    ("arrows", "engine.pairwise.api", "from engine.report.tables import write_tables\n"),
    ("arrows", "engine.train.loop", "from ..pairwise import pairwise_report\n"),
    ("arrows", "engine.newroom", "x = 1\n"),
    ("arrows", "cli.app", "def f():\n    from kernels.agreement import poisson_binomial\n"),
    ("cli", "cli.app", "from engine.errors import EngineError\n"),
    ("cli", "cli.store_commands", "import numpy as np\n"),
    ("cli", "cli.options", "from engine.store import open_population\n"),
    ("long", "engine.scheduling", 'def f():\n    """Short."""\n' + "    x = 1\n" * 81),
]


@pytest.mark.parametrize(("rule", "name", "source"), VIOLATIONS)
def test_each_rule_catches_a_violation(modules, rule, name, source):
    broken = _with(modules, name, source)
    assert list(RULES[rule](broken)), f"rule {rule} missed:\n{source}"


ALLOWED = [
    ("private", "kernels.learning", "from kernels._jit import kernel\n"),
    ("private", "cli.app", "from engine._version import __version__\nx.__class__\n"),
    ("torch", "engine.train.data", "import torch\n"),
    ("arrows", "engine.report.run", "from engine.pairwise import pairwise_report\n"),
    ("arrows", "engine.train.cluster", "from ..scheduling import dask_scheduler\n"),
    ("cli", "cli.app", "import sys\nimport typer\ndef f():\n    import numpy\n"),
    ("cli", "cli.app", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import engine\n"),
    ("long", "engine.scheduling", 'def f():\n    """Long: why."""\n' + "    x = 1\n" * 81),
    ("long", "engine.scheduling", "def f():\n" + "    # why\n\n" * 50 + "    x = 1\n" * 79),
]


@pytest.mark.parametrize(("rule", "name", "source"), ALLOWED)
def test_rules_allow_what_the_doc_allows(modules, rule, name, source):
    assert not list(RULES[rule](_with(modules, name, source)))


# --- what the rules are for ---------------------------------------------------------------------


def test_engine_help_loads_nothing_heavy():
    """Importing the CLI app (what ``engine --help`` does) loads no array or ML library."""
    heavy = ("numpy", "zarr", "dask", "distributed", "numba", "pandas", "torch", "matplotlib")
    code = (
        "import sys, cli.app\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not loaded, f"`import cli.app` loads {loaded}"
