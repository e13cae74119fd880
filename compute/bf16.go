package compute

import (
	"fmt"
	"math"
	"unsafe"
)

// bfloat16 frozen weights.
//
// A bf16 value is the top 16 bits of a float32 (8 exponent bits, 7 stored
// mantissa bits): the same range, about 3 significant digits. Frozen
// weights packed as bf16 take half the memory of float32 and, where the CPU
// has AVX512_BF16, multiply through VDPBF16PS, which does a row's 16 lanes ×
// 2 k values per instruction with fp32 accumulation — twice the fp32 FMA
// rate. Activations are rounded to bf16 only as the left operand of such a
// product (when op(A) is packed); C, and everything outside these GEMMs
// (adapters, their gradients, the optimizer), stays float32.

// BF16 rounds f to the nearest bf16 (ties to even), returned as its bits.
// NaN stays NaN (quiet); values beyond the largest bf16 round to ±Inf as
// IEEE rounding says.
func BF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep it NaN after the shift
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// BF16ToFloat32 widens a bf16 (exactly).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// kcMaxBF16 is the depth of one bf16 pass: a B micro-panel is kc/2 pair
// rows × 64 bytes, so 768 keeps the panel at 24 KiB in L1 (as the fp32
// kernel's 384) and takes a 768-deep product in one pass (half the C
// traffic).
const kcMaxBF16 = 768

// chooseKCBF16 is chooseKC for bf16 passes: equal passes of at most
// kcMaxBF16, rounded up to even so that pairs never straddle two passes.
func chooseKCBF16(k int) int {
	nb := max(1, (k+kcMaxBF16-1)/kcMaxBF16)
	return roundUp(max((k+nb-1)/nb, 1), 2)
}

// HasBF16 reports whether this CPU runs the bf16 frozen-weight kernels
// (AVX512_BF16 with the ZMM state saved by the OS).
func HasBF16() bool { return useAsm && hasAVX512BF16() }

// bf16MinSpeedup is the measured bf16/fp32 multiply-add rate above which
// bf16 frozen weights are worth their rounding.
const bf16MinSpeedup = 1.3

// BF16Pays reports whether bf16 frozen weights make the frozen GEMMs
// faster here (HasBF16, and the bf16 products measured at least 1.3× the
// fp32 FMA rate, once per process), and why: the default precision follows
// it. Explicit bf16 works wherever HasBF16 does.
func BF16Pays() (bool, string) {
	d := bf16Choice()
	return d.use && HasBF16(), d.reason
}

// PackBBF16 is PackB with op(B) rounded to bf16 (see PackedB for the fp32
// layout; the bf16 layout is in packBPanelBF16). It refuses a B holding NaN
// or ±Inf, naming the first such element as (row, column) of op(B), and
// a CPU without AVX512_BF16 (HasBF16): there is no portable bf16 kernel,
// as a slow one would only hide the mistake of asking for bf16 there.
func PackBBF16(tB Transpose, k, n int, b []float32, ldb int) (*PackedB, error) {
	checkPackB("PackBBF16", tB, k, n, b, ldb)
	if !HasBF16() {
		return nil, fmt.Errorf("bf16 weights need a CPU with AVX512_BF16 (and AVX-512 enabled by the OS); this one has none")
	}
	kc := chooseKCBF16(k)
	pb := &PackedB{k: k, n: n, kc: kc, bf: aligned[uint16](bf16Size(k, n, kc))} // zeroed: padding stays 0
	// One row-major pass: the first non-finite value met is the first in
	// op(B)'s row order, which the error names.
	for p := 0; p < k; p++ {
		blk := p / kc
		q, h := (p-blk*kc)/2, p%2
		for j0 := 0; j0 < n; j0 += nr {
			d, _ := pb.panelBF16(blk, j0/nr)
			for j := j0; j < min(j0+nr, n); j++ {
				var v float32
				if tB {
					v = b[j*ldb+p]
				} else {
					v = b[p*ldb+j]
				}
				if v != v || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("element (%d, %d) of the %d×%d operand is %v", p, j, k, n, v)
				}
				d[(q*nr+j-j0)*2+h] = BF16(v)
			}
		}
	}
	return pb, nil
}

// bf16Size is the packed bf16 size in uint16s: every pass padded to whole
// k pairs, every row of pairs 16 columns × 2 wide.
func bf16Size(k, n, kc int) int {
	size := 0
	for p0 := 0; p0 < k; p0 += kc {
		size += roundUp(min(kc, k-p0), 2) * roundUp(n, nr)
	}
	return size
}

// panelBF16 returns the packed bf16 micro-panel jp of pass blk and that
// pass's number of k pairs. Pass blk starts at blk·kc·npad (kc is even, so
// only the last pass can be short) and its panel jp at jp·32·pairs.
func (p *PackedB) panelBF16(blk, jp int) ([]uint16, int) {
	p0 := blk * p.kc
	pairs := (min(p.kc, p.k-p0) + 1) / 2
	off := p0*roundUp(p.n, nr) + jp*2*nr*pairs
	return p.bf[off : off+2*nr*pairs], pairs
}

