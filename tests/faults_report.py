"""Run the fault-injection suite and write its table into docs/reliability.md.

    python tests/faults_report.py            # the full suite (CREATED_EQUAL_FAULTS=full)
    python tests/faults_report.py --quick    # the quick version CI runs
    python tests/faults_report.py --log F    # rebuild the table from a log a run left

Every trial of ``tests/test_faults.py`` appends its fault, target and outcome to a log (one JSON
object a line, ``CREATED_EQUAL_FAULT_LOG``); this script runs pytest on the suite with that log,
counts the trials by fault and outcome, and replaces the part of docs/reliability.md between
the markers ``<!-- fault-table:begin -->`` and ``<!-- fault-table:end -->`` with the table, the
command and the pytest summary. A failing suite still writes its table (what was tried before
the failure) and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"


def run_suite(log: Path, full: bool) -> tuple[int, str, float]:
    """Run tests/test_faults.py with its log at ``log``; its exit code, last line, seconds."""
    environment = {**os.environ, "CREATED_EQUAL_FAULT_LOG": str(log)}
    environment.pop("CREATED_EQUAL_FAULTS", None)
    if full:
        environment["CREATED_EQUAL_FAULTS"] = "full"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_faults.py"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode:
        sys.stderr.write(done.stdout[-6000:] + done.stderr[-2000:])
    return done.returncode, (lines[-1] if lines else ""), time.monotonic() - began


def table(trials: list[dict]) -> str:
    """A markdown table: one row per fault and outcome, with the number of trials and the
    targets (arrays, moments, sizes) it was seen on."""
    counts: Counter = Counter()
    targets: dict[tuple[str, str], list[str]] = defaultdict(list)
    for trial in trials:
        key = (trial["fault"], trial["outcome"])
        counts[key] += 1
        targets[key].append(trial["target"])
    rows = ["| fault | trials | outcome | on |", "| --- | ---: | --- | --- |"]
    for (fault, outcome), count in sorted(counts.items()):
        seen = sorted(set(targets[(fault, outcome)]))
        shown = ", ".join(f"`{t}`" if "/" in t or "_" in t else t for t in seen[:12])
        if len(seen) > 12:
            shown += f", and {len(seen) - 12} more"
        rows.append(f"| {fault} | {count} | {outcome} | {shown} |")
    return "\n".join(rows)


def write_doc(trials: list[dict], command: str, summary: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = (
        f"{BEGIN}\n"
        f"Written by `{command}` ({len(trials)} trials; pytest: {summary}).\n\n"
        f"{table(trials)}\n"
        f"{END}"
    )
    DOC.write_text(head + body + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick suite, as CI runs it")
    parser.add_argument("--log", type=Path, help="rebuild the table from this log, run nothing")
    args = parser.parse_args(argv)
    if args.log is not None:
        trials = [json.loads(line) for line in args.log.read_text().splitlines() if line]
        write_doc(trials, f"python tests/faults_report.py --log {args.log}", "not rerun")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "faults.jsonl"
        log.touch()
        code, summary, seconds = run_suite(log, full=not args.quick)
        trials = [json.loads(line) for line in log.read_text().splitlines() if line]
    command = "python tests/faults_report.py" + (" --quick" if args.quick else "")
    write_doc(trials, command, f"{summary}, {seconds:.0f} s wall")
    print(f"{len(trials)} trials, pytest: {summary}; table written to {DOC}")
    return code


if __name__ == "__main__":
    sys.exit(main())
