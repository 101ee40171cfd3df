#!/usr/bin/env bash
# Every GPU check in one run, on a lent CUDA machine (H100) through the device tool:
#   bash benchmarks/gpu_checks.sh          (from the repository root; wheels of zarr, dask, ...
#                                           for that machine's Python in .whl/, see RESULTS.md)
# Writes logs and JSON lines under $OUT (or /tmp/gpu-out) and prints a short table last.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, zarr, dask, numba, numpy; print('torch', torch.__version__, 'zarr', \
zarr.__version__, 'dask', dask.__version__, 'numba', numba.__version__, 'numpy', \
numpy.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"

summary=()
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  summary+=("$name rc=$rc $((SECONDS - start)) s")
}

step pytest_gpu 120 python3 -m pytest -q -m gpu -p no:cacheprovider -W ignore tests
step bench_train 180 python3 benchmarks/bench_train.py --dataset mnist1d --arch mlp \
  --networks 512 --epochs 5 --device cuda --baseline-networks 16 --cnn-networks 512 --repeats 1
step bench_train_bf16 150 python3 benchmarks/bench_train.py --dataset mnist1d --arch mlp \
  --networks 512 --epochs 5 --device cuda --baseline-networks 16 --repeats 1 --precision bf16
step bench_pairwise 180 python3 benchmarks/bench_pairwise.py --networks 10000 --examples 60000 \
  --device cuda --repeat 1 --no-kernel --no-numpy

echo "== summary"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
grep -h '^{' "$OUT"/bench_*.log > "$OUT/results.jsonl" 2>/dev/null
