package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/adapter/quant"
	"github.com/kronfed/kronfed/model"
)

// runInit writes a freshly initialized adapter for a model: the starting point
// of training, or (with --init random) a test object for export and
// quantization.
func runInit(args []string, stdout io.Writer) error {
	fs := newFlags("init")
	mf := addModelAdapterFlags(fs)
	init := fs.String("init", "peft", "peft (A = 0 for kron, B = 0 for lora: ΔW = 0) or random (every factor drawn, for testing export and quantization)")
	seed := fs.Uint64("seed", 1, "initialization seed")
	base := fs.String("base-model", "", "identity of the base model recorded in the file (default: the config's name)")
	out := fs.String("out", "", "adapter file to write (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("init: --out is required")
	}
	if *init != "peft" && *init != "random" {
		return fmt.Errorf("init: --init %q: want peft or random", *init)
	}
	cfg, ac, err := mf.load("init")
	if err != nil {
		return err
	}
	ac = ac.Resolve(cfg.Hidden)
	targets := cfg.Targets()
	if *base == "" {
		*base = baseModelName(*mf.config)
	}
	rng := rand.New(rand.NewPCG(*seed, 0x6b726f6e))
	set, err := adapter.NewSet(ac, *base, targets, rng)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if *init == "random" {
		for _, m := range set.Modules {
			for _, f := range m.Layer.Factors() {
				bound := 1 / math.Sqrt(float64(f.Cols))
				for i := range f.Data {
					f.Data[i] = float32((2*rng.Float64() - 1) * bound)
				}
			}
		}
	}
	if err := set.WriteFile(*out, adapter.Float32); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s on %d modules of %s, %d parameters\n", *out, ac, len(set.Modules), cfg.ModelType, set.NumParams())
	return nil
}

// baseModelName names a model after its config: the folder of a config.json
// ("mistral-7b-v0.1/config.json"), else the file's stem
// ("configs/mistral-7b-v0.1.json").
func baseModelName(configPath string) string {
	if filepath.Base(configPath) == "config.json" {
		if abs, err := filepath.Abs(configPath); err == nil {
			return filepath.Base(filepath.Dir(abs))
		}
	}
	return strings.TrimSuffix(filepath.Base(configPath), filepath.Ext(configPath))
}

// quantRow is one module's line of the report.
type quantRow struct {
	Module string             `json:"module"`
	MaxAbs map[string]float64 `json:"max_abs"`
	Bits   []quantBits        `json:"bits"`
}

type quantBits struct {
	Bits int `json:"bits"`
	// PaperBound is the step-size bound on |ΔW| entries (unscaled ΔW).
	PaperBound float64 `json:"paper_bound"`
	// RelFrobBound is PaperBound in RelFrobError's units: the bound on
	// ‖ΔW − ΔW_q‖F it implies (·√(d_out·d_in)), over ‖ΔW‖F.
	RelFrobBound float64 `json:"rel_frob_bound"`
	// RelFrobError is ‖ΔW − ΔW_q‖F / ‖ΔW‖F.
	RelFrobError float64 `json:"rel_frob_error"`
}

type quantReport struct {
	Adapter string     `json:"adapter"`
	Kind    string     `json:"kind"`
	Scheme  string     `json:"scheme"`
	Modules []quantRow `json:"modules"`
	// Total is the error over all modules: √(Σ err²) / √(Σ ‖ΔW‖²) per bit width.
	Total []quantBits `json:"total"`
	// Compared is the comparison with --against, per bit width.
	Compared []quantComparison `json:"compared,omitempty"`
}

// quantComparison is the whole-adapter relative error of this adapter over
// another's, quantized alike.
type quantComparison struct {
	Bits                int     `json:"bits"`
	Against             string  `json:"against"`
	AgainstKind         string  `json:"against_kind"`
	AgainstRelFrobError float64 `json:"against_rel_frob_error"`
	ErrorRatio          float64 `json:"error_ratio"`
}

