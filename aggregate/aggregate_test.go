package aggregate

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
	"github.com/kronfed/kronfed/safetensors"
)

func kronSet(t *testing.T, seed uint64, targets []adapter.Target) *adapter.Set {
	t.Helper()
	c := adapter.DefaultConfig(adapter.KindKron)
	c.DA2 = 2
	rng := rand.New(rand.NewPCG(seed, 1))
	s, err := adapter.NewSet(c, "base", targets, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.5)
		}
	}
	return s
}

// deltaW64 materializes A⊗(B1·B2) (unscaled) in float64 with explicit loops.
func deltaW64(k *adapter.Kron) []float64 {
	sh := k.Shape
	r, dA2, dB2, dB1 := sh.Rank, sh.DA2, sh.DB2(), sh.DB1()
	out := make([]float64, sh.DOut*sh.DIn)
	for i := 0; i < dA2; i++ {
		for j := 0; j < adapter.KronDA1; j++ {
			for a := 0; a < dB2; a++ {
				for b := 0; b < dB1; b++ {
					var bv float64
					for q := 0; q < r; q++ {
						bv += float64(k.B1[a*r+q]) * float64(k.B2[q*dB1+b])
					}
					out[(i*dB2+a)*sh.DIn+j*dB1+b] = float64(k.A[i*adapter.KronDA1+j]) * bv
				}
			}
		}
	}
	return out
}

var targets = []adapter.Target{{Name: "m.q", DOut: 24, DIn: 20}, {Name: "m.down", DOut: 12, DIn: 40}}

// TestKronExactAgainstDense: the reported error equals the dense error of
// the re-fit against the dense weighted sum, the re-fit beats factor
// averaging, and identical clients aggregate exactly — on both of refit's
// paths (these sizes take the explicit one; preferFactored forces the other),
// which must also agree with each other.
func TestKronExactAgainstDense(t *testing.T) {
	var paths [2]*adapter.Set
	for i, factored := range []bool{false, true} {
		t.Run(map[bool]string{false: "explicit", true: "factored"}[factored], func(t *testing.T) {
			saved := preferFactored
			preferFactored = factored
			defer func() { preferFactored = saved }()
			paths[i] = kronExactAgainstDense(t)
		})
	}
	for mi := range targets {
		a, b := deltaW64(paths[0].Modules[mi].Layer.(*adapter.Kron)), deltaW64(paths[1].Modules[mi].Layer.(*adapter.Kron))
		var num, den float64
		for k := range a {
			num += (a[k] - b[k]) * (a[k] - b[k])
			den += b[k] * b[k]
		}
		if rel := math.Sqrt(num / den); rel > 1e-5 {
			t.Errorf("%s: the explicit and factored paths' ΔW differ by %.3g (relative)", targets[mi].Name, rel)
		}
	}
}

