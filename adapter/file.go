package adapter

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/kronfed/kronfed/adapter/quant"
	"github.com/kronfed/kronfed/safetensors"
)

// FileFormat is the __metadata__ "format" of kronfed adapter files.
const FileFormat = "kronfed-adapter"

// fileVersion is bumped when the layout changes incompatibly.
const fileVersion = "1"

// SaveOptions chooses how factors are stored.
type SaveOptions struct {
	// Bits is 32 for float32 factors, or 2, 3, 4, 8 to store each factor
	// quantized with Scheme (Scheme.Bits is taken from here).
	Bits int
	// Scheme is the quantization scheme below 32 bits. Per-row scales are
	// taken along each factor's longer side: a tall factor (more rows than
	// columns, such as Kron-LoRA's B1, dB2×r, or LoRA's B, d_out×q) gets one
	// scale per column instead, so it pays for r scales rather than dB2. See
	// FactorScheme.
	Scheme quant.Scheme
	// Rng drives stochastic rounding when Scheme.Stochastic.
	Rng *rand.Rand
}

// Float32 stores factors exactly.
var Float32 = SaveOptions{Bits: 32}

// Encode lays a Set out as safetensors metadata and tensors:
//
//	<module>.<factor>  F32 [rows, cols]     at 32 bits (factor: A, B1, B2 or A, B)
//	<module>.<factor>  U8  [n]              below 32 bits: the quant.Matrix binary
//	                                        encoding (scheme, shape, scales, codes)
//	<dense name>       F32 [rows, cols]     fully trained tensors, always float32
//
// and metadata: format, format_version, kind, rank, dA2 (Kron-LoRA), alpha,
// dropout, target_modules (JSON list, in order), dense (JSON list), base_model,
// bits, and quant below 32 bits.
//
// Each factor is quantized with FactorScheme(opts.Scheme, rows, cols): when
// opts.Scheme is per-row, per-row scales are taken along the factor's longer
// side, so a tall factor (rows > cols) is stored per-column, with one scale per
// column. The quant metadata is the label of the requested opts.Scheme (e.g.
// "int8-sym-row-sr"), written once for the file; the scheme a factor was
// actually stored with is in its own encoding, which is what Decode reads.
func (s *Set) Encode(opts SaveOptions) (map[string]string, []safetensors.Tensor, error) {
	if opts.Bits != 32 {
		opts.Scheme.Bits = opts.Bits
		if err := opts.Scheme.Validate(); err != nil {
			return nil, nil, err
		}
	}
	if err := s.CheckFinite(); err != nil {
		return nil, nil, err
	}
	names := make([]string, len(s.Modules))
	var tensors []safetensors.Tensor
	for i, m := range s.Modules {
		names[i] = m.Name
		for _, f := range m.Layer.Factors() {
			key := m.Name + "." + f.Name
			if opts.Bits == 32 {
				tensors = append(tensors, safetensors.F32Tensor(key, []int{f.Rows, f.Cols}, f.Data))
				continue
			}
			q, err := quant.Quantize(f.Data, f.Rows, f.Cols, FactorScheme(opts.Scheme, f.Rows, f.Cols), opts.Rng)
			if err != nil {
				return nil, nil, fmt.Errorf("module %s factor %s: %w", m.Name, f.Name, err)
			}
			enc, err := q.MarshalBinary()
			if err != nil {
				return nil, nil, fmt.Errorf("module %s factor %s: %w", m.Name, f.Name, err)
			}
			tensors = append(tensors, safetensors.Tensor{Name: key, DType: safetensors.U8, Shape: []int{len(enc)}, Data: enc})
		}
	}
	dense := make([]string, len(s.Dense))
	for i, d := range s.Dense {
		dense[i] = d.Name
		tensors = append(tensors, safetensors.F32Tensor(d.Name, []int{d.Rows, d.Cols}, d.Data))
	}
	c := s.Config
	meta := map[string]string{
		"format":         FileFormat,
		"format_version": fileVersion,
		"kind":           string(c.Kind),
		"rank":           strconv.Itoa(c.Rank),
		"alpha":          strconv.FormatFloat(float64(c.Alpha), 'g', -1, 32),
		"dropout":        strconv.FormatFloat(float64(c.Dropout), 'g', -1, 32),
		"target_modules": mustJSON(names),
		"dense":          mustJSON(dense),
		"base_model":     s.BaseModel,
		"bits":           strconv.Itoa(opts.Bits),
	}
	if c.Kind == KindKron {
		meta["dA2"] = strconv.Itoa(c.DA2)
	}
	if opts.Bits != 32 {
		meta["quant"] = opts.Scheme.String()
	}
	return meta, tensors, nil
}

// FactorScheme is the scheme Encode stores a rows×cols factor with when asked
// for s: s itself, except that a per-row s becomes per-column for a tall factor
// (rows > cols), so the scales run along the shorter side — min(rows, cols)
// of them instead of rows. Square and wide factors keep per-row scales;
// per-tensor and per-column schemes are used as given.
func FactorScheme(s quant.Scheme, rows, cols int) quant.Scheme {
	if s.PerRow && rows > cols {
		s.PerRow, s.PerColumn = false, true
	}
	return s
}

