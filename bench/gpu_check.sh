#!/usr/bin/env bash
# The GPU checks of the trainer and the samplers, as one script for a lent GPU machine (bench/RESULTS.md says why).
#
# Run it from the repository root with a python3 that has torch with CUDA (the device machine's own
# has; nothing is installed and no network is needed). Results go to $OUT (default /tmp/gpu_check):
#   bash bench/gpu_check.sh                  # on the GPU machine (its run times are in bench/RESULTS.md)
#   DRY_RUN=1 bash bench/gpu_check.sh        # here, on a CPU: the same steps, tiny, to check the script
# diffusers is optional: where it imports, the model alone is compared with diffusers' UNet2DModel.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() { echo; echo "== $*  (at ${SECONDS} s)"; }
run() { "$@" || { echo "FAILED ($?): $*"; status=1; }; }
# logged FILE CMD...: run CMD, show its output (less warnings) and append it to $OUT/FILE, and remember a
# failure. (`run CMD | tee` would lose it: each part of a pipeline runs in a subshell.)
logged() {
    local file="$OUT/$1"; shift
    "$@" 2>&1 | grep -v Warning | tee -a "$file"
    local rc=${PIPESTATUS[0]}
    (( rc == 0 )) || { echo "FAILED ($rc): $*"; status=1; }
}

if [[ -n "${DRY_RUN:-}" ]]; then
    dev=cpu; prec=fp32; preset=digits; batch=16; steps=10; tests="cuda or gpu"; compile=""
    cmp_steps=(4 1 3 1); threads="--threads 1"  # step 4 small too: diffusers is in requirements.txt now
    sampling="--part throughput --dry-run --preset digits --variants fp32,fp32+cl"
else
    dev=cuda; prec=bf16; preset=cifar10; batch=128; steps=300; tests="cuda or gpu"; compile="--compile"
    cmp_steps=(50 10 30 5); threads=""
    sampling="--part throughput --preset cifar10 --batch 256 --variants fp32,bf16+cl,bf16+cl+graphs"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"

step "1. CUDA tests: device-resident data, bf16 and fp16 + GradScaler, channels_last, resume, no waits in the loops"
logged pytest.txt timeout 300 $PY -m pytest -q -p no:cacheprovider -rs tests/test_train.py tests/test_data.py \
    tests/test_sampling.py -k "$tests"

bench() { logged bench.txt timeout 300 $PY bench/train_throughput.py --device $dev --preset $preset --batch $batch $threads "$@"; }
step "2. the Trainer step, $preset, batch $batch, $prec, channels_last $compile"
bench --trainer --precision $prec --channels-last $compile --steps $steps --warmup 20
step "3. the same, eager (no compile)"
bench --trainer --precision $prec --channels-last --steps $((steps / 3)) --warmup 10
step "4. the model alone against diffusers' UNet2DModel (if diffusers imports)"
if $PY -c "import diffusers" 2>/dev/null; then
    bench --compare-diffusers --precision $prec --channels-last $compile --steps ${cmp_steps[0]} --warmup ${cmp_steps[1]}
    bench --compare-diffusers --precision $prec --channels-last --steps ${cmp_steps[2]} --warmup ${cmp_steps[3]}
else
    echo "diffusers is not installed: skipped"
fi
step "5. sampling: images/s of DDPM and DDIM (the loop itself is timed on a CPU: --part loops)"
logged sampling.txt timeout 300 $PY bench/sample_throughput.py --device $dev $sampling
exit $status
