//go:build amd64 && !purego

package compute

// sortNet16AVX applies pairs comparators (net: int32 pairs of row
// indices) to the 16-float rows of buf, two ymm per row.
//
//go:noescape
func sortNet16AVX(buf *float32, net *[2]int32, pairs int)

func sortColumns16(buf []float32, net [][2]int32) {
	if !useAsm {
		sortColumns16Go(buf, net)
		return
	}
	sortNet16AVX(&buf[0], &net[0], len(net))
}
