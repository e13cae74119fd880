package kernels

// Wrappers for embed.cu. ids are int32 token (or position, type) ids, each
// a row of the table: validate them on the host, as the CPU models do (the
// kernels do not bounds-check).

func embedLaunch(l Launcher, entry string, out, table, ids uintptr, n, d int) error {
	if err := checkSizes(entry, size{"n", n}, size{"d", d}); err != nil {
		return err
	}
	if err := checkPtrs(entry, ptr{"out", out}, ptr{"table", table}, ptr{"ids", ids}); err != nil {
		return err
	}
	grid, block := rowGrid(n, d)
	return l.Launch(entry, grid, block, 0, out, table, ids, int32(n), int32(d))
}

// EmbedGatherF32 sets out[t] = table[ids[t]]. out: n×d, table: V×d
// float32, ids: n int32 in [0, V).
func EmbedGatherF32(l Launcher, out, table, ids uintptr, n, d int) error {
	return embedLaunch(l, "embed_gather_f32", out, table, ids, n, d)
}

// EmbedGatherBF16 sets out[t] = float32(table[ids[t]]). out: n×d float32,
// table: V×d bfloat16 (uint16), ids: n int32 in [0, V).
func EmbedGatherBF16(l Launcher, out, table, ids uintptr, n, d int) error {
	return embedLaunch(l, "embed_gather_bf16", out, table, ids, n, d)
}

// AddRowsF32 adds table rows: out[t] += table[ids[t]] (BERT's position and
// token-type embeddings). out: n×d, table: rows×d float32, ids: n int32,
// each a row of the table.
func AddRowsF32(l Launcher, out, table, ids uintptr, n, d int) error {
	return embedLaunch(l, "add_rows_f32", out, table, ids, n, d)
}