func runQuantReport(args []string, stdout io.Writer) error {
	fs := newFlags("quant-report")
	path := fs.String("adapter", "", "adapter file (required)")
	bitsList := fs.String("bits", "8,4", "comma-separated bit widths (2, 3, 4, 8)")
	scheme := fs.String("scheme", "sym", "sym (zero-centred grid) or asym (min/max grid)")
	gran := fs.String("granularity", "row", "row (a scale per output row) or tensor")
	rounding := fs.String("rounding", "nearest", "nearest or stochastic")
	seed := fs.Uint64("seed", 1, "seed of stochastic rounding")
	asJSON := fs.Bool("json", false, "print JSON")
	against := fs.String("against", "", "a second adapter of the same model (e.g. LoRA-8 beside Kron-LoRA) quantized the same way: prints the ratio of their relative errors (the paper: Kron-LoRA degrades less than LoRA)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("quant-report: --adapter is required")
	}
	var s quant.Scheme
	switch *scheme {
	case "sym":
		s.Symmetric = true
	case "asym":
	default:
		return fmt.Errorf("quant-report: --scheme %q: want sym or asym", *scheme)
	}
	switch *gran {
	case "row":
		s.PerRow = true
	case "tensor":
	default:
		return fmt.Errorf("quant-report: --granularity %q: want row or tensor", *gran)
	}
	switch *rounding {
	case "nearest":
	case "stochastic":
		s.Stochastic = true
	default:
		return fmt.Errorf("quant-report: --rounding %q: want nearest or stochastic", *rounding)
	}
	var widths []int
	for _, f := range strings.Split(*bitsList, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil {
			err = (quant.Scheme{Bits: b}).Validate()
		}
		if err != nil {
			return fmt.Errorf("quant-report: --bits %q: %v", *bitsList, err)
		}
		widths = append(widths, b)
	}
	set, err := adapter.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("quant-report: %w", err)
	}
	rep, err := measureQuant(*path, set, s, widths, *seed)
	if err != nil {
		return err
	}
	if *against != "" {
		other, err := adapter.ReadFile(*against)
		if err != nil {
			return fmt.Errorf("quant-report: --against: %w", err)
		}
		orep, err := measureQuant(*against, other, s, widths, *seed)
		if err != nil {
			return err
		}
		for i := range rep.Total {
			c := quantComparison{Bits: rep.Total[i].Bits, Against: *against, AgainstKind: orep.Kind,
				AgainstRelFrobError: orep.Total[i].RelFrobError}
			if c.AgainstRelFrobError > 0 {
				c.ErrorRatio = rep.Total[i].RelFrobError / c.AgainstRelFrobError
			}
			rep.Compared = append(rep.Compared, c)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printQuantReport(stdout, set, rep)
}

// measureQuant quantizes every module of set at each width with scheme s
// and measures how far ΔW moves, per module and in all.
func measureQuant(path string, set *adapter.Set, s quant.Scheme, widths []int, seed uint64) (*quantReport, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7175616e))
	rep := quantReport{Adapter: path, Kind: string(set.Config.Kind)}
	errSq := make([]float64, len(widths))
	boundSq := make([]float64, len(widths))
	var normSq float64
	for _, m := range set.Modules {
		row := quantRow{Module: m.Name, MaxAbs: map[string]float64{}}
		for i, b := range widths {
			s.Bits = b
			q, err := adapter.QuantizeLayer(m.Layer, s, rng)
			if err != nil {
				return nil, fmt.Errorf("quant-report: module %s: %w", m.Name, err)
			}
			e, err := adapter.MeasureQuantError(m.Layer, q, b)
			if err != nil {
				return nil, fmt.Errorf("quant-report: module %s: %w", m.Name, err)
			}
			if i == 0 {
				for j, f := range m.Layer.Factors() {
					row.MaxAbs[f.Name] = e.MaxAbs[j]
				}
				normSq += e.Norm * e.Norm
			}
			errSq[i] += e.Err * e.Err
			dOut, dIn := m.Layer.Dims()
			fb := e.FrobBound(dOut, dIn)
			boundSq[i] += fb * fb
			qb := quantBits{Bits: b, PaperBound: e.Bound, RelFrobError: e.Rel()}
			if e.Norm > 0 {
				qb.RelFrobBound = fb / e.Norm
			}
			row.Bits = append(row.Bits, qb)
		}
		rep.Modules = append(rep.Modules, row)
	}
	s.Bits = 0
	rep.Scheme = strings.TrimPrefix(s.String(), "int0-")
	for i, b := range widths {
		t := quantBits{Bits: b}
		if normSq > 0 {
			t.RelFrobError = math.Sqrt(errSq[i] / normSq)
			t.RelFrobBound = math.Sqrt(boundSq[i] / normSq)
		}
		for _, r := range rep.Modules {
			t.PaperBound = math.Max(t.PaperBound, r.Bits[i].PaperBound)
		}
		rep.Total = append(rep.Total, t)
	}
	return &rep, nil
}

