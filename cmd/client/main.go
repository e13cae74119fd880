// Command client is kronfed's client: it fine-tunes adapters on a frozen model,
// inspects and exports adapter files, and measures the CPU kernels.
//
//	client params --config FILE --adapter kron|lora [--rank R] [--dA2 D] [--json]
//	client init --config FILE --adapter kron|lora --out FILE [--init peft|random]
//	client generate --model FILE [--prompt TEXT] --max-tokens N --temperature 0
//	client pretrain --out FILE | --builtin [--steps N] [--text FILE]
//	client train --model M --task T --adapter kron|lora [--epochs E] [--out FILE]
//	client join --coordinator ADDR --bundle FILE --model M --task T [--shard i/N] [--rank R] [--dA2 D]
//	client eval --model M --task T [--adapter FILE] [--split validation]
//	client quant-report --adapter FILE [--bits 8,4] [--json]
//	client export --adapter FILE --out DIR [--format lokr|lora|merged]
//	client data list | client data fetch [--dir DIR] [--mirror URL] NAME... | all
//	client bench kernels [--json]
//	client bench train [--json]
package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/model"
)

var program = &cli.Program{Name: "client", Commands: []cli.Command{
	{Name: "params", Summary: "count a model's trainable parameters and upload size under an adapter", Run: runParams},
	{Name: "init", Summary: "write a freshly initialized adapter file for a model", Run: runInit},
	{Name: "generate", Summary: "continue a prompt with a decoder (greedy at temperature 0)", Run: runGenerate},
	{Name: "pretrain", Summary: "pretrain the built-in architecture's every weight on the synthetic world's text (--builtin regenerates the embedded model)", Run: runPretrain},
	{Name: "train", Summary: "fine-tune an adapter locally on a task", Run: runTrain},
	{Name: "join", Summary: "take part in a federation: join a coordinator, train each round, upload encrypted quantized updates", Run: runJoin},
	{Name: "eval", Summary: "score a model (and adapter) on a task", Run: runEval},
	{Name: "quant-report", Summary: "quantize an adapter's factors and report the error against the paper's bound", Run: runQuantReport},
	{Name: "export", Summary: "export an adapter file to PEFT (LoKr or LoRA) or as merged ΔW", Run: runExport},
	{Name: "data", Summary: "data list | data fetch NAME…: download the benchmark datasets into a data folder, every file checked against its SHA-256", Run: runData},
	{Name: "bench", Summary: "measure the CPU kernels (bench kernels) or a whole training step (bench train)", Run: runBench},
}}

func main() { program.Main() }

func run(args []string, stdout io.Writer) error { return program.Run(args, stdout) }

func newFlags(name string) *flag.FlagSet { return cli.NewFlags("client", name) }

func parseFlags(fs *flag.FlagSet, args []string) error { return cli.ParseFlags(fs, args) }

// modelAdapterFlags are the flags naming a base model and the adapter to put
// on it, shared by the commands that build adapters for a model.
type modelAdapterFlags struct {
	config, kind *string
	rank, dA2    *int
	alpha        *float64
}

func addModelAdapterFlags(fs *flag.FlagSet) *modelAdapterFlags {
	return &modelAdapterFlags{
		config: fs.String("config", "", "Hugging Face config.json of the base model (required)"),
		kind:   fs.String("adapter", "kron", "adapter kind: kron or lora"),
		rank:   fs.Int("rank", 8, "rank r of B1·B2 (kron) or q (lora)"),
		dA2:    fs.Int("dA2", 0, "rows of the Kronecker factor A (kron only; 0: divisor of the hidden size closest to hidden/200)"),
		alpha:  fs.Float64("alpha", 32, "scale numerator: ΔW is multiplied by alpha/rank"),
	}
}

// load reads the model config and builds the validated adapter config
// (dA2 still 0 when defaulted: CountParams and Resolve fill it).
func (f *modelAdapterFlags) load(cmd string) (*model.Config, adapter.Config, error) {
	var ac adapter.Config
	if *f.config == "" {
		return nil, ac, fmt.Errorf("%s: --config is required", cmd)
	}
	k, err := adapter.ParseKind(*f.kind)
	if err != nil {
		return nil, ac, fmt.Errorf("%s: --adapter: %w", cmd, err)
	}
	if k == adapter.KindLoRA && *f.dA2 != 0 {
		return nil, ac, fmt.Errorf("%s: --dA2 applies to kron adapters only", cmd)
	}
	cfg, err := model.LoadConfig(*f.config)
	if err != nil {
		return nil, ac, fmt.Errorf("%s: %w", cmd, err)
	}
	ac = adapter.DefaultConfig(k)
	ac.Rank, ac.DA2, ac.Alpha = *f.rank, *f.dA2, float32(*f.alpha)
	if err := ac.Validate(); err != nil {
		return nil, ac, fmt.Errorf("%s: %w", cmd, err)
	}
	return cfg, ac, nil
}
