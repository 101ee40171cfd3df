"""The size of report.html against the number of networks (issue 13: the page stays bounded).

For each N, a simulated store (two groups, soft verdicts, a train and a test split) is analysed
without pairwise measures (they are quadratic in N and their figures are PNGs binned by
engine.pairwise), and the page is measured: its bytes, its bytes without the embedded PNG data
(what engine/report/ writes itself: sentences, tables, the chart specifications, the browser,
the inlined style and script) and the bytes of the chart specifications alone. One JSON line
per N.

    python benchmarks/report_size.py --networks 4000,100000 --dir /tmp/report_size
    python benchmarks/report_size.py --smoke
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script from anywhere: the engine of this checkout, not an installed one.
sys.path.insert(0, str(ROOT))

from engine.report import analyze_store  # noqa: E402
from engine.testing import simulate_population  # noqa: E402


def measure(networks: int, folder: Path, train: int, test: int, checkpoints: int) -> dict:
    started = time.perf_counter()
    store = simulate_population(
        folder / f"pop{networks}.zarr",
        networks=networks,
        checkpoints=checkpoints,
        splits={"train": train, "test": test},
        groups=2,
        soft=True,
        seed=11,
        network_block=min(2048, networks),
    )
    simulated = time.perf_counter() - started
    started = time.perf_counter()
    report = analyze_store(
        store.path, folder / f"out{networks}", pairwise_checkpoints="none", progress=False
    )
    analysed = time.perf_counter() - started
    text = report.read_text(encoding="utf-8")
    charts = re.findall(r"<script type='application/json'>(.*?)</script>", text, re.S)
    built = re.search(r"interactive figures and browser built in</th><td>([\d.]+) s", text)
    shutil.rmtree(folder / f"pop{networks}.zarr")
    return {
        "networks": networks,
        "examples": train + test,
        "checkpoints": checkpoints,
        "page_bytes": len(text.encode()),
        "page_bytes_without_png": len(re.sub(r"base64,[A-Za-z0-9+/=]+", "", text).encode()),
        "chart_bytes": sum(len(c.encode()) for c in charts),
        "charts": len(charts),
        "simulate_seconds": round(simulated, 2),
        "analyze_seconds": round(analysed, 2),
        "page_parts_seconds": float(built[1]) if built else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="4000,100000", help="comma list of N")
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--checkpoints", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    parser.add_argument("--smoke", action="store_true", help="N = 60, 240 on 80 examples")
    args = parser.parse_args()
    sizes = [60, 240] if args.smoke else [int(n) for n in args.networks.split(",")]
    train, test = (60, 20) if args.smoke else (args.train, args.test)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="report_size"))
    folder.mkdir(parents=True, exist_ok=True)
    for networks in sizes:
        print(json.dumps(measure(networks, folder, train, test, args.checkpoints)), flush=True)


if __name__ == "__main__":
    main()
