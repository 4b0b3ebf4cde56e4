#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the executor and runs it against the real GPU(s):
# NVML discovery, health readings, a job bound by UUID (a tiny CUDA program when nvcc is
# present, else `nvidia-smi -L` under the binding), and the preemption of a GPU job.
# Prints what it saw; exits non-zero when a check fails. CI has no GPU and does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: no nvidia-smi on this machine: nothing to check" >&2
  exit 2
fi
echo "== nvidia-smi -L (unbound, what the machine has)"
nvidia-smi -L
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
job=(nvidia-smi -L)
if command -v nvcc >/dev/null 2>&1; then
  cat > "$work/probe.cu" <<'CU'
#include <cstdio>
__global__ void add(int *x) { x[threadIdx.x] += threadIdx.x; }
int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { printf("cuda: no device visible\n"); return 1; }
  printf("cuda: %d device(s) visible\n", n);
  for (int i = 0; i < n; i++) {
    cudaDeviceProp p; cudaGetDeviceProperties(&p, i);
    printf("cuda device %d: %s, %.1f GiB, uuid GPU-", i, p.name, p.totalGlobalMem / 1073741824.0);
    for (int b = 0; b < 16; b++) printf("%02x%s", (unsigned char)p.uuid.bytes[b], (b==3||b==5||b==7||b==9)?"-":"");
    printf("\n");
  }
  int *d; int h[32] = {0};
  cudaMalloc(&d, sizeof h); cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
  add<<<1, 32>>>(d); cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
  printf("kernel: h[31] = %d (expected 31)\n", h[31]);
  return h[31] == 31 ? 0 : 1;
}
CU
  nvcc -o "$work/probe" "$work/probe.cu"
  job=("$work/probe")
else
  echo "gpu-check: nvcc not found; the bound job runs nvidia-smi -L instead"
fi
cargo run --release -p tessera-exec --example gpu_check -- "${job[@]}"
