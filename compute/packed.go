package compute

import (
	"fmt"
	"math/bits"
	"sync"
	"unsafe"
)

// PackedB is the right operand of a GEMM, op(B) (k×n), laid out once in the
// micro-kernel's panel format so that repeated products with the same matrix
// (a frozen weight used for every batch) skip the packing pass.
//
// Layout: op(B) is cut into passes of kc rows (the last may be shorter) and
// each pass into micro-panels of nr=16 columns (the last zero-padded). A
// micro-panel is kcb×16 floats stored k-major (16 floats per k step), which is
// the order the micro-kernel reads. Pass blk starts at blk·kc·npad and its
// panel jp at jp·16·kcb within it (npad = n rounded up to 16).
//
// Memory: k × roundUp(n, 16) float32 plus 64 bytes of alignment, i.e. the size
// of B itself when n is a multiple of 16 (a 768×3072 weight: 9 MiB). Gemm
// itself packs one k pass of B at a time into pooled scratch memory:
// kc·roundUp(n, 16) floats (4.5 MiB for n=3072, at most 32 MiB; wider B is
// done in column chunks), plus 144 KiB per thread for packed A blocks.
//
// A PackedB is immutable after PackB returns and may be used by any number of
// goroutines at once.
//
// A PackedB made by PackBBF16 holds bf16 instead (bf, with data nil) and
// runs on the VDPBF16PS kernel; GemmPacked takes either.
type PackedB struct {
	k, n int
	kc   int
	data []float32
	bf   []uint16
}

// BF16 reports whether the packed values are bf16 (PackBBF16).
func (p *PackedB) BF16() bool { return p.bf != nil }

// Bytes is the packed copy's memory.
func (p *PackedB) Bytes() int { return 4*len(p.data) + 2*len(p.bf) }

// K returns the number of rows of op(B) (the inner dimension of the product).
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of op(B) (the columns of C).
func (p *PackedB) N() int { return p.n }

// panel returns the packed micro-panel jp of pass blk and that pass's depth.
func (p *PackedB) panel(blk, jp int) ([]float32, int) {
	return p.panels(blk, jp, 1)
}

// panels is count adjacent micro-panels from jp on, one after the other.
func (p *PackedB) panels(blk, jp, count int) ([]float32, int) {
	p0 := blk * p.kc
	kcb := min(p.kc, p.k-p0)
	off := p0*roundUp(p.n, nr) + jp*nr*kcb
	return p.data[off : off+count*nr*kcb], kcb
}

// PackB packs op(B) (k×n: B is k×n with ldb ≥ n, or n×k with ldb ≥ k when tB
// is Trans) for use with GemmPacked. The result does not alias b.
func PackB(tB Transpose, k, n int, b []float32, ldb int) *PackedB {
	checkPackB("PackB", tB, k, n, b, ldb)
	pb := &PackedB{k: k, n: n, kc: chooseKC(k), data: alignedFloats(k * roundUp(n, nr))}
	if k > 0 && n > 0 {
		packBAll(pb, tB, b, ldb, Threads())
	}
	return pb
}

// checkPackB panics on a programmer error in a packing call: a negative
// size, or b too short for op(B) (k×n).
func checkPackB(fn string, tB Transpose, k, n int, b []float32, ldb int) {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("compute: negative %s size k=%d n=%d", fn, k, n))
	}
	if tB {
		checkMatrix("B", b, n, k, ldb)
	} else {
		checkMatrix("B", b, k, n, ldb)
	}
}

// GemmPacked computes C = alpha·op(A)·B + beta·C with B prepacked by PackB
// (k and n come from pb). op(A) is m×k: A is m×k (lda ≥ k), or k×m (lda ≥ m)
// when tA is Trans; C is m×n (ldc ≥ n). beta==0 overwrites C (old NaN ignored).
func GemmPacked(tA Transpose, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	if trivialPackedGemm(tA, m, pb.k, pb.n, alpha, a, lda, beta, c, ldc) {
		return
	}
	gemmPacked(tA, m, alpha, a, lda, pb, beta, c, ldc, Threads())
}