func kronExactAgainstDense(t *testing.T) *adapter.Set {
	var ups []Weighted
	for i := 0; i < 5; i++ {
		ups = append(ups, Weighted{Set: kronSet(t, uint64(i), targets), Weight: float64(10 + 7*i)})
	}
	got, errs, err := KronExact(ups)
	if err != nil {
		t.Fatal(err)
	}
	avg, _ := FedAvg(ups)
	var total float64
	for _, u := range ups {
		total += u.Weight
	}
	for mi := range targets {
		exact := make([]float64, targets[mi].DOut*targets[mi].DIn)
		for _, u := range ups {
			for k, v := range deltaW64(u.Set.Modules[mi].Layer.(*adapter.Kron)) {
				exact[k] += u.Weight / total * v
			}
		}
		rel := func(w []float64) float64 {
			var num, den float64
			for k := range w {
				num += (w[k] - exact[k]) * (w[k] - exact[k])
				den += exact[k] * exact[k]
			}
			return math.Sqrt(num / den)
		}
		fit := rel(deltaW64(got.Modules[mi].Layer.(*adapter.Kron)))
		naive := rel(deltaW64(avg.Modules[mi].Layer.(*adapter.Kron)))
		if math.Abs(fit-errs[mi].Rel) > 1e-4 {
			t.Errorf("%s: reported error %.6f, dense %.6f", targets[mi].Name, errs[mi].Rel, fit)
		}
		if !(fit < naive) {
			t.Errorf("%s: re-fit error %.4f not below factor averaging's %.4f", targets[mi].Name, fit, naive)
		}
		t.Logf("%s: Kron-aware error %.4f, factor FedAvg error %.4f", targets[mi].Name, fit, naive)
	}
	// Identical clients: the sum is one Kronecker product of rank r: exact.
	same := kronSet(t, 9, targets)
	_, errs, err = KronExact([]Weighted{{same, 1}, {same.Clone(), 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		if e.Rel > 1e-5 {
			t.Errorf("%s: identical clients aggregated with error %.3g", e.Module, e.Rel)
		}
	}
	return got
}

func TestRobustRules(t *testing.T) {
	var ups []Weighted
	for i := 0; i < 5; i++ {
		ups = append(ups, Weighted{Set: kronSet(t, uint64(i), targets), Weight: 1})
	}
	// One poisoned client.
	for _, p := range ups[4].Set.Params() {
		for i := range p.Data {
			p.Data[i] = 1e6
		}
	}
	med, tm := medianAndTrimmed(t, ups)
	avg, _ := FedAvg(ups)
	for j, p := range med.Params() {
		for k := range p.Data {
			vals := sortedValues(ups, j, k)
			if p.Data[k] != vals[2] {
				t.Fatalf("median %s[%d] = %v, want %v", p.Name, k, p.Data[k], vals[2])
			}
			want := (float64(vals[1]) + float64(vals[2]) + float64(vals[3])) / 3
			if math.Abs(float64(tm.Params()[j].Data[k])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("trimmed mean %s[%d] = %v, want %v", p.Name, k, tm.Params()[j].Data[k], want)
			}
			if avg.Params()[j].Data[k] < 1e5 {
				t.Fatal("FedAvg should be dragged by the poisoned client")
			}
		}
	}
}

func TestAggregateErrors(t *testing.T) {
	a := kronSet(t, 1, targets)
	b := kronSet(t, 2, targets[:1])
	if _, err := FedAvg([]Weighted{{a, 1}, {b, 1}}); err == nil || !strings.Contains(err.Error(), "update 1") {
		t.Errorf("mismatched module lists: %v", err)
	}
	if _, err := FedAvg([]Weighted{{a, 0}}); err == nil || !strings.Contains(err.Error(), "weight 0") {
		t.Errorf("zero weight: %v", err)
	}
	if _, err := FedAvg(nil); err == nil {
		t.Error("no updates accepted")
	}
	c := a.Clone()
	c.Modules[0].Layer.Factors()[1].Data[3] = float32(math.NaN())
	if _, err := FedAvg([]Weighted{{a, 1}, {c, 1}}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN update: %v", err)
	}
	// Several bad updates (checked side by side): the first one is named.
	inf := a.Clone()
	inf.Modules[0].Layer.Factors()[0].Data[0] = float32(math.Inf(1))
	ws := []Weighted{{a, 1}, {a, 1}, {a, 1}, {c, 1}, {a, 1}, {inf, 1}, {c, 1}}
	if _, err := FedAvg(ws); err == nil || !strings.Contains(err.Error(), "update 3:") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("updates 3, 5 and 6 bad: %v", err)
	}
	if _, err := TrimmedMean([]Weighted{{a, 1}}, 0.5); err == nil {
		t.Error("trim fraction 0.5 accepted")
	}
}

// TestFedAdam checks two steps against the update rule written out in
// float64, and that repeated steps toward a fixed aggregate converge to it.
func TestFedAdam(t *testing.T) {
	global := kronSet(t, 1, targets)
	target := kronSet(t, 2, targets)
	g0 := append([]float32(nil), global.Params()[0].Data...)
	tgt := target.Params()[0].Data
	o := NewFedAdam(0.1, 1e-2)
	var m, v float64
	theta := float64(g0[0])
	for step := 0; step < 2; step++ {
		if err := o.Step(global, target); err != nil {
			t.Fatal(err)
		}
		d := float64(tgt[0]) - theta
		m = 0.9*m + 0.1*d
		v = 0.99*v + 0.01*d*d
		theta += 0.1 * m / (math.Sqrt(v) + 1e-2)
		if got := float64(global.Params()[0].Data[0]); math.Abs(got-theta) > 1e-5 {
			t.Fatalf("step %d: %v, want %v", step, got, theta)
		}
	}
	for step := 0; step < 300; step++ {
		if err := o.Step(global, target); err != nil {
			t.Fatal(err)
		}
	}
	for j, p := range global.Params() {
		for k, x := range p.Data {
			if math.Abs(float64(x-target.Params()[j].Data[k])) > 0.05 {
				t.Fatalf("%s[%d] = %v after 300 steps, target %v", p.Name, k, x, target.Params()[j].Data[k])
			}
		}
	}
	if err := o.Step(global, kronSet(t, 3, targets[:1])); err == nil {
		t.Error("mismatched aggregate accepted")
	}
}

// TestFedAdamMomentsRoundTrip: an optimizer restored from MarshalMoments
// takes the next step bit for bit like the one that never stopped; a clone
// steps without touching the original; damaged or foreign moments are
// refused with the reason.
func TestFedAdamMomentsRoundTrip(t *testing.T) {
	global := kronSet(t, 1, targets)
	target := kronSet(t, 2, targets)
	o := NewFedAdam(0.1, 1e-2)
	if b, err := o.MarshalMoments(global); b != nil || err != nil {
		t.Fatalf("moments before the first step: %d bytes, %v", len(b), err)
	}
	for range 2 {
		if err := o.Step(global, target); err != nil {
			t.Fatal(err)
		}
	}
	saved, err := o.MarshalMoments(global)
	if err != nil {
		t.Fatal(err)
	}
	restored := NewFedAdam(0.1, 1e-2)
	if err := restored.UnmarshalMoments(saved, global); err != nil {
		t.Fatal(err)
	}
	a, b := global.Clone(), global.Clone()
	trial := o.Clone()
	if err := trial.Step(global.Clone(), target); err != nil {
		t.Fatal(err)
	}
	if again, _ := o.MarshalMoments(global); !bytes.Equal(again, saved) {
		t.Fatal("stepping a clone changed the original's moments")
	}
	if err := o.Step(a, target); err != nil {
		t.Fatal(err)
	}
	if err := restored.Step(b, target); err != nil {
		t.Fatal(err)
	}
	for i, p := range a.Params() {
		for k := range p.Data {
			if math.Float32bits(p.Data[k]) != math.Float32bits(b.Params()[i].Data[k]) {
				t.Fatalf("%s[%d]: %v uninterrupted, %v restored", p.Name, k, p.Data[k], b.Params()[i].Data[k])
			}
		}
	}

	name := global.Params()[0].Name
	rows, cols := global.Params()[0].Rows, global.Params()[0].Cols
	rewrite := func(edit func(ts []safetensors.Tensor, meta map[string]string) []safetensors.Tensor) []byte {
		f, err := safetensors.Parse(saved)
		if err != nil {
			t.Fatal(err)
		}
		var ts []safetensors.Tensor
		for _, info := range f.Tensors() {
			data, _ := f.Float64(info.Name)
			ts = append(ts, safetensors.F64Tensor(info.Name, info.Shape, data))
		}
		meta := map[string]string{"format": "kronfed-fedadam-moments"}
		ts = edit(ts, meta)
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, meta, ts); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cases := map[string][]byte{
		"safetensors":   []byte("not a file"),
		`format "x"`:    rewrite(func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor { m["format"] = "x"; return ts }),
		"tensors, want": rewrite(func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor { return ts[1:] }),
		"has shape": rewrite(func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "v."+name {
					ts[i].Shape = []int{rows * cols} // same values, not the factor's shape
				}
			}
			return ts
		}),
		"want finite, v ≥ 0": rewrite(func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "v."+name {
					v := make([]float64, rows*cols)
					v[0] = -1
					ts[i] = safetensors.F64Tensor(ts[i].Name, ts[i].Shape, v)
				}
			}
			return ts
		}),
	}
	for want, b := range cases {
		err := NewFedAdam(0.1, 1e-2).UnmarshalMoments(b, global)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	if err := NewFedAdam(0.1, 1e-2).UnmarshalMoments(saved, kronSet(t, 3, targets[:1])); err == nil {
		t.Error("moments of another adapter layout accepted")
	}
}

