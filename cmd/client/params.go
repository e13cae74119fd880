package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kronfed/kronfed/model"
)

func runParams(args []string, stdout io.Writer) error {
	fs := newFlags("params")
	mf := addModelAdapterFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, ac, err := mf.load("params")
	if err != nil {
		return err
	}
	rep, err := model.CountParams(cfg, ac)
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printParams(stdout, rep)
}

func printParams(w io.Writer, rep *model.ParamReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "module\tshape\ttrained\tfactors\tparams\t32-bit\t8-bit\t4-bit\t")
	for _, m := range rep.Modules {
		factors := "-"
		if len(m.Factors) > 0 {
			factors = ""
			for i, f := range m.Factors {
				if i > 0 {
					factors += " "
				}
				factors += fmt.Sprintf("%s:%dx%d", f.Name, f.Rows, f.Cols)
			}
		}
		fmt.Fprintf(tw, "%s\t%dx%d\t%s\t%s\t%d\t%s\t%s\t%s\t\n", m.Name, m.DOut, m.DIn, m.Trained, factors, m.Params,
			humanBytes(m.Bytes32), humanBytes(m.Bytes8), humanBytes(m.Bytes4))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	desc := fmt.Sprintf("%s r=%d", rep.Adapter, rep.Rank)
	if rep.DA2 > 0 {
		desc += fmt.Sprintf(" dA2=%d", rep.DA2)
	}
	fmt.Fprintf(w, "\n%s, %s: %d adapted layers\n", rep.ModelType, desc, countAdapted(rep))
	fmt.Fprintf(w, "adapter params:   %d\n", rep.AdapterParams)
	fmt.Fprintf(w, "head params:      %d (trained in full)\n", rep.HeadParams)
	fmt.Fprintf(w, "trainable params: %d (%.2f M)\n", rep.TrainableParams, float64(rep.TrainableParams)/1e6)
	fmt.Fprintf(w, "upload size:      %s at 32 bits, %s at 8 bits, %s at 4 bits (per-row float32 scales)\n",
		humanBytes(rep.UploadBytes32), humanBytes(rep.UploadBytes8), humanBytes(rep.UploadBytes4))
	return nil
}

func countAdapted(rep *model.ParamReport) int {
	n := 0
	for _, m := range rep.Modules {
		if m.Trained == "adapter" {
			n++
		}
	}
	return n
}

// humanBytes prints a byte count with a binary unit.
func humanBytes(n int) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
