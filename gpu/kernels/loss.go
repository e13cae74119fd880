package kernels

// Wrappers for loss.cu: one block per row (grid n), rowBlock(vocab) threads.

func lossSizes(entry string, n, vocab int) error {
	if err := checkSizes(entry, size{"n", n}, size{"vocab", vocab}); err != nil {
		return err
	}
	_, err := product(entry, size{"n", n}, size{"vocab", vocab})
	return err
}

// CrossEntropy computes, per row i with target t = targets[i], the loss
// loss[i] = −log softmax(logits_i)[t] and overwrites
// dlogits_i = invCount·(softmax(logits_i) − onehot(t)), as
// LlamaRun.LossAndGrad does with invCount = 1/(number of targets ≥ 0).
// Rows with t < 0 get loss 0 and dlogits 0; t ≥ vocab (validate targets on
// the host) gives loss NaN. dlogits, logits: n×vocab (distinct buffers);
// loss: n; targets: n int32.
func CrossEntropy(l Launcher, dlogits, loss, logits, targets uintptr, n, vocab int, invCount float32) error {
	const entry = "cross_entropy"
	if err := lossSizes(entry, n, vocab); err != nil {
		return err
	}
	if err := checkFinite(entry, namedFloat{"invCount", invCount}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"dlogits", dlogits}, ptr{"loss", loss}, ptr{"logits", logits}, ptr{"targets", targets}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(vocab), 1, 1}, 0,
		dlogits, loss, logits, targets, int32(n), int32(vocab), invCount)
}

// TargetLogProb sets out[i] = log softmax(logits_i)[targets[i]] (0 where the
// target is < 0, NaN where it is ≥ vocab): the per-position log-likelihood
// of evaluation. out: n; logits: n×vocab; targets: n int32.
func TargetLogProb(l Launcher, out, logits, targets uintptr, n, vocab int) error {
	const entry = "target_logprob"
	if err := lossSizes(entry, n, vocab); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"out", out}, ptr{"logits", logits}, ptr{"targets", targets}); err != nil {
		return err
	}
	return l.Launch(entry, [3]uint32{uint32(n), 1, 1}, [3]uint32{rowBlock(vocab), 1, 1}, 0,
		out, logits, targets, int32(n), int32(vocab))
}
