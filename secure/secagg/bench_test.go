package secagg

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// benchLength is the DistilBERT Kron-LoRA (r = 8) parameter count.
const benchLength = 249120

// BenchmarkSecAgg runs complete rounds in-process (every client, then the
// server, on this machine, one after the other) and reports per-client
// compute, server compute, and the bytes each client sends over all four
// rounds next to a plain b-bit upload of the same vector.
//
// n = 1000 uses L = 24,912 (a tenth of the adapter) so that one round stays
// in the tens of seconds; set SECAGG_BENCH_FULL=1 for the full length.
func BenchmarkSecAgg(b *testing.B) {
	type bc struct {
		n, bits int
		ka      KeyAgreement
	}
	cases := []bc{{10, 4, X25519}, {10, 8, X25519}, {100, 4, X25519}, {100, 8, X25519}, {100, 4, XWing}, {1000, 4, X25519}, {1000, 8, X25519}}
	for _, c := range cases {
		L := benchLength
		if c.n >= 1000 && os.Getenv("SECAGG_BENCH_FULL") == "" {
			L = benchLength / 10
		}
		name := fmt.Sprintf("n=%d/b=%d/L=%d/%v", c.n, c.bits, L, c.ka)
		b.Run(name, func(b *testing.B) {
			cfg, err := Config{Round: 1, N: c.n, Bits: c.bits, TotalWeight: uint64(c.n), Length: L, KeyAgreement: c.ka}.Normalize()
			if err != nil {
				b.Fatal(err)
			}
			x := make([]float32, L)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range x {
				x[i] = float32(rng.Float64()*2 - 1)
			}
			input, err := Encode(x, 1, c.bits, 1, rng)
			if err != nil {
				b.Fatal(err)
			}
			var clientT, serverT time.Duration
			var sent int
			for i := 0; b.Loop(); i++ {
				sum, st, err := runRoundFunc(b, cfg, func(uint32) []uint64 { return input }, scenario{}, uint64(i))
				if err != nil {
					b.Fatal(err)
				}
				mask := cfg.modMask()
				for j := 0; j < L; j += 997 {
					if sum[j] != (uint64(c.n)*input[j])&mask {
						b.Fatalf("wrong sum at %d", j)
					}
				}
				clientT += st.clientTime
				serverT += st.serverTime
				for _, v := range st.sent {
					sent += v
				}
			}
			rounds := float64(b.N)
			plain := float64(PackedLen(L, c.bits))
			perClient := float64(sent) / rounds / float64(c.n)
			b.ReportMetric(clientT.Seconds()*1e3/rounds/float64(c.n), "client-ms/client")
			b.ReportMetric(serverT.Seconds()*1e3/rounds, "server-ms")
			b.ReportMetric((clientT+serverT).Seconds()/rounds, "round-s")
			b.ReportMetric(perClient, "B-sent/client")
			b.ReportMetric(plain, "B-plain-b-bit")
			b.ReportMetric(float64(cfg.MaskedInputBytes()), "B-masked-input")
			b.ReportMetric(perClient/plain, "sent/plain")
			b.ReportMetric(float64(cfg.ModulusBits()), "M-bits")
		})
	}
}
