#!/usr/bin/env bash
# Runs the studies of docs/findings.md one at a time, then rebuilds docs/findings.md from what
# the engine wrote.
#
#   examples/run_all.sh          every study, then the findings
#   examples/run_all.sh 1 3      studies 1 and 3 only, then the findings
#
# ENGINE (default: engine) is the command line, PYTHON (default: python) the interpreter of the
# two user scripts, RUNS (default: examples/runs) where stores and results go. A finished store
# is reused on a rerun (the trainer resumes), so rerunning after a crash goes on where it was.
# Each study's body below is quoted verbatim in docs/findings.md as "the exact command".
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-engine}
PYTHON=${PYTHON:-python}
RUNS=${RUNS:-examples/runs}
mkdir -p "$RUNS"

study1() {
  $ENGINE train-population --study examples/study1_digits.toml --out $RUNS/study1_digits.zarr --threads 1 --quiet
  $ENGINE analyze $RUNS/study1_digits.zarr --out $RUNS/study1_digits --pairwise-checkpoints all --no-progress
  $ENGINE train-population --study examples/study1_mnist1d.toml --out $RUNS/study1_mnist1d.zarr --threads 1 --quiet
  $ENGINE analyze $RUNS/study1_mnist1d.zarr --out $RUNS/study1_mnist1d --pairwise-checkpoints all --no-progress
}

study2() {
  $ENGINE train-population --study examples/study2_architectures.toml --out $RUNS/study2.zarr --threads 1 --quiet
  $ENGINE analyze $RUNS/study2.zarr --out $RUNS/study2 --no-progress
}

study3() {
  for vary in init order both; do
    $ENGINE train-population --study examples/study3_vary_$vary.toml --out $RUNS/study3_$vary.zarr --threads 1 --quiet
  done
  $ENGINE compare $RUNS/study3_init.zarr $RUNS/study3_order.zarr $RUNS/study3_both.zarr --out $RUNS/study3 --no-progress
}

study4() {
  $ENGINE train-population --study examples/study4_no_label.toml --out $RUNS/study4.zarr --threads 1 --quiet
  $ENGINE analyze $RUNS/study4.zarr --out $RUNS/study4 --no-progress
}

study5() {
  for data in gaussian gaussian_close teacher small; do
    $ENGINE train-population --study examples/study5_$data.toml --out $RUNS/study5_$data.zarr --threads 1 --quiet
    $ENGINE analyze $RUNS/study5_$data.zarr --out $RUNS/study5_$data --no-progress
  done
  $PYTHON examples/record_forests.py --out $RUNS/study5_forest.zarr --networks 32
  $ENGINE analyze $RUNS/study5_forest.zarr --out $RUNS/study5_forest --no-progress
}

study6() {
  for size in 0.25 0.5 1.0; do
    $ENGINE train-population --study examples/study6_size_$size.toml --out $RUNS/study6_size_$size.zarr --threads 1 --quiet
  done
  $ENGINE compare $RUNS/study6_size_0.25.zarr $RUNS/study6_size_0.5.zarr $RUNS/study6_size_1.0.zarr --out $RUNS/study6_size --no-pairwise --no-progress
  $PYTHON examples/make_noisy_mnist1d.py --out $RUNS/noisy --noise 0 0.2 0.4
  for noise in 0 0.2 0.4; do
    $ENGINE train-population --study examples/study6_noise.toml --data-dir $RUNS/noisy/mnist1d_noise$noise.npz --out $RUNS/study6_noise_$noise.zarr --threads 1 --quiet
    $ENGINE analyze $RUNS/study6_noise_$noise.zarr --out $RUNS/study6_noise_$noise --pairwise-checkpoints none --no-progress
  done
  $ENGINE train-population --study examples/study6_width.toml --out $RUNS/study6_width.zarr --threads 1 --quiet
  $ENGINE analyze $RUNS/study6_width.zarr --out $RUNS/study6_width --pairwise-checkpoints none --no-progress
}

run_study() {
  local start
  start=$(date +%s)
  "study$1"
  # Wall-clock seconds of the whole study (training and analysis), quoted in the findings.
  echo $(($(date +%s) - start)) > "$RUNS/study$1.seconds"
}

studies=("$@")
if [ ${#studies[@]} -eq 0 ]; then studies=(1 2 3 4 5 6); fi
for n in "${studies[@]}"; do
  echo "== study $n"
  run_study "$n"
done
$PYTHON examples/findings.py --runs "$RUNS"