// trivialPackedGemm checks a packed product's operands (op(A) m×k, C m×n;
// panics on programmer errors) and does it when it needs no kernel: an
// empty C, or k or alpha zero (C = beta·C). It reports whether it did.
func trivialPackedGemm(tA Transpose, m, k, n int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int) bool {
	if m < 0 {
		panic(fmt.Sprintf("compute: negative GEMM size m=%d", m))
	}
	if tA {
		checkMatrix("A", a, k, m, lda)
	} else {
		checkMatrix("A", a, m, k, lda)
	}
	checkMatrix("C", c, m, n, ldc)
	if m == 0 || n == 0 {
		return true
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return true
	}
	return false
}

// forChunks runs one(i) for i in [0, total): serially when threads < 2 or
// serial is set, else in chunks over the threads, several chunks per thread
// so an interrupted thread is covered by the others.
func forChunks(total, threads int, serial bool, one func(i int)) {
	if threads < 2 || serial {
		for i := 0; i < total; i++ {
			one(i)
		}
		return
	}
	chunks := min(total, 4*threads)
	parallelFor(chunks, threads, func(ch int) {
		for i := ch * total / chunks; i < (ch+1)*total/chunks; i++ {
			one(i)
		}
	})
}

// wideSplitPanels is the number of 16-column panels per thread (1024
// columns) from which gemmPacked splits B's columns between threads.
const wideSplitPanels = 64

// parallelMinFlops is the smallest product (2·m·n·k) that is split over
// threads: waking a worker and joining it costs a few microseconds, which is
// about this much work on one core.
const parallelMinFlops = 1 << 21

// gemmPacked runs C = alpha·op(A)·B + beta·C over pb. The work is cut into
// parts that own disjoint blocks of C: row blocks of at most mcMax rows (each
// packs its own A block and shares pb), or column ranges when m is too small
// to give every thread rows.
func gemmPacked(tA Transpose, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, threads int) {
	n, k := pb.n, pb.k
	tileRows := mr
	if useZMM() || pb.bf != nil {
		tileRows = zr // parts in whole 24-row tiles
	}
	mt := (m + tileRows - 1) / tileRows // row tiles
	nt := (n + nr - 1) / nr             // column panels
	if threads < 1 || 2*m*n*k < parallelMinFlops {
		threads = 1
	}
	mcTiles := mcMax / tileRows
	pm, pn := 1, 1
	if threads == 1 {
		pm = (mt + mcTiles - 1) / mcTiles
	} else if mt >= 2*threads && nt >= wideSplitPanels*threads {
		// A wide B (a pass of it several MiB, from L3): split the columns
		// too, so that each thread streams only its share of every pass
		// instead of all of it once per row block (1024×3072×768 on two
		// Zen 5 cores: ~325 → ~340 GFLOP/s). Consecutive parts are one row
		// block's column shares, so the threads pack the same A rows
		// together.
		pm = (mt + mcTiles - 1) / mcTiles
		pn = threads
	} else if mt >= 2*threads {
		// Row parts, a multiple of threads so each gets the same share.
		pm = threads * ((mt + threads*mcTiles - 1) / (threads * mcTiles))
	} else {
		pm = (mt + mcTiles - 1) / mcTiles
		pn = min(threads, nt)
	}
	run := func(part int) {
		pi, pj := part/pn, part%pn
		t0, t1 := pi*mt/pm, (pi+1)*mt/pm
		j0, j1 := pj*nt/pn, (pj+1)*nt/pn
		if pb.bf != nil {
			gemmPartBF16(tA, alpha, a, lda, pb, beta, c, ldc, t0*tileRows, min(t1*tileRows, m), j0, j1)
			return
		}
		gemmPart(tA, m, alpha, a, lda, pb, beta, c, ldc, t0*tileRows, min(t1*tileRows, m), j0, j1)
	}
	if pm*pn == 1 {
		run(0)
		return
	}
	parallelFor(pm*pn, threads, run)
}

