package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kronfed/kronfed/gpu"
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
		precision: fs.String("precision", "bf16", "GPU only: frozen base weights in bf16 or fp32 (adapters and optimizer are fp32 either way)"),
	}
}

func (d deviceFlags) open(cmd string) (*train.Engine, error) {
	dev, err := train.ParseDevice(*d.device)
	if err != nil {
		return nil, fmt.Errorf("%s: --device: %w", cmd, err)
	}
	prec, err := gpu.ParsePrecision(*d.precision)
	if err != nil {
		return nil, fmt.Errorf("%s: --precision: %w", cmd, err)
	}
	e, err := train.OpenEngine(dev, gpu.Options{Precision: prec})
	if err != nil {
		return nil, fmt.Errorf("%s: --device %s: %w", cmd, dev, err)
	}
	if dev != "cpu" {
		fmt.Fprintf(os.Stderr, "%s: computing on %s, %s frozen weights\n", cmd, e.Device(), prec)
	}
	return e, nil
}
