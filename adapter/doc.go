// Package adapter holds the trainable adapters kronfed puts on frozen linear
// layers: Kron-LoRA (ΔW = A ⊗ (B1·B2)) and the LoRA baseline (ΔW = B·A), their
// forward and backward passes on batches of tokens, merging into frozen weights,
// parameter counts, the quantization error report, and adapter files.
//
// Conventions (DESIGN.md §1). For a frozen layer y = W·x with W of shape d_out×d_in:
//
//	ΔW = A ⊗ (B1·B2)     torch.kron index rule: ΔW[i·dB2+k, j·dB1+l] = A[i,j]·(B1·B2)[k,l]
//	A  : dA2 × dA1       dA1 = 2
//	B1 : dB2 × r         dB2 = d_out / dA2
//	B2 : r × dB1         dB1 = d_in / dA1
//	y  = W·x + (alpha/r)·ΔW·dropout(x)
//
// ΔW is never formed on the hot path: with X = x reshaped row-major to dA1×dB1,
// the adapter output is vec(A·((X·B2ᵀ)·B1ᵀ)). Over a batch of n tokens the n
// matrices X stack into one (n·dA1)×dB1 matrix (it is the token matrix itself,
// row-major), so both inner products are single GEMMs.
//
// All matrices are row-major float32 slices. Token batches are n×d matrices with
// rows contiguous (leading dimension d).
package adapter
