package simulate

import (
	"encoding/xml"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plotRecords: two runs (kron and lora on one pair), two rounds in phase A
// and two in phase B, with ε growing when dp is set.
func plotRecords(dp bool) ([]Outcome, []RoundRecord) {
	var recs []RoundRecord
	var outs []Outcome
	for i, a := range []string{"kron-r8", "lora-r8"} {
		for r := 1; r <= 4; r++ {
			rec := RoundRecord{Adapter: a, Pair: "x→y", TaskA: "x", TaskB: "y", Phase: "A", Round: r, Clients: 4,
				AccA: 0.3 + 0.1*float64(r), AccB: 0.2 + 0.05*float64(r+i), WireBytes: 1 << 20, RawBytes: 4 << 20}
			if r > 2 {
				rec.Phase = "B"
			}
			if dp {
				rec.Epsilon = 0.5 * float64(r)
			}
			recs = append(recs, rec)
		}
		outs = append(outs, Outcome{Adapter: a, Pair: "x→y", TaskA: "x", TaskB: "y", AccAAfterA: 0.5, AccAAfterB: 0.4 - 0.1*float64(i), Forgetting: 0.1 + 0.1*float64(i)})
	}
	return outs, recs
}

// TestPlotsAreRealImages writes a forgetting run folder and reads every
// figure back: each PNG decodes at PNGSize and shows both series' palette
// colours; each SVG is well-formed XML naming both runs in its legend; the
// ε figure is there exactly when DP was on.
func TestPlotsAreRealImages(t *testing.T) {
	for _, dp := range []bool{false, true} {
		dir := t.TempDir()
		outs, recs := plotRecords(dp)
		if _, err := WriteResults(dir, outs, recs); err != nil {
			t.Fatal(err)
		}
		figs := []string{"accuracy", "forgetting", "bytes"}
		if dp {
			figs = append(figs, "epsilon")
		}
		for _, name := range figs {
			img := readPNG(t, filepath.Join(dir, name+".png"))
			w, h := PNGSize()
			if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
				t.Errorf("%s.png is %v, want %dx%d", name, b, w, h)
			}
			for i := range 2 {
				if n := countColour(img, palette[i]); n < 50 {
					t.Errorf("%s.png: series %d's colour on %d pixels", name, i, n)
				}
			}
			texts := svgTexts(t, filepath.Join(dir, name+".svg"))
			for _, want := range []string{"kron-r8", "lora-r8"} {
				if !strings.Contains(texts, want) {
					t.Errorf("%s.svg does not name %s; its text: %q", name, want, texts)
				}
			}
		}
		_, err := os.Stat(filepath.Join(dir, "epsilon.png"))
		if dp != (err == nil) {
			t.Errorf("dp=%v: epsilon.png: %v", dp, err)
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// countColour counts pixels within a small distance of c (antialiasing
// blends edges, line centres keep the colour).
func countColour(img image.Image, c color.Color) int {
	cr, cg, cb, _ := c.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, cr) && near(g, cg) && near(bl, cb) {
				n++
			}
		}
	}
	return n
}

func near(a, b uint32) bool { return max(a, b)-min(a, b) < 0x0800 }

// svgTexts parses an SVG as XML and returns its character data.
func svgTexts(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var sb strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", path, err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = v.Name.Local
			}
		case xml.CharData:
			sb.Write(v)
			sb.WriteByte(' ')
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q", path, root)
	}
	return sb.String()
}

// TestSweepResults: the table lists DP points by ε ascending and then the
// run without DP, per adapter; the accuracy-vs-ε plot is a real image with
// every series' colour and names every series and baseline.
func TestSweepResults(t *testing.T) {
	pts := []SweepPoint{
		{Name: "k-nodp", Adapter: "kron:8", LR: 0.003, Bits: 8, FinalAcc: 0.9, Rounds: 3},
		{Name: "k-z1", Adapter: "kron:8", LR: 0.003, Bits: 8, Noise: 1, Clip: 0.5, Epsilon: 4, Delta: 1e-5, FinalAcc: 0.6, Rounds: 3},
		{Name: "k-z2", Adapter: "kron:8", LR: 0.003, Bits: 8, Noise: 2, Clip: 0.5, Epsilon: 1.5, Delta: 1e-5, FinalAcc: 0.4, Rounds: 3},
		{Name: "l-nodp", Adapter: "lora:8", LR: 0.001, Bits: 8, FinalAcc: 0.95, Rounds: 3},
		{Name: "l-z1", Adapter: "lora:8", LR: 0.001, Bits: 8, Noise: 1, Clip: 0.5, Epsilon: 4, Delta: 1e-5, FinalAcc: 0.5, Rounds: 3},
		{Name: "l-z2", Adapter: "lora:8", LR: 0.001, Bits: 8, Noise: 2, Clip: 0.5, Epsilon: 1.5, Delta: 1e-5, FinalAcc: 0.3, Rounds: 3},
	}
	var order []string
	for _, p := range sortedSweep(pts) {
		order = append(order, p.Name)
	}
	if want := "k-z2 k-z1 k-nodp l-z2 l-z1 l-nodp"; strings.Join(order, " ") != want {
		t.Fatalf("table order %v, want %s", order, want)
	}
	dir := t.TempDir()
	table, err := WriteSweepResults(dir, pts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "| kron:8 | 0.003 | 8 | 2 | 0.5 | 3 | 1.5 | 0.400 |") || !strings.Contains(table, "∞ (no DP)") {
		t.Fatalf("table:\n%s", table)
	}
	img := readPNG(t, filepath.Join(dir, "accuracy_vs_epsilon.png"))
	for i := range 2 {
		if n := countColour(img, palette[i]); n < 50 {
			t.Errorf("series %d's colour on %d pixels", i, n)
		}
	}
	texts := svgTexts(t, filepath.Join(dir, "accuracy_vs_epsilon.svg"))
	for _, want := range []string{"kron:8 lr=0.003 8-bit C=0.5", "lora:8 lr=0.001 8-bit C=0.5", "kron:8 lr=0.003 8-bit, no DP", "lora:8 lr=0.001 8-bit, no DP"} {
		if !strings.Contains(texts, want) {
			t.Errorf("plot does not name %q: %q", want, texts)
		}
	}
}

// TestRunResultsEpsilonColumn: a single run's table and figures carry ε
// exactly when the run had DP.
func TestRunResultsEpsilonColumn(t *testing.T) {
	for _, dp := range []bool{false, true} {
		_, recs := plotRecords(dp)
		recs = recs[:4] // one run
		dir := t.TempDir()
		table, err := WriteRunResults(dir, recs)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(table, "ε") != dp || (dp && !strings.Contains(table, "| 1 | 4 | 0.0000 | 0.400 | 0.5 | 1.0 MiB |")) {
			t.Errorf("dp=%v: table\n%s", dp, table)
		}
		_, err = os.Stat(filepath.Join(dir, "epsilon.png"))
		if dp != (err == nil) {
			t.Errorf("dp=%v: epsilon.png: %v", dp, err)
		}
		readPNG(t, filepath.Join(dir, "accuracy.png"))
	}
}
