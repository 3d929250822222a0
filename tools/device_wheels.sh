#!/usr/bin/env bash
# The wheels the device machine lacks, for its CPython 3.12 on manylinux x86_64, into an
# ignored folder that a device run carries (see docs/benchmarks.md, "GPU: the device suite").
#
#   tools/device_wheels.sh [DEST]        # default DEST: .device-wheels (in .gitignore)
#
# The device has Python 3.12, CUDA torch, torchvision, OpenCV, SciPy, NumPy, scikit-image,
# matplotlib, ONNX / ONNX Runtime (CPU) and the rest of vidrestore's needs, but no PyAV and
# nothing can be fetched there. So: PyAV (decode / encode), facenet-pytorch (only its MTCNN
# weight files are used: offline face detection), facexlib (RetinaFace / ParseNet / ArcFace
# code) and filterpy (facexlib's one need the device lacks). Everything is pinned to the
# versions this project is tested with, binary wheels only. A run of the suite installs them
# with `pip install --no-index --no-deps` (tools/device_suite.py --wheels DEST).
#
# The files a device run sends (the working tree plus carried folders) must stay under 64 MiB
# together: this script prints the wheels' total and the tree's, and fails if they are over.
set -euo pipefail

DEST=${1:-.device-wheels}
PYTHON=${PYTHON:-python3}
LIMIT=$((64 * 1024 * 1024))
WHEELS=(av==18.1.0 facenet-pytorch==2.6.0 facexlib==0.3.0 filterpy==2.0.0)

cd "$(dirname "$0")/.."
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any \
  -d "$DEST" "${WHEELS[@]}"

wheels=$(find "$DEST" -maxdepth 1 -name '*.whl' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -n 1 | cut -f1)
total=$((wheels + tree))
ls -l "$DEST"/*.whl | awk '{printf "  %8.1f MiB  %s\n", $5 / 1048576, $NF}'
printf 'wheels %.1f MiB + working tree %.1f MiB = %.1f MiB (limit %d MiB)\n' \
  "$(echo "$wheels / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)" $((LIMIT / 1048576))
if [ "$total" -gt "$LIMIT" ]; then
  echo "error: over the 64 MiB a device run can send; leave a wheel out or clean the tree" >&2
  exit 1
fi