// gemmPart computes rows [r0,r1) × column panels [j0,j1) of C. Loop order
// (outer to inner): column block of ncMax, k pass, row block of mcMax (packed
// into L2), B micro-panel (L1), A micro-panel.
func gemmPart(tA Transpose, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, r0, r1, j0, j1 int) {
	n, k, kc := pb.n, pb.k, pb.kc
	zmm := useZMM()
	tileRows := mr
	if zmm {
		tileRows = zr // the 24-row kernel reads four A tiles even at the edge
	}
	abuf := getFloats(roundUp(min(mcMax, r1-r0), tileRows) / mr * aTileStride(kc))
	defer putFloats(abuf)
	ap := *abuf
	var tmp [zr * nr]float32 // edge tile: 24×16, 12×32, 6×16, or 12×8 for narrow panels
	narrow := hasNarrowKernel()
	ncPanels := max(1, ncMax/nr)
	firstMode := firstPassMode(beta)
	for jc := j0; jc < j1; jc += ncPanels {
		jce := min(jc+ncPanels, j1)
		// upcoming is the B data used after the count panels from jp
		// (bp): the next count panels of the sweep, or the first of the
		// next pass (bp itself after the last) — prefetched into L2 a
		// slice per kernel call.
		upcoming := func(blk, jp, count int, bp []float32) []float32 {
			var next []float32
			switch {
			case jp+count < jce:
				next, _ = pb.panels(blk, jp+count, min(count, jce-jp-count))
			case (blk+1)*kc < k:
				next, _ = pb.panels(blk+1, jc, min(count, jce-jc))
			default:
				next = bp
			}
			return next
		}
		for blk, p0 := 0, 0; p0 < k; blk, p0 = blk+1, p0+kc {
			kcb := min(kc, k-p0)
			ts := aTileStride(kcb)
			mode := 1
			if blk == 0 {
				mode = firstMode
			}
			for ic := r0; ic < r1; ic += mcMax {
				mc := min(mcMax, r1-ic)
				packA(tA, a, lda, ic, mc, p0, kcb, alpha, ap)
				for jp := jc; jp < jce; jp++ {
					if zmm && usePairKernel && jp+1 < jce && (jp+2)*nr <= n {
						// Two whole panels side by side: 12×32 tiles
						// (adjacent panels, so the pair is one stream).
						bp, _ := pb.panels(blk, jp, 2)
						next := upcoming(blk, jp, 2, bp)
						pfStep12 := (kcb / 8) * 2 * nr
						col := jp * nr
						for ir := 0; ir < mc; ir += 2 * mr {
							rows := min(2*mr, mc-ir)
							at := ap[(ir/mr)*ts:]
							pf := next[min((ir/(2*mr))*pfStep12, len(next)-1):]
							ci := (ic+ir)*ldc + col
							if rows == 2*mr {
								microKernel12x32(kcb, at, ts, bp, nr*kcb, c[ci:], ldc, beta, mode, pf)
								continue
							}
							microKernel12x32(kcb, at, ts, bp, nr*kcb, tmp[:], 2*nr, 0, 0, pf)
							mergeTile(tmp[:], 2*nr, rows, 2*nr, c[ci:], ldc, beta, mode)
						}
						jp++
						continue
					}
					bp, _ := pb.panel(blk, jp)
					next := upcoming(blk, jp, 1, bp)
					pfStep := (kcb / 8) * nr
					col := jp * nr
					cols := min(nr, n-col)
					ir := 0
					if zmm {
						// Every row in 24-row tiles (four A tiles); a
						// last short tile is computed whole into tmp
						// (its rows past mc come from stale or padding
						// A rows and are dropped) and merged.
						pfStep24 := (kcb / 4) * nr
						for ; ir < mc; ir += zr {
							rows := min(zr, mc-ir)
							at := ap[(ir/mr)*ts:]
							pf := next[min((ir/zr)*pfStep24, len(next)-1):]
							ci := (ic+ir)*ldc + col
							if rows == zr && cols == nr {
								microKernel24x16(kcb, at, ts, bp, c[ci:], ldc, beta, mode, pf)
								continue
							}
							microKernel24x16(kcb, at, ts, bp, tmp[:], nr, 0, 0, pf)
							mergeTile(tmp[:], nr, rows, cols, c[ci:], ldc, beta, mode)
						}
					}
					if cols <= 8 && narrow {
						// Narrow panel: 12×8 tiles from pairs of A
						// tiles; a final lone tile falls through to
						// the 6×16 loop below.
						for ; ir+mr < mc; ir += 2 * mr {
							rows := min(2*mr, mc-ir)
							t := ir / mr
							a0 := ap[t*ts : t*ts+mr*kcb]
							a1 := ap[(t+1)*ts : (t+1)*ts+mr*kcb]
							ci := (ic+ir)*ldc + col
							if rows == 2*mr && cols == 8 {
								microKernel12x8(kcb, a0, a1, bp, c[ci:], ldc, beta, mode)
								continue
							}
							microKernel12x8(kcb, a0, a1, bp, tmp[:], 8, 0, 0)
							mergeTile(tmp[:], 8, rows, cols, c[ci:], ldc, beta, mode)
						}
					}
					for ; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						at := ap[(ir/mr)*ts : (ir/mr)*ts+mr*kcb]
						pf := next[min((ir/mr)*pfStep, len(next)-1):]
						ci := (ic+ir)*ldc + col
						if rows == mr && cols == nr {
							microKernel(kcb, at, bp, c[ci:], ldc, beta, mode, pf)
							continue
						}
						// Edge tile: compute the full 6×16 tile into tmp
						// (padding rows/columns of the packed operands are
						// zero) and merge only the valid part into C.
						microKernel(kcb, at, bp, tmp[:], nr, 0, 0, pf)
						mergeTile(tmp[:], nr, rows, cols, c[ci:], ldc, beta, mode)
					}
				}
			}
		}
	}
}

