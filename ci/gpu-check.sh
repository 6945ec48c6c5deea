#!/usr/bin/env bash
# The one prepared device check: on a machine with an NVIDIA GPU, run the `gpu` suite with
# the carried cuda binary, a short timed training of mid_50m, and the training benchmark next
# to PyTorch on the same GPU; write everything to one folder. Budget: under 8 minutes.
#
#   ci/gpu-check.sh [--bundle DIR] [--out DIR] [--models DIR] [--torch-python PY]
#
#   --bundle        what ci/build-cuda.sh assembled: DIR/groundtruth and DIR/lib/ (the CUDA
#                   13.0 libraries; never a libcuda stub: the driver provides libcuda.so.1).
#                   Default target/cuda/bundle.
#   --out           the report folder (default target/gpu-check). Replaced if it exists.
#   --models        a folder holding SmolLM2-135M-Instruct.Q4_1.gguf (GROUNDTRUTH_MODELS);
#                   default: the model cache. The suite's SmolLM2 cases need it.
#   --torch-python  a Python with torch (CUDA build) and transformers, for the PyTorch
#                   column. Without it the report says PyTorch was not measured.
#
# Needs on the GPU machine: this checkout (with its corpus), the bundle, the NVIDIA driver.
# No Rust, no network, no Python for the harness's own steps.
#
# Exit: 0 every step ran and held; 1 a claim was falsified or a step failed; 2 the machine
# cannot run the check (no GPU, no driver, a missing or wrong bundle). A GPU case that
# skips is a failure here: GROUNDTRUTH_EXPECT_GPU=1 turns "no GPU device" into an error.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bundle=$root/target/cuda/bundle
out=$root/target/gpu-check
models=
torch_python=
while [ $# -gt 0 ]; do
    case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --torch-python) torch_python=$2; shift 2 ;;
    *) echo "gpu-check: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
die() { echo "gpu-check: $*" >&2; exit 2; }

# 1. Preconditions, each a one-line refusal.
[ -x "$bundle/groundtruth" ] || die "$bundle/groundtruth: no such executable (build it with ci/build-cuda.sh and carry target/cuda/bundle)"
for lib in libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    [ -f "$bundle/lib/$lib" ] || die "$bundle/lib/$lib missing (carry the whole bundle folder)"
done
if ls "$bundle/lib" | grep -q '^libcuda\.'; then
    die "$bundle/lib holds a libcuda library: the link stub must never be carried (the driver provides libcuda.so.1)"
fi
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
gpus=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1) ||
    die "nvidia-smi failed: $gpus"
[ -n "$gpus" ] || die "nvidia-smi lists no GPU"
if [ -n "$models" ]; then
    [ -d "$models" ] || die "--models $models: no such folder"
    export GROUNDTRUTH_MODELS=$models
fi
if [ -n "$torch_python" ]; then
    "$torch_python" -c 'import torch, transformers, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
        die "--torch-python $torch_python: needs torch with a usable CUDA device and transformers"
fi

rm -rf "$out"
mkdir -p "$out"
export LD_LIBRARY_PATH=$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export GROUNDTRUTH_FORBID_SKIP=1 GROUNDTRUTH_EXPECT_GPU=1
gt=$bundle/groundtruth
summary=$out/summary.md
status=0
started=$(date +%s)
{
    echo "# gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- GPU: $gpus"
    echo "- binary: $gt (sha256 $(sha256sum "$gt" | cut -c1-16)…)"
    echo "- checkout: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo 'not a git checkout')"
    echo
    echo "| step | exit | seconds | output |"
    echo "|---|---:|---:|---|"
} >"$summary"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1

# step NAME LIMIT_S OK_CODES CMD...: runs CMD with a time limit, its output to NAME.log.
step() {
    local name=$1 limit=$2 ok=$3
    shift 3
    local t0 rc
    t0=$(date +%s)
    echo "gpu-check: $name (at most ${limit} s)" >&2
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    echo "| $name | $rc | $(($(date +%s) - t0)) | $name.log |" >>"$summary"
    case " $ok " in
    *" $rc "*) ;;
    *) status=1; echo "gpu-check: $name exited $rc (see $out/$name.log)" >&2 ;;
    esac
}

# 2. The gpu suite: CPU-vs-CUDA parity and training sanity on CUDA (exit 0 only).
step gpu-suite 210 0 "$gt" run --suite gpu --out "$out/gpu-suite"
# 3. A short timed training of mid_50m on its GPU recipe (300 steps, bf16 autocast).
step train-mid_50m 120 0 "$gt" train --recipe mid_50m --out "$out/train-mid_50m"
# 4. The training benchmark on the recipe's shapes, PyTorch measured alongside when given.
bench=("$gt" bench train --rungs mid_50m --device cuda --precision bf16 --batch 16 --seq-len 256 --warmup-steps 3 --steps 20)
[ -n "$torch_python" ] && bench+=(--with-pytorch "$torch_python")
step bench-mid_50m 90 0 "${bench[@]}"

{
    echo
    echo "Total: $(($(date +%s) - started)) s."
    echo
    echo "## gpu suite"
    echo
    grep -E '^(\||- |groundtruth:)' "$out/gpu-suite.log"
    echo
    echo "## mid_50m training (recipe mid_50m)"
    echo
    grep -E '^(training|step [0-9]+/|weights sha256|[0-9.]+ s wall)' "$out/train-mid_50m.log" ||
        tail -n 3 "$out/train-mid_50m.log"
    echo
    echo "## training throughput"
    echo
    grep -vE '^(measuring|gpu-check)' "$out/bench-mid_50m.log"
    [ -n "$torch_python" ] || echo "PyTorch not measured: no --torch-python given."
} >>"$summary"
cat "$summary"
exit $status