func mustJSON(v []string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // []string always marshals
	}
	return string(b)
}

// WriteFile saves the Set as a safetensors file (atomically: a crash leaves the
// old file or the new one, never half of one).
func (s *Set) WriteFile(path string, opts SaveOptions) error {
	meta, tensors, err := s.Encode(opts)
	if err != nil {
		return fmt.Errorf("save adapter %s: %w", path, err)
	}
	if err := safetensors.WriteFile(path, meta, tensors); err != nil {
		return fmt.Errorf("save adapter %s: %w", path, err)
	}
	return nil
}

// ReadFile loads an adapter file written by WriteFile. Quantized factors come
// back dequantized, whatever granularity each was stored with.
func ReadFile(path string) (*Set, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load adapter: %w", err)
	}
	defer f.Close()
	s, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("load adapter %s: %w", path, err)
	}
	return s, nil
}

// Decode rebuilds a Set from a parsed safetensors file, checking that the
// metadata, the tensor list and every shape agree, and that no value is NaN
// or infinite.
func Decode(f *safetensors.File) (*Set, error) {
	meta := f.Metadata()
	if got := meta["format"]; got != FileFormat {
		return nil, fmt.Errorf("metadata format = %q, want %q (not a kronfed adapter file)", got, FileFormat)
	}
	if got := meta["format_version"]; got != fileVersion {
		return nil, fmt.Errorf("metadata format_version = %q, this kronfed reads %q", got, fileVersion)
	}
	var c Config
	var err error
	if c.Kind, err = ParseKind(meta["kind"]); err != nil {
		return nil, fmt.Errorf("metadata kind: %w", err)
	}
	if c.Rank, err = metaInt(meta, "rank"); err != nil {
		return nil, err
	}
	if c.Kind == KindKron {
		if c.DA2, err = metaInt(meta, "dA2"); err != nil {
			return nil, err
		}
	}
	if c.Alpha, err = metaFloat(meta, "alpha"); err != nil {
		return nil, err
	}
	if c.Dropout, err = metaFloat(meta, "dropout"); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if c.Kind == KindKron && c.DA2 == 0 {
		return nil, fmt.Errorf("metadata dA2 = 0: a saved kron-lora adapter must record its dA2")
	}
	bits, err := metaInt(meta, "bits")
	if err != nil {
		return nil, err
	}
	if bits != 32 {
		if err := (quant.Scheme{Bits: bits}).Validate(); err != nil {
			return nil, fmt.Errorf("metadata bits: %w", err)
		}
	}
	var modules, dense []string
	if err := metaList(meta, "target_modules", &modules); err != nil {
		return nil, err
	}
	if err := metaList(meta, "dense", &dense); err != nil {
		return nil, err
	}

	s := &Set{Config: c, BaseModel: meta["base_model"]}
	used := make(map[string]bool)
	for _, name := range modules {
		if name == "" || used[name] {
			return nil, fmt.Errorf("metadata target_modules: empty or repeated module name %q", name)
		}
		l, err := decodeLayer(f, c, name, bits, used)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		s.Modules = append(s.Modules, Module{Name: name, Layer: l})
	}
	for _, name := range dense {
		if used[name] {
			return nil, fmt.Errorf("metadata dense: tensor %q listed twice", name)
		}
		used[name] = true
		info, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("dense tensor %s listed in metadata but missing", name)
		}
		if info.DType != safetensors.F32 || len(info.Shape) != 2 {
			return nil, fmt.Errorf("dense tensor %s: %s %v, want F32 [rows, cols]", name, info.DType, info.Shape)
		}
		data, err := f.Float32(name)
		if err != nil {
			return nil, err
		}
		s.Dense = append(s.Dense, Dense{Name: name, Rows: info.Shape[0], Cols: info.Shape[1], Data: data, Grad: make([]float32, len(data))})
	}
	for _, t := range f.Tensors() {
		if !used[t.Name] {
			return nil, fmt.Errorf("tensor %s belongs to no module in target_modules and is not listed as dense", t.Name)
		}
	}
	if err := s.CheckFinite(); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeLayer reads one module's factors and checks they form a layer of the
