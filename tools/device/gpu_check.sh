#!/usr/bin/env bash
# The GPU check of issue 17 (docs/performance.md, "On a GPU"): `internalize bench` and the paper
# preset at the paper's budgets, on whatever accelerator JAX finds. Run from the repository root
# on a machine with JAX's CUDA build (pip install '.[cuda]', or an image that has jax[cuda]):
#   OUT=/some/folder bash tools/device/gpu_check.sh
# It writes bench.json, bench.log, repro.log, the reproduction's report.md and a timing table
# into $OUT. Each part has its own time limit (seconds; BENCH_LIMIT, REPRO_LIMIT).
set -u
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 INTERNALIZE_JAX_CACHE=${INTERNALIZE_JAX_CACHE:-/tmp/internalize-jax-cache}
PY=${PYTHON:-python3}
if ! $PY -c "import internalize" 2>/dev/null; then export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}; fi
nvidia-smi -L 2>&1 | tee "$OUT/devices.txt"
$PY -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())" 2>&1 | tee -a "$OUT/devices.txt"
timeout "${BENCH_LIMIT:-240}" $PY -m internalize.cli bench --repeats 3 --out "$OUT" 2>&1 | tee "$OUT/bench.log"
timeout "${REPRO_LIMIT:-300}" $PY -m internalize.cli reproduce --preset paper --only "${ONLY:-isr_accuracy,unlearning}" \
    --results /tmp/internalize-gpu-results --no-progress 2>&1 | tee "$OUT/repro.log"
cp /tmp/internalize-gpu-results/report.md "$OUT/report.md" 2>/dev/null
$PY - "$OUT" <<'PYEOF' 2>&1 | tee "$OUT/repro_times.txt"
import json, pathlib, sys
root = pathlib.Path("/tmp/internalize-gpu-results")
for c in sorted(root.glob("*/config.json")):
    d = json.loads(c.read_text())
    if "wall_seconds" in d:
        print(f"{d['experiment']}: {d['wall_seconds']:.1f}s wall, {d.get('compile_seconds', 0):.1f}s compiling, "
              f"{d['seeds']} seeds, budget {d['budget']}, preset {d['preset']}, devices {d['devices']}")
PYEOF
