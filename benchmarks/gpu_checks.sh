#!/usr/bin/env bash
# Every GPU check of issue 16 in one run (<= 6 minutes on a lent H100/H200), one JSON file of
# results: $OUT/gpu_checks.json (OUT is the device tool's folder; /tmp/gpu-out elsewhere).
#
#   bash benchmarks/gpu_checks.sh               on the GPU machine, from the repository root
#   bash benchmarks/gpu_checks.sh --cpu-smoke   anywhere: every step on the CPU, tiny (CI)
#
# The machine reaches no registry: fetch the wheels it lacks here first
# (`bash benchmarks/fetch_wheels.sh` -> .whl/, git-ignored) and carry them:
#   run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"], timeout_s=420)
# The steps and their limits are in benchmarks/gpu_checks.py; the figures go to
# benchmarks/RESULTS.md with the device named.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
if ls .whl/*.whl > /dev/null 2>&1 && [ "${1:-}" != "--cpu-smoke" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if command -v nvidia-smi > /dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | tee "$OUT/gpu.txt"
fi
"$PYTHON" -c "import torch, zarr, dask, numba, numpy; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), 'zarr', zarr.__version__, 'dask', dask.__version__, \
'numba', numba.__version__, 'numpy', numpy.__version__)" | tee -a "$OUT/gpu.txt" || exit 1
exec "$PYTHON" benchmarks/gpu_checks.py --out "$OUT" "$@"