func printQuantReport(w io.Writer, set *adapter.Set, rep *quantReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var factors []string
	for _, f := range set.Modules[0].Layer.Factors() {
		factors = append(factors, f.Name)
	}
	hdr := "module\t"
	for _, f := range factors {
		hdr += "‖" + f + "‖max\t"
	}
	for _, b := range rep.Total {
		hdr += fmt.Sprintf("rel.bound@%d\trel.err@%d\t", b.Bits, b.Bits)
	}
	fmt.Fprintln(tw, hdr)
	for _, r := range rep.Modules {
		line := r.Module + "\t"
		for _, f := range factors {
			line += fmt.Sprintf("%.4g\t", r.MaxAbs[f])
		}
		for _, b := range r.Bits {
			line += fmt.Sprintf("%.3g\t%.3g\t", b.RelFrobBound, b.RelFrobError)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s adapter, %d modules, quantized %s per factor\n", rep.Kind, len(rep.Modules), rep.Scheme)
	fmt.Fprintln(w, "rel.err: ‖ΔW − ΔW_q‖F/‖ΔW‖F, exact; rel.bound: the same ratio bounded by the paper's step-size bound on ΔW's entries (× √(d_out·d_in))")
	for _, b := range rep.Total {
		fmt.Fprintf(w, "%d bits: whole-adapter relative error %.4g (bound %.4g); largest entrywise bound %.4g\n", b.Bits, b.RelFrobError, b.RelFrobBound, b.PaperBound)
	}
	for _, c := range rep.Compared {
		fmt.Fprintf(w, "%d bits: %s / %s (%s) relative error: %.4g / %.4g = %.3g× (the paper: Kron-LoRA's factors quantize with less degradation than LoRA's)\n",
			c.Bits, rep.Kind, c.AgainstKind, c.Against, rep.Total[indexOfBits(rep.Total, c.Bits)].RelFrobError, c.AgainstRelFrobError, c.ErrorRatio)
	}
	return nil
}

func runExport(args []string, stdout io.Writer) error {
	fs := newFlags("export")
	path := fs.String("adapter", "", "adapter file (required)")
	out := fs.String("out", "", "output folder (lokr, lora) or .safetensors file (merged) (required)")
	format := fs.String("format", "peft", "peft (PEFT LoKr where PEFT's shape rules express the adapter, else the exact PEFT LoRA rewrite), lokr (PEFT LoKr only; LoRA adapters export as PEFT LoRA), lora (PEFT LoRA; exact rank-2r rewrite of Kron-LoRA) or merged (dense ΔW per module)")
	baseModel := fs.String("base-model", "", "PEFT: base_model_name_or_path: the base model's Hugging Face id, or its local folder whose config.json records one (_name_or_path) (default: the name the adapter records)")
	taskType := fs.String("task-type", "", "PEFT: task_type (default: CAUSAL_LM for decoders, none for multiple-choice encoders)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || *out == "" {
		return errors.New("export: --adapter and --out are required")
	}
	hubID := *baseModel
	if hubID != "" {
		var err error
		if hubID, err = model.HubID(hubID); err != nil {
			return fmt.Errorf("export: --base-model: %w", err)
		}
	}
	peft := adapter.PEFTOptions{BaseModel: hubID, TaskType: *taskType}
	set, err := adapter.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	written := *format
	switch *format {
	case "peft":
		written, err = set.ExportPEFTBest(*out, peft)
	case "lokr":
		err = set.ExportPEFT(*out, peft)
		if errors.Is(err, adapter.ErrNotLoKr) {
			return fmt.Errorf("export: %w\n  instead use --format lora (exact: A ⊗ (B1·B2) = (A ⊗ B1)·(I ⊗ B2), a PEFT LoRA of rank %d) or --format merged (dense ΔW)", err, adapter.KronDA1*set.Config.Rank)
		}
	case "lora":
		err = set.ExportPEFTLoRA(*out, peft)
	case "merged":
		err = set.ExportMerged(*out)
	default:
		return fmt.Errorf("export: --format %q: want peft, lokr, lora or merged", *format)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s (%s, %d modules) to %s as %s\n", *path, set.Config, len(set.Modules), *out, written)
	return nil
}

func indexOfBits(bs []quantBits, bits int) int {
	for i, b := range bs {
		if b.Bits == bits {
			return i
		}
	}
	return 0
}