// usePairKernel sends pairs of whole column panels to the 12×32 AVX-512
// kernel (tests turn it off to compare with the 24×16 one).
var usePairKernel = true

// firstPassMode is the kernels' store mode for the first k pass: 0
// overwrite (beta 0: old C, even NaN, ignored), 1 add, 2 beta·C + acc.
// Later passes add (mode 1).
func firstPassMode(beta float32) int {
	switch beta {
	case 0:
		return 0
	case 1:
		return 1
	}
	return 2
}

// mergeTile applies a computed tile (rows×cols valid, row stride ts) to C
// with the kernel's mode semantics.
func mergeTile(t []float32, ts, rows, cols int, c []float32, ldc int, beta float32, mode int) {
	for i := 0; i < rows; i++ {
		ti := t[i*ts : i*ts+cols]
		ci := c[i*ldc : i*ldc+cols]
		switch mode {
		case 0:
			copy(ci, ti)
		case 1:
			for j, v := range ti {
				ci[j] += v
			}
		default:
			for j, v := range ti {
				ci[j] = beta*ci[j] + v
			}
		}
	}
}

// aTileStride is the distance in floats between consecutive packed A tiles
// for depth kcb: the tile itself plus one cache line. Without the pad the
// stride is kcb·24 bytes (9 KiB at kcb=384, 6 KiB at 256), which maps the
// tiles' lines onto a handful of L1 sets, and the row-major sweep of
// packATilesT, which writes to every tile in turn, would thrash them.
func aTileStride(kcb int) int { return kcb*mr + 16 }

