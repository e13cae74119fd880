package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// launchRec is one recorded launch.
type launchRec struct {
	entry       string
	grid, block [3]uint32
	shared      uint32
	args        []any
}

// recorder is a Launcher that records instead of launching (tests only).
type recorder struct{ launches []launchRec }

func (r *recorder) Launch(entry string, grid, block [3]uint32, shared uint32, args ...any) error {
	r.launches = append(r.launches, launchRec{entry, grid, block, shared, args})
	return nil
}

func TestSources(t *testing.T) {
	srcs := Sources()
	if len(srcs) < 8 {
		t.Fatalf("%d sources, want the kernel files", len(srcs))
	}
	names := map[string]bool{}
	for i, s := range srcs {
		if i > 0 && srcs[i-1].Name >= s.Name {
			t.Errorf("sources not sorted: %s before %s", srcs[i-1].Name, s.Name)
		}
		names[s.Name] = true
		sum := sha256.Sum256(s.Code)
		if s.Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: hash %s is not the sha256 of its code", s.Name, s.Hash)
		}
		if len(s.Entries) == 0 {
			t.Errorf("%s defines no entry", s.Name)
		}
		if regexp.MustCompile(`(?m)^\s*#\s*include`).Match(s.Code) {
			t.Errorf("%s has an #include: NVRTC compiles the kernels with no include path", s.Name)
		}
		for _, e := range s.Entries {
			got, err := SourceFor(e)
			if err != nil || got.Name != s.Name {
				t.Errorf("SourceFor(%s) = %s, %v; want %s", e, got.Name, err, s.Name)
			}
		}
	}
	for _, want := range []string{"attention.cu", "norm.cu", "loss.cu", "elementwise.cu"} {
		if !names[want] {
			t.Errorf("missing %s", want)
		}
	}
	// Stable: a second load gives the same hashes.
	again, err := loadSources(sourceFS)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if again[i].Hash != srcs[i].Hash || !slices.Equal(again[i].Entries, srcs[i].Entries) {
			t.Errorf("%s: second load differs", srcs[i].Name)
		}
	}
	if _, err := SourceFor("no_such_kernel"); err == nil {
		t.Error("SourceFor(unknown) succeeded")
	}
}

