package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/train"
)

// deviceFlags adds --device and --precision to a command; open starts the
// engine they name (after the flags are parsed, before any data is read, so
// a machine without a GPU fails fast with the reason).
type deviceFlags struct {
	device, precision *string
}

func addDeviceFlags(fs *flag.FlagSet) deviceFlags {
	return deviceFlags{
		device:    fs.String("device", "cpu", "where to compute: cpu, cuda or cuda:N (an NVIDIA GPU through the CUDA libraries; KRONFED_CUDA_PATH names their folder)"),
		precision: fs.String("precision", "auto", "frozen base weights: bf16, bf16-lean (CPU: one packed copy per weight, half bf16's memory, backward ~13% slower), fp32, or auto (bf16 on a GPU; on a CPU bf16 where it has AVX512_BF16, its bf16 products measure ≥ 1.3× the fp32 FMA rate and the base's hidden size is ≥ 512, else fp32); adapters, their gradients and the optimizer are fp32 either way"),
	}
}

func (d deviceFlags) open(cmd string) (*train.Engine, error) {
	dev, err := train.ParseDevice(*d.device)
	if err != nil {
		return nil, fmt.Errorf("%s: --device: %w", cmd, err)
	}
	if _, err := train.ParsePrecision(*d.precision); err != nil {
		return nil, fmt.Errorf("%s: --precision: %w", cmd, err)
	}
	e, err := train.OpenEngine(dev, *d.precision, gpu.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: --device %s --precision %s: %w", cmd, dev, *d.precision, err)
	}
	fmt.Fprintf(os.Stderr, "%s: computing on %s, frozen weights %s\n", cmd, e.Device(), e.PrecisionText())
	return e, nil
}

// capabilityOf is what a client reports it computes on, to the coordinator
// (coordinator status) and in its gossip metadata: "cpu:THREADS" or
// "cuda:GPU-NAME" ("cuda:NVIDIA H100 80GB HBM3").
func capabilityOf(e *train.Engine) string {
	if g := e.GPU(); g != nil {
		return "cuda:" + g.Device().Name
	}
	return fmt.Sprintf("cpu:%d", runtime.GOMAXPROCS(0))
}

// releaseFP32 drops a bf16 base's float32 weights (model.Model.ReleaseFP32)
// in commands that only run the model from here on: a third of the frozen
// weights' memory. A base not in bf16 (fp32, or on a GPU) keeps them.
func releaseFP32(m *model.Model) {
	if m.BF16() {
		_ = m.ReleaseFP32() // cannot fail on a bf16 base
	}
}
