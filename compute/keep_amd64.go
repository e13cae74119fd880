//go:build amd64 && !purego

package compute

// keepStreams8 runs the eight PCG streams seed, c0+i (lanes i with bit i of
// laneMask set write their words; the others compute and discard) for
// words words, stream i's word w stored at keep + i·stride + 8·w bytes.
//
//go:noescape
func keepStreams8(keep *uint64, words, stride int, laneMask, seed, c0, add uint64)

func keepWords8(keep []uint64, words, streams int, seed, c0, add uint64) bool {
	if !useZMM() || !hasAVX512DQ() {
		return false
	}
	keepStreams8(&keep[0], words, 8*words, 1<<streams-1, seed, c0, add)
	return true
}
