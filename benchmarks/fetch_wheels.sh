#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_checks.sh installs on the lent GPU machine (Python 3.12,
# x86-64 Linux, no registry there) into .whl/ (git-ignored; the device tool carries it with
# carry: [".whl"]). Run here, from the repository root, where PyPI is reachable:
#   bash benchmarks/fetch_wheels.sh
# The versions are those of the development venv; the machine's image already holds numpy,
# numba, torch, typer, rich, pandas, pyarrow, scipy, scikit-learn, matplotlib, jinja2, click,
# cloudpickle, fsspec, toolz, pyyaml, msgpack, psutil, sortedcontainers, pytest and hypothesis
# (/work/.library/device/KINDS.md), so those are not fetched.
set -euo pipefail
PYTHON=${PYTHON:-python3}
WHEELS=(
  zarr==3.1.6 numcodecs==0.16.6 google-crc32c==1.9.0 donfig==0.8.1.post1
  dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 importlib_metadata==10.2.0
  tblib==3.2.2 tornado==6.6.1 zict==3.0.0 mnist1d==0.0.2.post1
)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl "${WHEELS[@]}"
du -sh .whl
