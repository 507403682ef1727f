#!/usr/bin/env bash
# The GPU checks of the performance work in one command, for a lent GPU machine (README, "GPU"). Stage first:
#     ../shared/gpu/stage.sh src/Experiments.FSharp/Experiments.FSharp.fsproj
# then, with the device tool and carry [".gpu"]:
#     bash scripts/gpu-check.sh
# It writes everything under $OUT (which the device tool brings back):
#   1. the harness (`attribution bench`) on CUDA with ResNet-50 at 224x224: every method's time against its floor and
#      images per second, with libtorch's default allocator (bench-cuda.json, bench-cuda.log);
#   2. the same methods hand-written in PyTorch on the same weights, inputs and GPU (pytorch-cuda.log: the ratio
#      toolkit / PyTorch per method, after checking that both compute the same saliency maps);
#   3. the saliency maps of the same weights and inputs computed on the CPU, and the largest difference from the
#      CUDA maps relative to the largest value (maps-cuda-vs-cpu.txt), after checking that weights and inputs match;
#   4. saliency, SmoothGrad and IG in each explain.precision, fp32, tf32 and bf16 (bench-precision-*.json);
#   5. the peak GPU memory of some methods, with libtorch allocating from the driver's pool, whose high watermark the
#      bench reads (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync; bench-gpu-memory.json, its PeakGpuMb).
# Sizes: ResNet-50, 4 inputs, 3 repeats; HARNESS_SECONDS caps the harness (InputIBA and Extremal Perturbations
# dominate it), METHODS="saliency smooth_grad ..." restricts it. The whole script must fit one device call.
# Each step runs even if one before it failed; check.log says which failed. A dry run on a machine without a GPU:
#     DEVICE=cpu MODEL=resnet18 SIZE=64 INPUTS=4 ATTRIBUTION=src/Experiments.FSharp/bin/Release/net10.0/attribution \
#         PYTHON=/usr/bin/python3 OUT=/tmp/gpu-check bash scripts/gpu-check.sh
# (on a CPU bf16 has no fast kernels: give PRECISION_SECONDS=300 there, or its step stops at 40 s; the PyTorch step needs
# python3-torchvision)
set -uo pipefail

OUT=${OUT:-/tmp/gpu-check}
ATTRIBUTION=${ATTRIBUTION:-"bash .gpu/run.sh"}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL:-resnet50}
SIZE=${SIZE:-224}
INPUTS=${INPUTS:-4}
# the harness gets at most this long, so that the steps after it still fit one device call (600 s at most)
HARNESS_SECONDS=${HARNESS_SECONDS:-360}
# each of the three precision runs gets at most this long
PRECISION_SECONDS=${PRECISION_SECONDS:-40}
# the memory run (one round of a few methods) gets at most this long
MEMORY_SECONDS=${MEMORY_SECONDS:-60}
MEMORY_METHODS=${MEMORY_METHODS:-saliency,smooth_grad,fi_sigma,integrated_gradients,neflag_20,information_bottleneck}
# contenders to time (ids as bench prints them); empty: every one at natural-image size
METHODS=${METHODS:-}
mkdir -p "$OUT"

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/check.log"; }
step() {
    local name=$1; shift
    log "start: $name"
    if "$@"; then log "done: $name"; else log "FAILED ($?): $name"; fi
}

command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

# $ATTRIBUTION is split into words on purpose: it may be "bash .gpu/run.sh"
harness() {
    # shellcheck disable=SC2086
    timeout "$HARNESS_SECONDS" $ATTRIBUTION bench --device "$DEVICE" --model "$MODEL" --size "$SIZE" --inputs "$INPUTS" --repeats 3 \
        ${METHODS:+--methods $METHODS} --json "$OUT/bench-$DEVICE.json" --pytorch "$OUT/pt-$DEVICE" > "$OUT/bench-$DEVICE.log" 2>&1
}
pytorch() {
    "$PYTHON" scripts/bench_pytorch.py "$OUT/pt-$DEVICE" --ours "$OUT/bench-$DEVICE.json" --device "$DEVICE" --repeats 3 \
        > "$OUT/pytorch-$DEVICE.log" 2>&1
}
cpu_maps() {
    $ATTRIBUTION bench --device cpu --model "$MODEL" --size "$SIZE" --inputs "$INPUTS" --repeats 1 --methods saliency \
        --pytorch "$OUT/pt-cpu-reference" > "$OUT/bench-cpu-reference.log" 2>&1
}

step "harness on $DEVICE ($MODEL, ${SIZE}x${SIZE}, $INPUTS inputs)" harness
step "PyTorch on the same weights and device" pytorch
step "the same saliency maps on the CPU" cpu_maps

compare_maps() {
    "$PYTHON" - "$OUT/pt-$DEVICE" "$OUT/pt-cpu-reference" > "$OUT/maps-$DEVICE-vs-cpu.txt" 2>&1 <<'PY'
import json, os, sys
import numpy as np
import torch
device, cpu = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(device, "bench.json")))
read = lambda folder, name, dtype: np.fromfile(os.path.join(folder, name), dtype=dtype)
# the same weights (seeded) and inputs on both sides, or the comparison means nothing
for name, dtype in [("inputs.f32", "<f4"), ("targets.i64", "<i8")]:
    if not np.array_equal(read(device, name, dtype), read(cpu, name, dtype)):
        sys.exit(f"{name} differs between the two runs: not the same inputs")
weights = [torch.load(os.path.join(folder, "weights.pth"), map_location="cpu") for folder in (device, cpu)]
if weights[0].keys() != weights[1].keys() or any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0]):
    sys.exit("the weights differ between the two runs: not the same model")
a, b = read(device, "saliency.f32", "<f4").astype(np.float64), read(cpu, "saliency.f32", "<f4").astype(np.float64)
scale = np.abs(b).max()
difference = np.abs(a - b).max()
print(f"{meta['architecture']} {meta['shape']}: saliency maps, max |device - cpu| = {difference:.3g}, "
      f"{difference / scale:.3g} of the largest |value| ({scale:.3g}); mean |difference| {np.abs(a - b).mean():.3g}")
PY
}
step "saliency maps: $DEVICE against the CPU" compare_maps

# 4. explain.precision: the gradient methods' time in fp32, tf32 and bf16 on the same model and inputs (each run's
#    ratio is to its own floor; images per second compare the precisions)
precision() {
    local p
    for p in fp32 tf32 bf16; do
        # shellcheck disable=SC2086
        timeout "$PRECISION_SECONDS" $ATTRIBUTION bench --device "$DEVICE" --model "$MODEL" --size "$SIZE" --inputs "$INPUTS" --repeats 3 \
            --methods saliency,smooth_grad,integrated_gradients --precision "$p" --json "$OUT/bench-precision-$p.json" \
            > "$OUT/bench-precision-$p.log" 2>&1 || return 1
    done
}
step "precision: fp32, tf32 and bf16 on $DEVICE" precision

# 5. device memory: libtorch's default caching allocator keeps its counters out of TorchSharp's reach, so this run has
#    it allocate from the driver's memory pool, whose peak the bench reads per method (its times are not the figures)
gpu_memory() {
    # shellcheck disable=SC2086
    PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync timeout "$MEMORY_SECONDS" $ATTRIBUTION bench --device "$DEVICE" --model "$MODEL" \
        --size "$SIZE" --inputs "$INPUTS" --repeats 1 --methods "$MEMORY_METHODS" --json "$OUT/bench-gpu-memory.json" \
        > "$OUT/bench-gpu-memory.log" 2>&1
}
step "peak GPU memory per method (driver's pool)" gpu_memory

log "figures in $OUT"
