package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/train"
)

type gemmResult struct {
	// Case: "NN": A·B, "NT": A·Bᵀ (Gemm, B packed on every call);
	// "frozen": a frozen layer's x·Wᵀ with W packed once (fp32),
	// "frozen-bf16" the same with W packed as bf16.
	Case    string  `json:"case"`
	M       int     `json:"m"`
	N       int     `json:"n"`
	K       int     `json:"k"`
	Threads int     `json:"threads"`
	GFLOPS  float64 `json:"gflops"`
}

type layerResult struct {
	Layer   string  `json:"layer"` // frozen, kron, lora4, lora8, lora16
	DOut    int     `json:"d_out"`
	DIn     int     `json:"d_in"`
	Tokens  int     `json:"tokens"`
	Threads int     `json:"threads"`
	Millis  float64 `json:"ms_per_step"`
}

type benchReport struct {
	CPU   string `json:"cpu"`
	Cores int    `json:"cores"`
	Go    string `json:"go"`
	// FMAPeak is one core's single-precision FMA throughput by vector width
	// ("ymm", "zmm", and "bf16" for VDPBF16PS; absent where the CPU cannot
	// run it), GFLOP/s.
	FMAPeak map[string]float64 `json:"fma_peak_gflops"`
	// Kernels says which SGEMM kernels this process chose and why.
	Kernels string `json:"kernels"`
	// BF16 says whether --precision auto takes bf16 frozen weights here
	// (for bases ≥ 512 wide) and why.
	BF16   string        `json:"bf16"`
	Gemm   []gemmResult  `json:"gemm"`
	Layers []layerResult `json:"layers"`
	// KronOverLoRA8 is the forward+backward time of a 768×768 layer with
	// Kron-LoRA over the same with LoRA-8 (frozen part included), per thread count.
	KronOverLoRA8 map[string]float64 `json:"kron_over_lora8"`
}

