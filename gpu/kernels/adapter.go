package kernels

// Wrappers for adapter.cu, Kron-LoRA's per-token mixing with A (dA2×2):
// T is (n·2)×r (token t's T_t = rows 2t, 2t+1), M is (n·dA2)×r.

func kronSizes(entry string, n, dA2, r int) (int64, error) {
	if err := checkSizes(entry, size{"n", n}, size{"dA2", dA2}, size{"r", r}); err != nil {
		return 0, err
	}
	return product(entry, size{"n", n}, size{"dA2", max(dA2, 2)}, size{"r", r})
}

// KronMix sets M_t = A·T_t for every token (Kron.mixTokens): m (n·dA2)×r,
// t (n·2)×r, a dA2×2.
func KronMix(l Launcher, m, t, a uintptr, n, dA2, r int) error {
	const entry = "kron_mix"
	total, err := kronSizes(entry, n, dA2, r)
	if err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"m", m}, ptr{"t", t}, ptr{"a", a}); err != nil {
		return err
	}
	grid, block := elemGrid(total)
	return l.Launch(entry, grid, block, 0, m, t, a, int32(n), int32(dA2), int32(r))
}

// KronUnmix sets (overwrites) dT_t = Aᵀ·dM_t for every token (the dT half of
// Kron.unmixTokens): dt (n·2)×r, dm (n·dA2)×r, a dA2×2.
func KronUnmix(l Launcher, dt, dm, a uintptr, n, dA2, r int) error {
	const entry = "kron_unmix"
	if _, err := kronSizes(entry, n, dA2, r); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"dt", dt}, ptr{"dm", dm}, ptr{"a", a}); err != nil {
		return err
	}
	grid, block := elemGrid(int64(n) * 2 * int64(r))
	return l.Launch(entry, grid, block, 0, dt, dm, a, int32(n), int32(dA2), int32(r))
}

// KronGradA accumulates dA += Σ_t dM_t·T_tᵀ (the dA half of
// Kron.unmixTokens): da dA2×2, dm (n·dA2)×r, t (n·2)×r. Deterministic: one
// block per entry of A with a fixed reduction order, no atomics.
func KronGradA(l Launcher, da, dm, t uintptr, n, dA2, r int) error {
	const entry = "kron_grad_a"
	if _, err := kronSizes(entry, n, dA2, r); err != nil {
		return err
	}
	if err := checkSizes(entry, size{"2·dA2", 2 * dA2}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"da", da}, ptr{"dm", dm}, ptr{"t", t}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(2 * dA2), 1, 1}, [3]uint32{256, 1, 1}, 0, da, dm, t, int32(n), int32(dA2), int32(r))
}