// configured kind, rank and dA2.
func decodeLayer(f *safetensors.File, c Config, module string, bits int, used map[string]bool) (Layer, error) {
	var names []string
	if c.Kind == KindKron {
		names = []string{"A", "B1", "B2"}
	} else {
		names = []string{"A", "B"}
	}
	type mat struct {
		rows, cols int
		data       []float32
	}
	got := make(map[string]mat, len(names))
	for _, fn := range names {
		key := module + "." + fn
		used[key] = true
		info, ok := f.Tensor(key)
		if !ok {
			return nil, fmt.Errorf("factor %s missing (tensor %s)", fn, key)
		}
		var m mat
		if bits == 32 {
			if info.DType != safetensors.F32 || len(info.Shape) != 2 {
				return nil, fmt.Errorf("factor %s: %s %v, want F32 [rows, cols] in a 32-bit file", fn, info.DType, info.Shape)
			}
			data, err := f.Float32(key)
			if err != nil {
				return nil, fmt.Errorf("factor %s: %w", fn, err)
			}
			m = mat{info.Shape[0], info.Shape[1], data}
		} else {
			if info.DType != safetensors.U8 || len(info.Shape) != 1 {
				return nil, fmt.Errorf("factor %s: %s %v, want U8 [n] (quantized) in a %d-bit file", fn, info.DType, info.Shape, bits)
			}
			raw, err := f.Bytes(key)
			if err != nil {
				return nil, fmt.Errorf("factor %s: %w", fn, err)
			}
			q, err := quant.Unmarshal(raw)
			if err != nil {
				return nil, fmt.Errorf("factor %s: %w", fn, err)
			}
			if q.Scheme.Bits != bits {
				return nil, fmt.Errorf("factor %s: quantized to %d bits, file says %d", fn, q.Scheme.Bits, bits)
			}
			m = mat{q.Rows, q.Cols, q.Dequantize()}
		}
		got[fn] = m
	}
	// The layer's sides are read off the factors, along the axes that are
	// not the rank, so that one transposed factor is named as such rather
	// than shifting the shape every other factor is checked against.
	sides := make(map[string]int, len(names))
	for _, fn := range names {
		m := got[fn]
		rankAxis := 1 // B1 [dB2, r], B [dOut, r]
		if fn == "B2" || (fn == "A" && c.Kind == KindLoRA) {
			rankAxis = 0 // B2 [r, dB1], LoRA's A [r, dIn]
		}
		if fn == "A" && c.Kind == KindKron {
			continue // Kron's A is [dA2, dA1], fixed by the metadata
		}
		dims := [2]int{m.rows, m.cols}
		switch c.Rank {
		case dims[rankAxis]:
			sides[fn] = dims[1-rankAxis]
		case dims[1-rankAxis]:
			sides[fn] = dims[rankAxis] // transposed: want() says so
		default:
			return nil, fmt.Errorf("factor %s is %d×%d: neither side is the rank %d the metadata gives", fn, m.rows, m.cols, c.Rank)
		}
	}
	want := func(fn string, rows, cols int) error {
		if m := got[fn]; m.rows != rows || m.cols != cols {
			if m.rows == cols && m.cols == rows {
				return fmt.Errorf("factor %s is %d×%d, want %d×%d for %v: it is transposed", fn, m.rows, m.cols, rows, cols, c)
			}
			return fmt.Errorf("factor %s is %d×%d, want %d×%d for %v", fn, m.rows, m.cols, rows, cols, c)
		}
		return nil
	}
	switch c.Kind {
	case KindKron:
		if err := want("A", c.DA2, KronDA1); err != nil {
			return nil, err
		}
		shape, err := NewKronShape(c.DA2*sides["B1"], KronDA1*sides["B2"], c.DA2, c.Rank)
		if err != nil {
			return nil, err
		}
		for _, e := range []error{want("B1", shape.DB2(), c.Rank), want("B2", c.Rank, shape.DB1())} {
			if e != nil {
				return nil, e
			}
		}
		return newKronWith(shape, c.Alpha, got["A"].data, got["B1"].data, got["B2"].data), nil
	default:
		shape, err := NewLoRAShape(sides["B"], sides["A"], c.Rank)
		if err != nil {
			return nil, err
		}
		for _, e := range []error{want("A", c.Rank, shape.DIn), want("B", shape.DOut, c.Rank)} {
			if e != nil {
				return nil, e
			}
		}
		return newLoRAWith(shape, c.Alpha, got["A"].data, got["B"].data), nil
	}
}

func metaInt(meta map[string]string, key string) (int, error) {
	v, ok := meta[key]
	if !ok {
		return 0, fmt.Errorf("metadata %s missing", key)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("metadata %s = %q is not an integer", key, v)
	}
	return n, nil
}

func metaFloat(meta map[string]string, key string) (float32, error) {
	v, ok := meta[key]
	if !ok {
		return 0, fmt.Errorf("metadata %s missing", key)
	}
	x, err := strconv.ParseFloat(v, 32)
	if err != nil {
		return 0, fmt.Errorf("metadata %s = %q is not a number", key, v)
	}
	return float32(x), nil
}

func metaList(meta map[string]string, key string, dst *[]string) error {
	v, ok := meta[key]
	if !ok {
		return fmt.Errorf("metadata %s missing", key)
	}
	if err := json.Unmarshal([]byte(v), dst); err != nil {
		return fmt.Errorf("metadata %s is not a JSON list of strings: %w", key, err)
	}
	return nil
}

// ModuleNames returns the adapted module names in order.
func (s *Set) ModuleNames() []string {
	names := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		names[i] = m.Name
	}
	return names
}