func runBench(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "train" {
		return runBenchTrain(args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "kernels" {
		return errors.New("bench: want 'client bench kernels [--json] [--threads 1,2] [--min-time 1s]' or 'client bench train [--json]'")
	}
	fs := newFlags("bench kernels")
	asJSON := fs.Bool("json", false, "print JSON")
	threadList := fs.String("threads", "", "comma-separated thread counts (default: 1 and the number of cores)")
	minTime := fs.Duration("min-time", time.Second, "minimum measuring time per figure")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	threads, err := parseThreads(*threadList)
	if err != nil {
		return err
	}
	rep := benchReport{CPU: cpuName(), Cores: runtime.NumCPU(), Go: runtime.Version(), KronOverLoRA8: map[string]float64{}, FMAPeak: map[string]float64{},
		Kernels: compute.KernelChoice(), BF16: bf16Verdict()}
	for _, w := range []string{"ymm", "zmm", "bf16"} {
		if g, err := compute.MeasureFMAPeak(w, *minTime/2); err == nil {
			rep.FMAPeak[w] = g
		}
	}
	shapes := [][3]int{{1024, 768, 768}, {1024, 3072, 768}, {1024, 768, 3072}}
	for _, th := range threads {
		for _, s := range shapes {
			for _, c := range []string{"NN", "NT"} {
				tb := compute.Transpose(c == "NT")
				g := compute.MeasureGemm(compute.NoTrans, tb, s[0], s[1], s[2], th, *minTime)
				rep.Gemm = append(rep.Gemm, gemmResult{Case: c, M: s[0], N: s[1], K: s[2], Threads: th, GFLOPS: g})
			}
			for _, bf16 := range []bool{false, true} {
				if bf16 && !compute.HasBF16() {
					continue
				}
				g, err := compute.MeasureFrozenGemm(s[0], s[1], s[2], th, *minTime, bf16)
				if err != nil {
					return fmt.Errorf("bench kernels: %w", err)
				}
				c := "frozen"
				if bf16 {
					c = "frozen-bf16"
				}
				rep.Gemm = append(rep.Gemm, gemmResult{Case: c, M: s[0], N: s[1], K: s[2], Threads: th, GFLOPS: g})
			}
		}
	}
	const d, tokens = 768, 1024
	kinds := []string{"frozen", "kron", "lora4", "lora8", "lora16"}
	for _, th := range threads {
		prev := compute.SetThreads(th)
		steps := make([]func(), len(kinds))
		for i, kind := range kinds {
			step, err := model.NewTrainStepBench(kind, d, d, tokens, 1)
			if err != nil {
				compute.SetThreads(prev)
				return err
			}
			steps[i] = step
		}
		best := timeInterleaved(steps, 5, *minTime)
		compute.SetThreads(prev)
		ms := map[string]float64{}
		for i, kind := range kinds {
			ms[kind] = best[i].Seconds() * 1e3
			rep.Layers = append(rep.Layers, layerResult{Layer: kind, DOut: d, DIn: d, Tokens: tokens, Threads: th, Millis: ms[kind]})
		}
		rep.KronOverLoRA8[strconv.Itoa(th)] = ms["kron"] / ms["lora8"]
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%s, %d cores, %s\n%s\n%s\n", rep.CPU, rep.Cores, rep.Go, rep.Kernels, rep.BF16)
	peak := rep.FMAPeak[compute.KernelWidth()] // the width the fp32 SGEMM kernels run at
	for _, w := range []string{"ymm", "zmm", "bf16"} {
		if g, ok := rep.FMAPeak[w]; ok {
			fmt.Fprintf(stdout, "FMA peak, %s, one core: %.1f GFLOP/s\n", w, g)
		} else {
			fmt.Fprintf(stdout, "FMA peak, %s: not available on this CPU\n", w)
		}
	}
	fmt.Fprintf(stdout, "\nSGEMM C(m×n) = A(m×k)·op(B); frozen: x·Wᵀ with W packed once (bf16: as bf16, VDPBF16PS)\n"+
		"of peak = GFLOP/s over threads × the peak of the kernels' width (%s; bf16 rows: the bf16 peak)\n", compute.KernelWidth())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "m\tn\tk\tcase\tthreads\tGFLOP/s\tof peak\t")
	for _, g := range rep.Gemm {
		frac, p := "–", peak
		if g.Case == "frozen-bf16" {
			p = rep.FMAPeak["bf16"]
		}
		if p > 0 {
			frac = fmt.Sprintf("%.0f%%", 100*g.GFLOPS/(p*float64(g.Threads)))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%.1f\t%s\t\n", g.M, g.N, g.K, g.Case, g.Threads, g.GFLOPS, frac)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nTraining step of a %d×%d layer on %d tokens (forward with dropout 0.1, backward with dx)\n", d, d, tokens)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tthreads\tms/step\t")
	for _, l := range rep.Layers {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t\n", l.Layer, l.Threads, l.Millis)
	}
	tw.Flush()
	for _, th := range threads {
		fmt.Fprintf(stdout, "Kron-LoRA / LoRA-8 time ratio, %d thread(s): %.3f\n", th, rep.KronOverLoRA8[strconv.Itoa(th)])
	}
	return nil
}

// timeInterleaved runs the functions round-robin (after one warm-up call
// each) for at least minRounds rounds and at least minTime, and returns each
// one's fastest run. Interleaving exposes every variant to the same machine state
// (other processes, clock, garbage collection), so their ratios are fair.
func timeInterleaved(fs []func(), minRounds int, minTime time.Duration) []time.Duration {
	best := make([]time.Duration, len(fs))
	for i, f := range fs {
		f()
		best[i] = time.Duration(1<<63 - 1)
	}
	deadline := time.Now().Add(minTime)
	for round := 0; round < minRounds || time.Now().Before(deadline); round++ {
		for i, f := range fs {
			t0 := time.Now()
			f()
			best[i] = min(best[i], time.Since(t0))
		}
	}
	return best
}

func parseThreads(s string) ([]int, error) {
	if s == "" {
		if n := runtime.NumCPU(); n > 1 {
			return []int{1, n}, nil
		}
		return []int{1}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench: --threads %q: want positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// cpuName reads the processor model from /proc/cpuinfo where there is one.
// cpuName is /proc/cpuinfo's model name with its family and model numbers
// ("AMD EPYC (family 26 model 2)"): the name alone does not tell CPU
// generations apart on virtual machines.
func cpuName() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" && len(fields) > 0 {
			break // the first processor's block
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	name := fields["model name"]
	if name == "" {
		return runtime.GOARCH
	}
	if f, m := fields["cpu family"], fields["model"]; f != "" && m != "" {
		name += fmt.Sprintf(" (family %s model %s)", f, m)
	}
	return name
}

type trainBenchResult struct {
	Adapter      string  `json:"adapter"`
	Precision    string  `json:"precision"` // frozen weights: fp32 or bf16
	FrozenMB     float64 `json:"frozen_mb"` // host memory of the frozen linears (W, packed copies)
	SecondsStep  float64 `json:"seconds_per_step"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	// ExamplesPerSec counts sequences (an encoder's 4 choices of a
	// question are 4), as the paper's examples/s.
	ExamplesPerSec float64 `json:"examples_per_sec"`
	GFLOPS         float64 `json:"gflops"`
	// DevicePeakGiB is the most GPU memory held while this adapter's steps
	// ran, base included (GPU only).
	DevicePeakGiB float64 `json:"device_peak_gib,omitempty"`
}

type trainBenchReport struct {
	CPU     string             `json:"cpu"`
	Cores   int                `json:"cores"`
	Threads int                `json:"threads"`
	Device  string             `json:"device"` // "cpu" or the GPU
	Model   string             `json:"model"`
	Batch   string             `json:"batch"`
	KronDA2 int                `json:"kron_dA2"` // rows of Kron-LoRA's A
	Results []trainBenchResult `json:"results"`
	// KronOverLoRA8 is the Kron-LoRA step time over LoRA-8's (first
	// precision timed).
	KronOverLoRA8 float64 `json:"kron_over_lora8"`
	// With both precisions: the same ratio with bf16 frozen weights, and
	// the Kron-LoRA step's fp32 time over its bf16 time.
	KronOverLoRA8BF16 float64 `json:"kron_over_lora8_bf16,omitempty"`
	BF16Speedup       float64 `json:"bf16_speedup,omitempty"`
}

// runBenchTrain times whole training steps (forward, backward, clipping,
// AdamW) of a random-weight model of a real shape (DistilBERT, Mistral-7B)
// with Kron-LoRA and LoRA-8, on the CPU or a GPU.
func runBenchTrain(args []string, stdout io.Writer) error {
	fs := newFlags("bench train")
	asJSON := fs.Bool("json", false, "print JSON")
	device := fs.String("device", "cpu", "where to compute: cpu, cuda or cuda:N")
	shape := fs.String("shape", "distilbert", "model shape, random weights: "+strings.Join(train.BenchShapes, " or "))
	layers := fs.Int("layers", 0, "layers of the shape (0: the real model's; mistral-7b's 32 need 28 GB of host memory to build and 14 GB of bf16 on a GPU)")
	seqs := fs.Int("seqs", 8, "sequences per step (encoders: a multiple of 4, questions × 4 choices)")
	tokens := fs.Int("tokens", 128, "tokens per sequence")
	steps := fs.Int("steps", 5, "timed steps per adapter (the best is reported)")
	dA2 := fs.Int("dA2", 0, "rows of Kron-LoRA's A (0: the paper's default for the hidden size; 2 is the factorization PEFT's LoKr can express with decompose_factor 2)")
	precList := fs.String("precision", "", "comma-separated frozen-weight precisions to time side by side: fp32, bf16, bf16-lean (CPU only); default: fp32,bf16 on a CPU with AVX512_BF16, fp32 on other CPUs, bf16 on a GPU")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, err := train.ParseDevice(*device)
	if err != nil {
		return fmt.Errorf("bench train: --device: %w", err)
	}
	cfg, err := train.BenchConfig(*shape, *layers)
	if err != nil {
		return fmt.Errorf("bench train: --shape/--layers: %w", err)
	}
	if *precList == "" {
		switch {
		case dev != "cpu":
			*precList = "bf16"
		case compute.HasBF16():
			*precList = "fp32,bf16"
		default:
			*precList = "fp32"
		}
	}
	var precs []string
	for _, p := range strings.Split(*precList, ",") {
		p = strings.TrimSpace(p)
		if _, err := train.FrozenPrecision(p, dev, nil); err != nil || p == "auto" || p == "" {
			if err == nil {
				err = errors.New("want fp32, bf16 or bf16-lean")
			}
			return fmt.Errorf("bench train: --precision %q: %w", p, err)
		}
		precs = append(precs, p)
	}
	if *steps < 1 || *tokens < 1 || *tokens > cfg.MaxPositions || *seqs < 1 {
		return fmt.Errorf("bench train: --steps and --seqs must be ≥ 1 and --tokens in 1…%d", cfg.MaxPositions)
	}
	rep := trainBenchReport{CPU: cpuName(), Cores: runtime.NumCPU(), Threads: compute.Threads(), Device: "cpu",
		Model: fmt.Sprintf("%s shape (%d layers), random weights", *shape, cfg.Layers), Batch: fmt.Sprintf("%d sequences × %d tokens", *seqs, *tokens),
		KronDA2: *dA2}
	if rep.KronDA2 == 0 {
		rep.KronDA2 = adapter.DefaultDA2(cfg.Hidden)
	}
	best := map[string]float64{}
	for _, prec := range precs {
		// One engine per precision (a GPU engine stores one): its two
		// adapters' steps are timed interleaved, so drift hits both alike.
		engine, err := train.OpenEngine(dev, prec, gpu.Options{})
		if err != nil {
			return fmt.Errorf("bench train: --device %s --precision %s: %w", dev, prec, err)
		}
		rep.Device = engine.Device()
		results, err := benchEngine(engine, cfg, prec, *dA2, *seqs, *tokens, *steps)
		engine.Close()
		if err != nil {
			return fmt.Errorf("bench train: %w", err)
		}
		for _, r := range results {
			best[prec+"/"+r.Adapter] = r.SecondsStep
		}
		rep.Results = append(rep.Results, results...)
	}
	rep.KronOverLoRA8 = best[precs[0]+"/kron"] / best[precs[0]+"/lora8"]
	both := best["fp32/kron"] > 0 && best["bf16/kron"] > 0 && best["bf16/lora8"] > 0
	if both {
		rep.KronOverLoRA8BF16 = best["bf16/kron"] / best["bf16/lora8"]
		rep.BF16Speedup = best["fp32/kron"] / best["bf16/kron"]
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%s, %d cores, %d threads; computing on %s\nTraining step of a %s, %s; Kron-LoRA dA2 %d, rank 8\n", rep.CPU, rep.Cores, rep.Threads, rep.Device, rep.Model, rep.Batch, rep.KronDA2)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	gpuCol := dev != "cpu"
	head := "adapter\tfrozen W\tfrozen MB\ts/step\ttokens/s\texamples/s\tGFLOP/s\t"
	if gpuCol {
		head += "peak GiB\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.3f\t%.0f\t%.1f\t%.1f\t", r.Adapter, r.Precision, r.FrozenMB, r.SecondsStep, r.TokensPerSec, r.ExamplesPerSec, r.GFLOPS)
		if gpuCol {
			fmt.Fprintf(tw, "%.2f\t", r.DevicePeakGiB)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "Kron-LoRA / LoRA-8 step time (%s): %.3f\n", precs[0], rep.KronOverLoRA8)
	if both {
		fmt.Fprintf(stdout, "Kron-LoRA / LoRA-8 step time (bf16): %.3f\nKron-LoRA step, fp32 / bf16 frozen weights: %.2f× faster with bf16\n", rep.KronOverLoRA8BF16, rep.BF16Speedup)
	}
	return nil
}

// benchEngine times Kron-LoRA's and LoRA-8's training steps on one
// random-weight base of cfg with the frozen weights in prec on engine: the
// best of steps each, after a warm-up step each (it packs the weights,
// sizes the buffers). On the CPU the two adapters' steps alternate, so that
// drift in the machine's speed hits both alike. On a GPU they run one
// adapter after the other — a Mistral-7B's two runs would not fit beside
// each other — and each one's peak device memory (base, its run's
// buffers) is measured in its warm-up.
func benchEngine(engine *train.Engine, cfg *model.Config, prec string, dA2, seqs, tokens, steps int) ([]trainBenchResult, error) {
	base, err := engine.NewBenchBase(cfg, 1)
	if err != nil {
		return nil, err
	}
	defer engine.Release(base)
	g := engine.GPU()
	kinds := []string{"kron", "lora8"}
	times := make([]time.Duration, len(kinds))
	peaks := make([]int64, len(kinds))
	benches := make([]*train.BenchStep, len(kinds))
	var stepErr error
	timed := func(s *train.BenchStep) func() {
		return func() {
			if err := s.Run(); err != nil && stepErr == nil {
				stepErr = err
			}
		}
	}
	var runs []func()
	for i, kind := range kinds {
		spec := kind
		if kind == "kron" && dA2 > 0 {
			spec = fmt.Sprintf("kron:%d", dA2)
		}
		s, err := engine.NewBenchStep(base, spec, seqs, tokens, 1)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		benches[i] = s
		if g != nil {
			g.ResetPeak()
		}
		if err := s.Run(); err != nil {
			return nil, fmt.Errorf("%s warm-up step: %w", kind, err)
		}
		if g == nil {
			runs = append(runs, timed(s))
			continue
		}
		peaks[i] = g.MemStats().Peak
		times[i] = timeInterleaved([]func(){timed(s)}, steps, 0)[0]
		s.Close()
	}
	if g == nil {
		copy(times, timeInterleaved(runs, steps, 0))
	}
	if stepErr != nil {
		return nil, stepErr
	}
	var out []trainBenchResult
	for i, kind := range kinds {
		sec := times[i].Seconds()
		out = append(out, trainBenchResult{Adapter: kind, Precision: prec, SecondsStep: sec, FrozenMB: float64(benches[i].FrozenBytes()) / 1e6,
			TokensPerSec: float64(benches[i].Tokens) / sec, ExamplesPerSec: float64(seqs) / sec, GFLOPS: benches[i].Flops / sec / 1e9,
			DevicePeakGiB: float64(peaks[i]) / (1 << 30)})
	}
	return out, nil
}

// bf16Verdict says whether --precision auto takes bf16 frozen weights on
// this CPU (compute.BF16Pays), for the benchmark header.
func bf16Verdict() string {
	pays, why := compute.BF16Pays()
	if pays {
		return fmt.Sprintf("bf16 frozen weights by default for bases ≥ %d wide (%s)", train.AutoBF16MinHidden, why)
	}
	return fmt.Sprintf("fp32 frozen weights by default (%s)", why)
}
