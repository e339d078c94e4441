#!/usr/bin/env bash
# The GPU check, for a fresh CUDA machine: installs what the check needs (torch is the machine's
# own), runs bench/gpu_check.py's stages and prints their figures as one JSON line on stdout
# (progress on stderr). About 6-7 minutes on an H100 with the install. Without a CUDA GPU it says so
# in one line on stderr, prints {"gpu": false, ...} and exits 2: nothing is measured on a CPU.
#
#   bash bench/gpu_check.sh                 # a CUDA machine that reaches the package registries
#                                           # (installs into python3's environment: use a venv)
#   bash bench/gpu_prepare.sh               # here, first, for a machine that reaches none:
#                                           # wheels + the tokenizer into bench/_work/gpu, carried there
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=bench/_work/gpu

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  echo "gpu_check: no CUDA GPU here (torch finds none, or no torch); nothing measured: run it on a CUDA machine" >&2
  echo '{"gpu": false, "reason": "no CUDA GPU visible to torch"}'
  exit 2
fi

# The machine's own torch stays. Prepared wheels (bench/gpu_prepare.sh) go into a folder of their
# own on PYTHONPATH; otherwise pip installs into the environment this python3 belongs to.
if [ -d "$WORK/wheels" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$WORK/site" "$WORK"/wheels/*.whl >&2
  export PYTHONPATH="$PWD/$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
else
  "$PY" -m pip install -q . bitsandbytes liger-kernel gguf >&2
fi
TOKENIZER=()
[ -d "$WORK/tokenizer" ] && TOKENIZER=(--tokenizer "$WORK/tokenizer")
"$PY" bench/gpu_check.py --device cuda "${TOKENIZER[@]}" "$@"