// packABF16 packs rows [ic, ic+mc) and k range [p0, p0+kcb) of
// alpha·op(A) into dst as bf16 pair tiles of 6 rows: tile t at
// dst[t·ts:], pair q of row i at dst[(q·6+i)·2 : +2] (k even, k odd). Rows
// past mc and an odd last k are zero.
//
// A row-major A (the frozen path's activations) is rounded a row at a time
// into pair words (bf16Pairs, AVX-512 where it runs) and then laid out by
// the fp32 tile packer, which moves 32-bit words: a pair word is packed like
// one float (times alpha 1: exact, except that a pair whose odd half is
// ±Inf may come out NaN — only when A already holds Inf).
func packABF16(tA Transpose, a []float32, lda, ic, mc, p0, kcb int, alpha float32, dst []uint16, ts int) {
	pairs := (kcb + 1) / 2
	d32 := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[0])), len(dst)/2)
	if tA {
		for ir := 0; ir < roundUp(mc, mr); ir += mr {
			d := d32[(ir/mr)*ts/2 : (ir/mr)*ts/2+mr*pairs]
			for i := 0; i < mr; i++ {
				for q := 0; q < pairs; q++ {
					var lo, hi uint16
					if ir+i < mc {
						col := (p0+2*q)*lda + ic + ir + i
						lo = BF16(alpha * a[col])
						if 2*q+1 < kcb {
							hi = BF16(alpha * a[col+lda])
						}
					}
					d[q*mr+i] = uint32(lo) | uint32(hi)<<16
				}
			}
		}
		return
	}
	rows := getFloats(roundUp(mc, mr) * pairs)
	defer putFloats(rows)
	rf := *rows
	r32 := unsafe.Slice((*uint32)(unsafe.Pointer(&rf[0])), len(rf))
	for i := 0; i < mc; i++ {
		src := a[(ic+i)*lda+p0 : (ic+i)*lda+p0+kcb]
		bf16Pairs(r32[i*pairs:(i+1)*pairs], src, alpha)
	}
	df := unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst)/2)
	full := mc / mr
	for t := 0; t < full; t++ {
		packATile6N(pairs, rf[t*mr*pairs:], pairs, df[t*ts/2:], 1)
	}
	if rest := mc - full*mr; rest > 0 {
		d := d32[full*ts/2 : full*ts/2+mr*pairs]
		for q := 0; q < pairs; q++ {
			for i := 0; i < mr; i++ {
				var w uint32
				if i < rest {
					w = r32[(full*mr+i)*pairs+q]
				}
				d[q*mr+i] = w
			}
		}
	}
}

// bf16PairsGo is bf16Pairs in Go.
func bf16PairsGo(dst []uint32, src []float32, alpha float32) {
	dst = dst[:(len(src)+1)/2]
	for q := range dst {
		lo := BF16(alpha * src[2*q])
		var hi uint16
		if 2*q+1 < len(src) {
			hi = BF16(alpha * src[2*q+1])
		}
		dst[q] = uint32(lo) | uint32(hi)<<16
	}
}

// aTileStrideBF16 is the distance in uint16s between packed bf16 A tiles:
// the tile plus one cache line, as aTileStride.
func aTileStrideBF16(pairs int) int { return 2*mr*pairs + 32 }

// gemmPartBF16 is gemmPart for a bf16 PackedB: rows [r0,r1) × column panels
// [j0,j1) of C, all in 24×16 tiles of the VDPBF16PS kernel (edge tiles
// computed whole into tmp and merged).
func gemmPartBF16(tA Transpose, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, r0, r1, j0, j1 int) {
	n, k, kc := pb.n, pb.k, pb.kc
	maxPairs := (min(kc, k) + 1) / 2
	abuf := getUint16s(roundUp(min(mcMax, r1-r0), zr) / mr * aTileStrideBF16(maxPairs))
	defer putUint16s(abuf)
	ap := *abuf
	var tmp [zr * nr]float32
	firstMode := firstPassMode(beta)
	for blk, p0 := 0, 0; p0 < k; blk, p0 = blk+1, p0+kc {
		kcb := min(kc, k-p0)
		pairs := (kcb + 1) / 2
		ts := aTileStrideBF16(pairs)
		mode := 1
		if blk == 0 {
			mode = firstMode
		}
		for ic := r0; ic < r1; ic += mcMax {
			mc := min(mcMax, r1-ic)
			packABF16(tA, a, lda, ic, mc, p0, kcb, alpha, ap, ts)
			for jp := j0; jp < j1; jp++ {
				bp, _ := pb.panelBF16(blk, jp)
				col := jp * nr
				cols := min(nr, n-col)
				for ir := 0; ir < mc; ir += zr {
					rows := min(zr, mc-ir)
					at := ap[(ir/mr)*ts:]
					ci := (ic+ir)*ldc + col
					if rows == zr && cols == nr {
						microKernelBF16(pairs, at, ts, bp, c[ci:], ldc, beta, mode)
						continue
					}
					microKernelBF16(pairs, at, ts, bp, tmp[:], nr, 0, 0)
					mergeTile(tmp[:], nr, rows, cols, c[ci:], ldc, beta, mode)
				}
			}
		}
	}
}
