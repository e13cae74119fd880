// Package gpu is kronfed's CUDA engine: the decoder (and, next, encoder)
// forward and backward of package model, run on an NVIDIA GPU with the same
// math, the way llm.c's train_gpt2.cu mirrors train_gpt2.c. gpu/llama.go sits
// beside model/llama.go with the same names and the same order of layers;
// the CPU engine is the reference every test here compares against.
//
// Layers:
//
//   - gpu/cuda binds the CUDA driver API (libcuda.so.1), cuBLAS and NVRTC at
//     run time with purego: no cgo, no CUDA headers, so `go build ./...`
//     works on every machine and one without a GPU gets an error naming what
//     is missing and where it looked. (gorgonia.org/cu, the usual Go binding,
//     needs cuda.h at build time and does not build against CUDA 12/13.)
//   - gpu/kernels holds the CUDA C kernels as real .cu files, embedded and
//     compiled by NVRTC for the device on first use, then cached on disk
//     (key: source hash, architecture, driver and NVRTC versions).
//   - this package: Engine (context, one stream, cuBLAS, a caching
//     allocator, the compiled kernels), the frozen linears, the adapters and
//     the model runs.
//
// Precision: frozen base weights are bf16 (Engine precision BF16, the
// default; GEMMs take bf16 copies of the activations and accumulate in fp32)
// or fp32 (FP32: no TF32, the CPU engine's results to rounding). Activations,
// adapters, their gradients and the optimizer state are always fp32.
//
// Adapters: the host adapter.Set stays the master copy. A run uploads the
// factors before each forward and adds the device gradients into the host
// gradients after each backward, so train's optimizer, clipping, DP and
// quantization are the same code on both engines; the factors are tiny
// (a Mistral-7B Kron-LoRA set is 5.7 M parameters, 23 MB).
//
// Attention never materializes the B·H·T² probabilities: the forward keeps
// each query row's max and 1/Σexp, and the backward recomputes the
// probabilities from them tile by tile (FlashAttention-2's scheme).
//
// Dropout masks come from the device (DeviceDropout: one seed per mask drawn
// from the run's generator, as the CPU engine draws one) or, for parity with
// the CPU engine, from the host (HostDropout: adapter.Dropout's own masks).
//
// The train package picks the engine (train.OpenEngine("cuda:0", ...)); the
// device check that runs this package's tests on a real GPU is devcheck.sh.
package gpu
