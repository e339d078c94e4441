#!/usr/bin/env bash
# Here, before a GPU check on a machine that reaches no package registry: the wheels the check needs
# beyond that machine's own packages (localft itself and what it needs that such an image lacks,
# at the versions localft/constraints.txt pins, for Python 3.12 on x86-64 Linux) and the embedded
# model's tokenizer, into bench/_work/gpu (about 50 MB). Carry that folder with the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WORK=bench/_work/gpu
rm -rf "$WORK/wheels" "$WORK/tokenizer"
mkdir -p "$WORK/wheels"
NEEDED=(bitsandbytes liger-kernel pydantic pydantic-core annotated-types typing-inspection platformdirs
        datasets dill multiprocess libipld gguf)
PINNED=()
for name in "${NEEDED[@]}"; do
  pin=$(grep -i -E "^${name//-/[-_]}==" localft/constraints.txt | cut -d';' -f1 || true)
  PINNED+=("${pin:-$name}")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WORK/wheels" "${PINNED[@]}"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/wheels" .
"$PY" - "$WORK/tokenizer" <<'PYTHON'
import shutil, sys
from pathlib import Path
from localft.plan.catalog import embedded_model_dir

source, target = embedded_model_dir(), Path(sys.argv[1])
target.mkdir(parents=True)
for path in source.iterdir():  # everything but the weights
    if not path.name.endswith((".safetensors", ".bin", ".gguf")) and path.is_file():
        shutil.copy(path, target / path.name)
PYTHON
du -sh "$WORK" | sed 's/^/gpu_prepare: /'