// TestCoordinatewiseAgainstSort: Median and TrimmedMean equal a plain
// sort of each coordinate's values, for client counts odd and even, below,
// at and past the sorting network's sixteen lanes and powers of two, with
// ties (a third of the clients repeat another's tensors).
func TestCoordinatewiseAgainstSort(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 16, 17, 33, 64, 100} {
		var ups []Weighted
		for i := 0; i < n; i++ {
			s := kronSet(t, uint64(100+i), targets[:2])
			if i%3 == 2 {
				s = ups[i-1].Set.Clone()
			}
			ups = append(ups, Weighted{Set: s, Weight: 1})
		}
		med, tm := medianAndTrimmed(t, ups)
		k := int(0.2 * float64(n))
		for j, p := range med.Params() {
			for c := range p.Data {
				vals := sortedValues(ups, j, c)
				want := float64(vals[n/2])
				if n%2 == 0 {
					want = (float64(vals[n/2-1]) + float64(vals[n/2])) / 2
				}
				if p.Data[c] != float32(want) {
					t.Fatalf("n=%d: median %s[%d] = %v, want %v", n, p.Name, c, p.Data[c], want)
				}
				var s float64
				for _, v := range vals[k : n-k] {
					s += float64(v)
				}
				if got := tm.Params()[j].Data[c]; got != float32(s/float64(n-2*k)) {
					t.Fatalf("n=%d: trimmed mean %s[%d] = %v, want %v", n, p.Name, c, got, s/float64(n-2*k))
				}
			}
		}
	}
}