// packA packs rows [ic, ic+mc) and k range [p0, p0+kcb) of op(A), scaled by
// alpha, into dst as mr-row micro-panels: tile t occupies
// dst[t·aTileStride(kcb):] and holds element (row t·mr+i, k p0+p) at p·mr+i.
// Rows past mc are zero.
func packA(tA Transpose, a []float32, lda, ic, mc, p0, kcb int, alpha float32, dst []float32) {
	full := mc / mr
	ts := aTileStride(kcb)
	if tA {
		// op(A)[i][p] = A[p][i]: all full tiles in one row-major sweep.
		base := p0*lda + ic
		if full > 0 {
			packATilesT(full, kcb, a[base:], lda, dst, ts, alpha)
		}
		if rows := mc - full*mr; rows > 0 {
			d := dst[full*ts : full*ts+mr*kcb]
			base += full * mr
			for p := 0; p < kcb; p++ {
				src := a[base+p*lda : base+p*lda+rows]
				dp := d[p*mr : p*mr+mr]
				for i := range dp {
					if i < rows {
						dp[i] = alpha * src[i]
					} else {
						dp[i] = 0
					}
				}
			}
		}
		return
	}
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[(ir/mr)*ts : (ir/mr)*ts+mr*kcb]
		base := (ic+ir)*lda + p0
		if rows == mr {
			packATile6N(kcb, a[base:], lda, d, alpha)
			continue
		}
		for i := 0; i < mr; i++ {
			if i >= rows {
				for p := 0; p < kcb; p++ {
					d[p*mr+i] = 0
				}
				continue
			}
			src := a[base+i*lda : base+i*lda+kcb]
			for p, v := range src {
				d[p*mr+i] = alpha * v
			}
		}
	}
}

// packATile6NGo packs a full 6-row tile of a row-major A (rows at a[i·lda:],
// kc contiguous k values each) into d (kc×6, k-major).
func packATile6NGo(kc int, a []float32, lda int, d []float32, alpha float32) {
	r0 := a[0:kc]
	r1 := a[lda : lda+kc]
	r2 := a[2*lda : 2*lda+kc]
	r3 := a[3*lda : 3*lda+kc]
	r4 := a[4*lda : 4*lda+kc]
	r5 := a[5*lda : 5*lda+kc]
	d = d[:kc*mr]
	for p := range r0 {
		dp := d[p*mr : p*mr+mr : p*mr+mr]
		dp[0] = alpha * r0[p]
		dp[1] = alpha * r1[p]
		dp[2] = alpha * r2[p]
		dp[3] = alpha * r3[p]
		dp[4] = alpha * r4[p]
		dp[5] = alpha * r5[p]
	}
}

// packATilesTGo packs ntiles full 6-row tiles of a transposed A: k step p
// of tile t is the 6 contiguous floats a[p·lda+6t:], stored at
// d[t·ts+p·6:]. Each k step's row is read front to back.
func packATilesTGo(ntiles, kc int, a []float32, lda int, d []float32, ts int, alpha float32) {
	d = d[:(ntiles-1)*ts+kc*mr]
	for p := 0; p < kc; p++ {
		row := a[p*lda : p*lda+ntiles*mr]
		for t := 0; t < ntiles; t++ {
			src := row[t*mr : t*mr+mr : t*mr+mr]
			o := t*ts + p*mr
			dp := d[o : o+mr : o+mr]
			dp[0] = alpha * src[0]
			dp[1] = alpha * src[1]
			dp[2] = alpha * src[2]
			dp[3] = alpha * src[3]
			dp[4] = alpha * src[4]
			dp[5] = alpha * src[5]
		}
	}
}

// packBAll packs all of op(B) into pb.data (layout in PackedB), splitting the
// panels over threads when B is large.
func packBAll(pb *PackedB, tB Transpose, b []float32, ldb int, threads int) {
	k, n, kc := pb.k, pb.n, pb.kc
	nt := (n + nr - 1) / nr
	nblk := (k + kc - 1) / kc
	total := nt * nblk
	one := func(i int) {
		blk, jp := i/nt, i%nt
		p0 := blk * kc
		d, kcb := pb.panel(blk, jp)
		packBPanel(tB, b, ldb, p0, kcb, jp*nr, min(nr, n-jp*nr), d)
	}
	forChunks(total, threads, k*n < 1<<16, one)
}

