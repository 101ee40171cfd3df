"""Time what the command line costs before any work, and the verdict pass with the count that
lets accessibility leave an initialisation checkpoint out.

    python benchmarks/bench_cli.py [--baseline-root /work/main] [--smoke]

1. Start-up: ``python -c pass`` (the baseline: the interpreter alone), ``import cli.app``,
   ``engine --help`` and ``engine analyze --help``, each the median of several fresh
   processes; the ratio to the bare interpreter says what the CLI adds.
2. The verdict pass (``verdict_statistics`` computed on the threads scheduler, best of 3) of a
   simulated store by this tree and by ``--baseline-root`` (another checkout, e.g. one without
   the ``half_first`` count), in child processes on the same store in the same run; without
   ``--baseline-root`` the baseline is this tree again (the ratio is then noise).

Prints one JSON line per measurement. ``--smoke`` uses 3 runs and a tiny store, for the tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STARTUPS = {
    "python -c pass": ["-c", "pass"],
    "import cli.app": ["-c", "import cli.app"],
    "engine --help": ["-m", "cli.app", "--help"],
    "engine analyze --help": ["-m", "cli.app", "analyze", "--help"],
}

#: Child code of the verdict pass: the store path is argv[1]; prints the best time in seconds.
VERDICT_PASS = """
import sys, time, dask
from engine.store import open_population
from engine.measures import select_networks, verdict_statistics
population = open_population(sys.argv[1])
selection = select_networks(population)
best = float("inf")
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    dask.compute(verdict_statistics(population, "test", selection), scheduler="threads")
    best = min(best, time.perf_counter() - started)
print(best)
"""


def _seconds(arguments: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *arguments], cwd=cwd, check=True, capture_output=True, timeout=120
    )
    return time.perf_counter() - started


def startup(runs: int) -> None:
    """Median wall time of each start-up, and its ratio to the bare interpreter."""
    medians = {}
    for name, arguments in STARTUPS.items():
        _seconds(arguments, ROOT)  # warm the file cache and __pycache__
        medians[name] = statistics.median(_seconds(arguments, ROOT) for _ in range(runs))
    base = medians["python -c pass"]
    for name, seconds in medians.items():
        print(json.dumps({"startup": name, "seconds": round(seconds, 4), "ratio": seconds / base}))


def verdict_pass(store: Path, baseline_root: Path, repeats: int) -> None:
    """The verdict pass of this tree against the baseline tree's, on one store."""
    times = {}
    for label, root in (("this tree", ROOT), ("baseline", baseline_root)):
        completed = subprocess.run(
            [sys.executable, "-c", VERDICT_PASS, str(store), str(repeats)],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        times[label] = float(completed.stdout.split()[-1])
    print(
        json.dumps(
            {
                "verdict_pass": str(baseline_root),
                "seconds": times["this tree"],
                "baseline_seconds": times["baseline"],
                "ratio": times["this tree"] / times["baseline"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-root", type=Path, default=ROOT)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.testing import simulate_population

    startup(3 if args.smoke else 9)
    networks, checkpoints, examples = (16, 4, 300) if args.smoke else (256, 20, 20_000)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "bench_cli.zarr"
        simulate_population(
            store, networks=networks, checkpoints=checkpoints, splits={"test": examples}, seed=0
        )
        print(json.dumps({"store": [networks, checkpoints, examples]}))
        verdict_pass(store, args.baseline_root.resolve(), 1 if args.smoke else 3)


if __name__ == "__main__":
    main()