// sortedValues is coordinate c of every client's tensor j, sorted.
func sortedValues(ups []Weighted, j, c int) []float32 {
	vals := make([]float32, len(ups))
	for i, u := range ups {
		vals[i] = u.Set.Params()[j].Data[c]
	}
	slices.Sort(vals)
	return vals
}

// medianAndTrimmed aggregates ups by Median and by TrimmedMean(0.2).
func medianAndTrimmed(t *testing.T, ups []Weighted) (med, tm *adapter.Set) {
	t.Helper()
	med, err := Median(ups)
	if err != nil {
		t.Fatal(err)
	}
	tm, err = TrimmedMean(ups, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	return med, tm
}

// TestExactRulesHugeFactors: factors near 1e19 are finite, so accepted,
// and the exact rules' float32 products of them would overflow unless
// scaled first. Clients scaled by 1e19 must re-fit to the unscaled
// clients' re-fit scaled by 1e19³ (Kron-LoRA's A⊗(B1·B2)) or 1e19² (LoRA's
// B·A), with the same reported errors, on both paths of both rules.
func TestExactRulesHugeFactors(t *testing.T) {
	const big = 1e19
	scaled := func(s *adapter.Set) *adapter.Set {
		c := s.Clone()
		for _, p := range c.Params() {
			for k := range p.Data {
				p.Data[k] *= big
			}
		}
		return c
	}
	rel := func(got, want []float64, f float64) float64 {
		var num, den float64
		for k := range got {
			d := got[k]/f - want[k]
			num += d * d
			den += want[k] * want[k]
		}
		return math.Sqrt(num / den)
	}
	loraDelta := func(l *adapter.LoRA) []float64 { // B·A in float64
		q, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
		out := make([]float64, dOut*dIn)
		for i := 0; i < dOut; i++ {
			for j := 0; j < dIn; j++ {
				for c := 0; c < q; c++ {
					out[i*dIn+j] += float64(l.B[i*q+c]) * float64(l.A[c*dIn+j])
				}
			}
		}
		return out
	}
	lc := adapter.DefaultConfig(adapter.KindLoRA)
	lc.Rank = 2
	loraTargets := []adapter.Target{{Name: "q", DOut: 10, DIn: 7}}
	for _, factored := range []bool{false, true} {
		t.Run(map[bool]string{false: "by size", true: "factored"}[factored], func(t *testing.T) {
			saved := preferFactored
			preferFactored = factored
			defer func() { preferFactored = saved }()
			var ks, kh, ls, lh []Weighted
			for i := 0; i < 5; i++ {
				s := kronSet(t, uint64(i), targets)
				ks, kh = append(ks, Weighted{s, float64(1 + i)}), append(kh, Weighted{scaled(s), float64(1 + i)})
				l := adaptertest.Random(t, lc, "m", loraTargets, uint64(i+1))
				ls, lh = append(ls, Weighted{l, float64(1 + i)}), append(lh, Weighted{scaled(l), float64(1 + i)})
			}
			a, errsA, err := KronExact(ks)
			if err != nil {
				t.Fatal(err)
			}
			b, errsB, err := KronExact(kh)
			if err != nil {
				t.Fatalf("clients scaled by %g: %v", big, err)
			}
			for mi := range targets {
				got, want := deltaW64(b.Modules[mi].Layer.(*adapter.Kron)), deltaW64(a.Modules[mi].Layer.(*adapter.Kron))
				if d := rel(got, want, big*big*big); d > 1e-5 {
					t.Errorf("kron-exact %s: ΔW of scaled clients off by %.3g (relative)", targets[mi].Name, d)
				}
				if math.Abs(errsA[mi].Rel-errsB[mi].Rel) > 1e-5 {
					t.Errorf("kron-exact %s: error %.6f scaled, %.6f not", targets[mi].Name, errsB[mi].Rel, errsA[mi].Rel)
				}
			}
			la, lerrA, err := LoRAExact(ls)
			if err != nil {
				t.Fatal(err)
			}
			lb, lerrB, err := LoRAExact(lh)
			if err != nil {
				t.Fatalf("lora clients scaled by %g: %v", big, err)
			}
			got, want := loraDelta(lb.Modules[0].Layer.(*adapter.LoRA)), loraDelta(la.Modules[0].Layer.(*adapter.LoRA))
			if d := rel(got, want, big*big); d > 1e-5 || math.Abs(lerrA[0].Rel-lerrB[0].Rel) > 1e-5 {
				t.Errorf("lora-exact: ΔW of scaled clients off by %.3g, errors %.6f / %.6f", d, lerrB[0].Rel, lerrA[0].Rel)
			}
		})
	}
}