// packBPanel packs op(B)[p0:p0+kcb, j0:j0+cols] into d (kcb×16, k-major),
// zero-filling columns cols..15.
func packBPanel(tB Transpose, b []float32, ldb, p0, kcb, j0, cols int, d []float32) {
	if tB {
		// op(B)[p][j] = B[j][p]: column j of the panel is a contiguous run of
		// row j0+j of the stored B.
		base := j0*ldb + p0
		if cols == nr {
			packBPanel16T(kcb, b[base:], ldb, d)
			return
		}
		clear(d)
		for j := 0; j < cols; j++ {
			src := b[base+j*ldb : base+j*ldb+kcb]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
		return
	}
	base := p0*ldb + j0
	if cols == nr {
		packBPanel16N(kcb, b[base:], ldb, d)
		return
	}
	for p := 0; p < kcb; p++ {
		dp := d[p*nr : p*nr+nr]
		copy(dp, b[base+p*ldb:base+p*ldb+cols])
		clear(dp[cols:])
	}
}

// packBPanel16NGo copies kc rows of 16 contiguous floats (stride ldb) into d.
func packBPanel16NGo(kc int, b []float32, ldb int, d []float32) {
	for p := 0; p < kc; p++ {
		copy(d[p*nr:p*nr+nr], b[p*ldb:p*ldb+nr])
	}
}

// packBPanel16TGo transposes a 16×kc block of B (rows at b[j·ldb:]) into d
// (kc×16).
func packBPanel16TGo(kc int, b []float32, ldb int, d []float32) {
	d = d[:kc*nr]
	for j := 0; j < nr; j++ {
		src := b[j*ldb : j*ldb+kc]
		for p, v := range src {
			d[p*nr+j] = v
		}
	}
}

// Scratch buffers (packed A blocks, packed B copies, bf16 packing) are
// recycled through pools, one per power-of-two size class so a request
// never keeps getting a buffer that is too small. Steady-state Gemm calls
// do not allocate.
type scratchPool[T float32 | uint16] struct{ classes [48]sync.Pool }

var (
	floatPool  scratchPool[float32]
	uint16Pool scratchPool[uint16]
)

// get returns a 64-byte aligned scratch slice of length n (contents
// arbitrary).
func (sp *scratchPool[T]) get(n int) *[]T {
	class := bits.Len(uint(max(n, 1) - 1))
	if v := sp.classes[class].Get(); v != nil {
		p := v.(*[]T)
		*p = (*p)[:n]
		return p
	}
	s := aligned[T](1 << class)[:n]
	return &s
}

// put recycles a slice from get (others are dropped).
func (sp *scratchPool[T]) put(p *[]T) {
	c := cap(*p)
	if class := bits.Len(uint(c - 1)); c == 1<<class {
		sp.classes[class].Put(p)
	}
}

func getFloats(n int) *[]float32    { return floatPool.get(n) }
func putFloats(p *[]float32)        { floatPool.put(p) }
func getUint16s(n int) *[]uint16    { return uint16Pool.get(n) }
func putUint16s(p *[]uint16)        { uint16Pool.put(p) }
func alignedFloats(n int) []float32 { return aligned[float32](n) }

// aligned allocates n zeroed values starting on a 64-byte boundary, so the
// kernels' vector loads of packed panels never split a cache line.
func aligned[T float32 | uint16](n int) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	s := make([]T, n+64/size)
	off := 0
	if r := uintptr(unsafe.Pointer(&s[0])) % 64; r != 0 {
		off = int(64-r) / size
	}
	return s[off : off+n : off+n]
}