func TestSourceHashChangesWithCode(t *testing.T) {
	code := []byte("extern \"C\" __global__ void k(float* x) { x[0] = 1.f; }\n")
	a, err := loadSources(fstest.MapFS{"a.cu": {Data: code}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadSources(fstest.MapFS{"a.cu": {Data: append(slices.Clip(code), ' ')}})
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Hash == b[0].Hash {
		t.Error("a changed source kept its hash")
	}
	if _, err := loadSources(fstest.MapFS{"a.cu": {Data: code}, "b.cu": {Data: code}}); err == nil {
		t.Error("an entry defined in two files was accepted")
	}
}

func TestParseEntries(t *testing.T) {
	src := `
// extern "C" __global__ void commented(float* x)
extern "C" __global__ void plain(float* x) {}
extern "C" __global__ void __launch_bounds__(128) bounded(float* x) {}
  extern  "C"  __global__  void  spaced ( int n ) {}
static __device__ void helper(float* x) {}
extern "C" __global__ void __launch_bounds__(64, 2) two_bounds(KF_PARAMS)
{
}
`
	got := ParseEntries([]byte(src))
	want := []string{"plain", "bounded", "spaced", "two_bounds"}
	if !slices.Equal(got, want) {
		t.Errorf("ParseEntries = %v, want %v", got, want)
	}
}

// TestEntriesMatchWrappers checks both directions: every entry a wrapper
// launches is defined in some source, and every defined entry has a wrapper
// that launches it (no dead kernels). It also checks the argument list of
// every launch against the kernel's C parameter list.
func TestEntriesMatchWrappers(t *testing.T) {
	used := map[string]bool{}
	for _, c := range wrapperCases {
		r := &recorder{}
		if err := c.call(r, 0x1000, c.sizes); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(r.launches) == 0 {
			t.Errorf("%s launched nothing", c.name)
		}
		for _, l := range r.launches {
			used[l.entry] = true
			src, err := SourceFor(l.entry)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			params, err := kernelParams(src.Code, l.entry)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if len(params) != len(l.args) {
				t.Errorf("%s: %s takes %d parameters %v, the wrapper passes %d", c.name, l.entry, len(params), params, len(l.args))
				continue
			}
			for i, p := range params {
				if want, got := goTypeFor(p), fmt.Sprintf("%T", l.args[i]); want != got {
					t.Errorf("%s: %s parameter %d (%s) wants %s, the wrapper passes %s", c.name, l.entry, i, p, want, got)
				}
			}
		}
	}
	for _, s := range Sources() {
		for _, e := range s.Entries {
			if !used[e] {
				t.Errorf("%s: entry %s has no wrapper (or wrapperCases misses it)", s.Name, e)
			}
		}
	}
}

// kernelParams returns the C parameter declarations of entry in code,
// expanding the file's parameterless macros.
func kernelParams(code []byte, entry string) ([]string, error) {
	text := strings.ReplaceAll(string(code), "\\\n", " ")
	defs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define\s+(\w+)[ \t]+(.*)$`).FindAllStringSubmatch(text, -1) {
		defs[m[1]] = m[2]
	}
	re := regexp.MustCompile(`__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?` + entry + `\s*\(([^)]*)\)`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf("no definition of %s", entry)
	}
	var out []string
	for _, p := range strings.Split(m[1], ",") {
		p = strings.TrimSpace(p)
		if body, ok := defs[p]; ok {
			for _, q := range strings.Split(body, ",") {
				out = append(out, strings.TrimSpace(q))
			}
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// goTypeFor maps a C parameter declaration to the Go type the wrappers must
// pass for it (gpu/cuda's Launch conversions).
func goTypeFor(decl string) string {
	if strings.Contains(decl, "*") {
		return "uintptr"
	}
	f := strings.Fields(decl)
	typ := strings.Join(f[:len(f)-1], " ")
	switch typ {
	case "int":
		return "int32"
	case "long long":
		return "int64"
	case "unsigned long long":
		return "uint64"
	case "float":
		return "float32"
	case "unsigned", "unsigned int":
		return "uint32"
	}
	return "unknown C type " + typ
}

// wrapperCase calls one wrapper with every pointer p and the sizes s.
type wrapperCase struct {
	name  string
	sizes []int
	call  func(l Launcher, p uintptr, s []int) error
}

var wrapperCases = []wrapperCase{
	{"AddF32", []int{1000}, func(l Launcher, p uintptr, s []int) error { return AddF32(l, p, p, s[0]) }},
	{"ScaleF32", []int{1000}, func(l Launcher, p uintptr, s []int) error { return ScaleF32(l, p, 0.5, s[0]) }},
	{"FillF32", []int{1000}, func(l Launcher, p uintptr, s []int) error { return FillF32(l, p, 1, s[0]) }},
	{"F32ToBF16", []int{1000}, func(l Launcher, p uintptr, s []int) error { return F32ToBF16(l, p, p, s[0]) }},
	{"BF16ToF32", []int{1000}, func(l Launcher, p uintptr, s []int) error { return BF16ToF32(l, p, p, s[0]) }},
	{"BiasAdd", []int{100, 768}, func(l Launcher, p uintptr, s []int) error { return BiasAdd(l, p, p, s[0], s[1]) }},
	{"BiasGrad", []int{100, 768}, func(l Launcher, p uintptr, s []int) error { return BiasGrad(l, p, p, s[0], s[1]) }},
	{"SwiGLUForward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return SwiGLUForward(l, p, p, p, s[0]) }},
	{"SwiGLUBackward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return SwiGLUBackward(l, p, p, p, p, p, s[0]) }},
	{"GELUForward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return GELUForward(l, p, p, p, s[0]) }},
	{"GELUBackward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return GELUBackward(l, p, p, p, s[0]) }},
	{"ReLUForward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return ReLUForward(l, p, p, s[0]) }},
	{"ReLUBackward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return ReLUBackward(l, p, p, p, s[0]) }},
	{"DropoutMask", []int{1000}, func(l Launcher, p uintptr, s []int) error { return DropoutMask(l, p, s[0], 7, 0.1) }},
	{"DropoutApply", []int{1000}, func(l Launcher, p uintptr, s []int) error { return DropoutApply(l, p, p, p, 1.25, s[0], 64) }},
	{"DropoutAddBackward", []int{1000}, func(l Launcher, p uintptr, s []int) error { return DropoutAddBackward(l, p, p, p, 1.25, s[0]) }},
	{"EmbedGatherF32", []int{10, 64}, func(l Launcher, p uintptr, s []int) error { return EmbedGatherF32(l, p, p, p, s[0], s[1]) }},
	{"EmbedGatherBF16", []int{10, 64}, func(l Launcher, p uintptr, s []int) error { return EmbedGatherBF16(l, p, p, p, s[0], s[1]) }},
	{"AddRowsF32", []int{10, 64}, func(l Launcher, p uintptr, s []int) error { return AddRowsF32(l, p, p, p, s[0], s[1]) }},
	{"RMSNormForward", []int{10, 64}, func(l Launcher, p uintptr, s []int) error { return RMSNormForward(l, p, p, p, p, s[0], s[1], 1e-5) }},
	{"RMSNormBackward", []int{10, 64}, func(l Launcher, p uintptr, s []int) error { return RMSNormBackward(l, p, p, p, p, p, s[0], s[1]) }},
	{"LayerNormForward", []int{10, 768}, func(l Launcher, p uintptr, s []int) error {
		return LayerNormForward(l, p, p, p, p, p, p, s[0], s[1], 1e-12)
	}},
	{"LayerNormBackward", []int{10, 768}, func(l Launcher, p uintptr, s []int) error { return LayerNormBackward(l, p, p, p, p, p, p, s[0], s[1]) }},
	{"RopeApply", []int{10, 4, 64}, func(l Launcher, p uintptr, s []int) error {
		return RopeApply(l, p, p, p, p, s[0], s[1], s[2], 1, 1)
	}},
	{"CrossEntropy", []int{10, 32000}, func(l Launcher, p uintptr, s []int) error { return CrossEntropy(l, p, p, p, p, s[0], s[1], 0.1) }},
	{"TargetLogProb", []int{10, 32000}, func(l Launcher, p uintptr, s []int) error { return TargetLogProb(l, p, p, p, s[0], s[1]) }},
	{"KronMix", []int{10, 4, 8}, func(l Launcher, p uintptr, s []int) error { return KronMix(l, p, p, p, s[0], s[1], s[2]) }},
	{"KronUnmix", []int{10, 4, 8}, func(l Launcher, p uintptr, s []int) error { return KronUnmix(l, p, p, p, s[0], s[1], s[2]) }},
	{"KronGradA", []int{10, 4, 8}, func(l Launcher, p uintptr, s []int) error { return KronGradA(l, p, p, p, s[0], s[1], s[2]) }},
	{"AdamW", []int{1000}, func(l Launcher, p uintptr, s []int) error {
		return AdamW(l, p, p, p, p, s[0], NewAdamWStep(3e-4, 0.9, 0.999, 1e-8, 0, 1))
	}},
	{"SumSq", []int{1000}, func(l Launcher, p uintptr, s []int) error { return SumSq(l, p, p, s[0]) }},
}

// attentionCases adds one forward and one backward case per tile
// configuration (head dims 8, 64, 128, 256) to the wrapper cases.
func init() {
	for _, hd := range []int{8, 64, 128, 256} {
		wrapperCases = append(wrapperCases,
			wrapperCase{fmt.Sprintf("AttentionForward/hd%d", hd), []int{2, 300, 4, 2, hd}, func(l Launcher, p uintptr, s []int) error {
				return AttentionForward(l, p, p, p, p, p, p, p, 1.1, AttentionShape{B: s[0], T: s[1], H: s[2], KV: s[3], HD: s[4], Causal: true, Window: 64})
			}},
			wrapperCase{fmt.Sprintf("AttentionBackward/hd%d", hd), []int{2, 300, 4, 2, hd}, func(l Launcher, p uintptr, s []int) error {
				return AttentionBackward(l, p, p, p, p, p, p, p, p, p, p, p, p, 1.1, AttentionShape{B: s[0], T: s[1], H: s[2], KV: s[3], HD: s[4], Causal: true})
			}})
	}
}

// TestWrappersRejectBadSizes: a zero, negative or int32-overflowing size,
// or a null pointer, is an error and launches nothing.
func TestWrappersRejectBadSizes(t *testing.T) {
	for _, c := range wrapperCases {
		for i := range c.sizes {
			for _, bad := range []int{0, -1, math.MaxInt32 + 1} {
				s := slices.Clone(c.sizes)
				s[i] = bad
				r := &recorder{}
				if err := c.call(r, 0x1000, s); err == nil {
					t.Errorf("%s with size %d = %d: no error", c.name, i, bad)
				}
				if len(r.launches) != 0 {
					t.Errorf("%s with size %d = %d launched %v", c.name, i, bad, r.launches)
				}
			}
		}
		r := &recorder{}
		if err := c.call(r, 0, c.sizes); err == nil || len(r.launches) != 0 {
			t.Errorf("%s with null pointers: err %v, %d launches", c.name, err, len(r.launches))
		}
	}
}

// TestLaunchGeometry checks every wrapper's launches against CUDA's limits
// and the kernels' assumptions (whole warps, shared memory under 48 KiB).
func TestLaunchGeometry(t *testing.T) {
	for _, c := range wrapperCases {
		r := &recorder{}
		if err := c.call(r, 0x1000, c.sizes); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, l := range r.launches {
			checkGeometry(t, c.name, l)
		}
	}
}

func checkGeometry(t *testing.T, name string, l launchRec) {
	t.Helper()
	threads := l.block[0] * l.block[1] * l.block[2]
	switch {
	case l.grid[0] == 0 || l.grid[1] == 0 || l.grid[2] == 0:
		t.Errorf("%s: %s grid %v has a zero dimension", name, l.entry, l.grid)
	case l.grid[1] > maxGridY || l.grid[2] > maxGridY:
		t.Errorf("%s: %s grid %v exceeds 65535 in y or z", name, l.entry, l.grid)
	case threads == 0 || threads > 1024 || threads%32 != 0:
		t.Errorf("%s: %s block %v: want whole warps, at most 1024 threads", name, l.entry, l.block)
	case l.shared > 48<<10:
		t.Errorf("%s: %s asks %d bytes of shared memory (> 48 KiB needs opting in)", name, l.entry, l.shared)
	}
}

func TestGeometryForShapes(t *testing.T) {
	r := &recorder{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(AddF32(r, 1, 1, 1<<30))
	must(AddF32(r, 1, 1, 1))
	must(BiasAdd(r, 1, 1, 100000, 3072))
	must(RMSNormForward(r, 1, 1, 1, 1, 7, 4096, 1e-5))
	must(RMSNormForward(r, 1, 1, 1, 1, 7, 64, 1e-5))
	must(CrossEntropy(r, 1, 1, 1, 1, 5, 32000, 1))
	must(CrossEntropy(r, 1, 1, 1, 1, 5, 4, 1))
	want := []struct {
		entry       string
		grid, block [3]uint32
	}{
		{"add_f32", [3]uint32{maxElemGrid, 1, 1}, [3]uint32{256, 1, 1}},
		{"add_f32", [3]uint32{1, 1, 1}, [3]uint32{256, 1, 1}},
		{"bias_add", [3]uint32{12, 65535, 1}, [3]uint32{256, 1, 1}},
		{"rmsnorm_forward", [3]uint32{7, 1, 1}, [3]uint32{1024, 1, 1}},
		{"rmsnorm_forward", [3]uint32{7, 1, 1}, [3]uint32{32, 1, 1}},
		{"cross_entropy", [3]uint32{5, 1, 1}, [3]uint32{1024, 1, 1}},
		{"cross_entropy", [3]uint32{5, 1, 1}, [3]uint32{32, 1, 1}},
	}
	for i, w := range want {
		l := r.launches[i]
		if l.entry != w.entry || l.grid != w.grid || l.block != w.block {
			t.Errorf("launch %d: %s grid %v block %v, want %s grid %v block %v", i, l.entry, l.grid, l.block, w.entry, w.grid, w.block)
		}
	}

	r = &recorder{}
	s := AttentionShape{B: 2, T: 300, H: 8, KV: 2, HD: 64, Causal: true}
	must(AttentionForward(r, 1, 1, 1, 1, 1, 0, 0, 1, s))
	must(AttentionBackward(r, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, s))
	got := r.launches
	if len(got) != 4 {
		t.Fatalf("%d attention launches, want 4", len(got))
	}
	checks := []struct {
		entry  string
		grid   [3]uint32
		block  uint32
		shared uint32
	}{
		{"attention_forward_d64", [3]uint32{5, 16, 1}, 128, 4 * (96*65 + 64*33)},
		{"attention_backward_dot", [3]uint32{600, 1, 1}, 256, 0},
		{"attention_backward_dq_d64", [3]uint32{10, 16, 1}, 128, 4 * (2*64*65 + 32*33)},
		{"attention_backward_dkdv_d64", [3]uint32{10, 4, 1}, 128, 4 * (2*64*65 + 2*32*33 + 96)},
	}
	for i, c := range checks {
		if got[i].entry != c.entry || got[i].grid != c.grid || got[i].block[0] != c.block || got[i].shared != c.shared {
			t.Errorf("attention launch %d: %s grid %v block %v shared %d; want %s %v %d %d",
				i, got[i].entry, got[i].grid, got[i].block, got[i].shared, c.entry, c.grid, c.block, c.shared)
		}
	}
}

func TestAttentionTiles(t *testing.T) {
	for hd := 2; hd <= MaxHeadDim; hd += 2 {
		tl := tileFor(hd)
		if hd > tl.maxHD || (tl.maxHD > 32 && hd <= tl.maxHD/2) {
			t.Errorf("hd %d picks the d%d kernels", hd, tl.maxHD)
		}
		for name, b := range map[string]int{"forward": tl.fwdShared(hd), "dq": tl.dqShared(hd), "dkdv": tl.dkdvShared(hd)} {
			if b > 48<<10 {
				t.Errorf("hd %d: %s needs %d bytes of shared memory, over 48 KiB", hd, name, b)
			}
		}
	}
	for _, tl := range attnTiles {
		// The kernels' thread layout: 8 threads per row of every tile.
		for name, rc := range map[string][3]int{"forward": {tl.fwdBR, tl.fwdBC, tl.fwdNT}, "dq": {tl.dqBR, tl.dqBC, tl.dqNT}, "dkdv": {tl.dkvBC, tl.dkvBR, tl.dkvNT}} {
			if rc[2]%32 != 0 || rc[1]%8 != 0 {
				t.Errorf("d%d %s: tile %v is not laid out for 8 threads a row", tl.maxHD, name, rc)
			}
		}
	}
}

func TestAttentionShapeValidate(t *testing.T) {
	ok := AttentionShape{B: 2, T: 16, H: 8, KV: 2, HD: 64, Causal: true, Window: 4}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid shape: %v", err)
	}
	for name, mod := range map[string]func(*AttentionShape){
		"zero B":           func(s *AttentionShape) { s.B = 0 },
		"zero T":           func(s *AttentionShape) { s.T = 0 },
		"heads not groups": func(s *AttentionShape) { s.KV = 3 },
		"odd head dim":     func(s *AttentionShape) { s.HD = 63 },
		"head dim 258":     func(s *AttentionShape) { s.HD = 258 },
		"negative window":  func(s *AttentionShape) { s.Window = -1 },
		"grid y":           func(s *AttentionShape) { s.B, s.H, s.KV = 10000, 8, 8 },
	} {
		s := ok
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, s)
		}
	}
}

func TestWrappersRejectBadValues(t *testing.T) {
	nan := float32(math.NaN())
	r := &recorder{}
	for name, err := range map[string]error{
		"dropout p 1":          DropoutMask(r, 1, 10, 1, 1),
		"dropout p -0.1":       DropoutMask(r, 1, 10, 1, -0.1),
		"dropout p NaN":        DropoutMask(r, 1, 10, 1, nan),
		"apply offset":         DropoutApply(r, 1, 1, 1, 1, 10, -1),
		"eps NaN":              RMSNormForward(r, 1, 1, 1, 1, 1, 1, nan),
		"eps negative":         LayerNormForward(r, 1, 1, 1, 1, 1, 1, 1, 1, -1),
		"rope odd hd":          RopeApply(r, 1, 1, 1, 1, 1, 1, 7, 0, 1),
		"rope half 2":          RopeApply(r, 1, 1, 1, 1, 1, 1, 8, 2, 1),
		"adamw bc2 0":          AdamW(r, 1, 1, 1, 1, 1, NewAdamWStep(1e-3, 0.9, 0.999, 1e-8, 0, 0)),
		"attention drop scale": AttentionForward(r, 1, 1, 1, 1, 1, 0, 1, 0, AttentionShape{B: 1, T: 1, H: 1, KV: 1, HD: 2}),
		"cross entropy inf":    CrossEntropy(r, 1, 1, 1, 1, 1, 1, float32(math.Inf(1))),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(r.launches) != 0 {
		t.Errorf("bad values launched %d kernels", len(r.launches))
	}
}

func TestNewAdamWStep(t *testing.T) {
	s := NewAdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, 2)
	if want := float32(1e-3 / (1 - 0.81)); s.StepSize != want {
		t.Errorf("StepSize %v, want %v", s.StepSize, want)
	}
	if want := float32(math.Sqrt(1 - 0.999*0.999)); s.SqrtBC2 != want {
		t.Errorf("SqrtBC2 %v, want %v", s.SqrtBC2, want)
	}
	if want := float32(1 - 1e-5); s.Decay != want {
		t.Errorf("Decay %v, want %v", s.Decay, want)
	}
}
