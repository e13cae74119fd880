package adapter_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/adapter/quant"
	"github.com/kronfed/kronfed/safetensors"
	"github.com/kronfed/kronfed/train"
)

// Example_uploadSize prints what a Kron-LoRA upload costs on DistilBERT's
// shape (36 adapted linears, r = 8, dA2 = 4: B1 is 192×8 or 768×8) and on a
// tiny r = 4 adapter, with the upload scheme (symmetric, per-row, stochastic):
// the encoded file now (tall factors per-column) and before (every factor
// per-row), against float32. The sizes do not depend on the factor values.
//
// "tensors" counts the tensor data alone; the rest of a file is the
// safetensors JSON header, which spells out every tensor name and the module
// list (about 14 KB here). Within the tensors, what still separates 8 bits
// from exactly 4× (and 4 bits from 8×) is one float32 scale per row of each
// wide factor, per column of each tall one, and quant's 13-byte header per
// factor; in the tiny adapter those headers dominate.
func Example_uploadSize() {
	cfg := train.DistilBERTConfig()
	distil := cfg.Targets()
	tiny := []adapter.Target{{Name: "l0.q", DOut: 32, DIn: 64}, {Name: "l0.o", DOut: 64, DIn: 32}}
	tinyCfg := adapter.Config{Kind: adapter.KindKron, Rank: 4, DA2: 4, Alpha: 8}
	for _, c := range []struct {
		name    string
		cfg     adapter.Config
		targets []adapter.Target
	}{
		{"distilbert kron-lora r=8", adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden), distil},
		{"tiny kron-lora r=4", tinyCfg, tiny},
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		set, err := adapter.NewSet(c.cfg, "base", c.targets, rng)
		if err != nil {
			panic(err)
		}
		for _, p := range set.Params() {
			for i := range p.Data {
				p.Data[i] = float32(rng.NormFloat64())
			}
		}
		f32, p32 := fileSize(set, adapter.Float32, false)
		fmt.Printf("%s: %d params; float32: file %d bytes, tensors %d\n", c.name, set.NumParams(), f32, p32)
		for _, bits := range []int{8, 4} {
			opts := adapter.SaveOptions{Bits: bits, Rng: rng,
				Scheme: quant.Scheme{Symmetric: true, PerRow: true, Stochastic: true}}
			now, pnow := fileSize(set, opts, false)
			before, pbefore := fileSize(set, opts, true)
			fmt.Printf("  %d-bit now:    file %7d (%.2fx smaller), tensors %7d (%.2fx)\n",
				bits, now, float64(f32)/float64(now), pnow, float64(p32)/float64(pnow))
			fmt.Printf("  %d-bit before: file %7d (%.2fx smaller), tensors %7d (%.2fx)\n",
				bits, before, float64(f32)/float64(before), pbefore, float64(p32)/float64(pbefore))
		}
	}
	// Output:
	// distilbert kron-lora r=8: 249120 params; float32: file 1010512 bytes, tensors 996480
	//   8-bit now:    file  266884 (3.79x smaller), tensors  253116 (3.94x)
	//   8-bit before: file  307516 (3.29x smaller), tensors  293724 (3.39x)
	//   4-bit now:    file  142196 (7.11x smaller), tensors  128556 (7.75x)
	//   4-bit before: file  182876 (5.53x smaller), tensors  169164 (5.89x)
	// tiny kron-lora r=4: 304 params; float32: file 1824 bytes, tensors 1216
	//   8-bit now:    file    1086 (1.68x smaller), tensors     462 (2.63x)
	//   8-bit before: file    1166 (1.56x smaller), tensors     542 (2.24x)
	//   4-bit now:    file     926 (1.97x smaller), tensors     310 (3.92x)
	//   4-bit before: file    1014 (1.80x smaller), tensors     390 (3.12x)
}

// fileSize is the size of set's adapter file under opts, and of its tensor
// data alone (without the safetensors JSON header, which spells out every
// tensor name); perRowEverywhere rebuilds it as Encode did before tall factors
// went per-column.
func fileSize(set *adapter.Set, opts adapter.SaveOptions, perRowEverywhere bool) (file, tensorBytes int) {
	meta, tensors, err := set.Encode(opts)
	if err != nil {
		panic(err)
	}
	if perRowEverywhere {
		s := opts.Scheme
		s.Bits = opts.Bits
		for i, p := range set.Params() { // the factors, in Encode's order (no dense tensors here)
			q, err := quant.Quantize(p.Data, p.Rows, p.Cols, s, opts.Rng)
			if err != nil {
				panic(err)
			}
			enc, err := q.MarshalBinary()
			if err != nil {
				panic(err)
			}
			tensors[i] = safetensors.Tensor{Name: tensors[i].Name, DType: safetensors.U8, Shape: []int{len(enc)}, Data: enc}
		}
	}
	for _, t := range tensors {
		tensorBytes += len(t.Data)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, meta, tensors); err != nil {
		panic(err)
	}
	return buf.Len(), tensorBytes
}
