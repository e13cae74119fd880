package simulate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport writes a run folder with the real result writers, reads it
// back as a report run and checks both pages carry what a citation needs:
// the command, the seeds, the table, the settings and every plot.
func TestReport(t *testing.T) {
	run := filepath.Join(t.TempDir(), "forgetting-x")
	outcomes, records := plotRecords(false)
	outcomes[0].Seed, outcomes[1].Seed = 4, 5
	if _, err := WriteResults(run, outcomes, records); err != nil {
		t.Fatal(err)
	}
	cfg := "# Resolved settings.\n# reproduce: go run ./cmd/simulate forgetting --config " + run + "/config.toml\n\nmodel = \"builtin\"\nseed = 4\n"
	if err := os.WriteFile(filepath.Join(run, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReportRun(run)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "forgetting-x" || !strings.HasPrefix(r.Command, "go run ./cmd/simulate forgetting --config") || len(r.Seeds) != 2 || r.Seeds[0] != 4 ||
		len(r.Plots) != 3 || r.Plots[0] != "accuracy.png" {
		t.Fatalf("run %+v", r)
	}
	out := t.TempDir()
	if err := WriteReport(out, []*ReportRun{r}, ReportMeta{Generated: "today", Version: "v", Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"## forgetting-x", "Reproduce: `go run ./cmd/simulate forgetting --config", "Seeds: 4, 5.", "| kron-r8 |",
		"![forgetting](forgetting-x-forgetting.png)", "```toml\n# Resolved settings.", "by kronfed v on m"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	for _, p := range r.Plots {
		if _, err := os.Stat(filepath.Join(out, "forgetting-x-"+p)); err != nil {
			t.Errorf("plot not copied: %v", err)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	h := string(page)
	if n := strings.Count(h, `src="data:image/png;base64,iVBOR`); n != 3 {
		t.Errorf("%d inlined PNGs, want 3", n)
	}
	for _, want := range []string{"<h2>forgetting-x</h2>", "<th>adapter</th>", `<td class="r">`, "<pre># Resolved settings.", "<code>go run"} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Folders that are not runs are refused, naming what is missing.
	if _, err := ReadReportRun(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no config.toml") {
		t.Errorf("empty folder: %v", err)
	}
	os.Remove(filepath.Join(run, "table.md"))
	if _, err := ReadReportRun(run); err == nil || !strings.Contains(err.Error(), "no table.md") {
		t.Errorf("no table: %v", err)
	}
}

func TestMarkdownHTML(t *testing.T) {
	got, err := markdownHTML("# T <x>\n\npara `c<d>` one\ntwo\n\n| a | b |\n|---|---:|\n| x & y | 1 |\n\n```\n<raw>\n```\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1>T &lt;x&gt;</h1>", "<p>para <code>c&lt;d&gt;</code> one two</p>", "<th>a</th><th>b</th>",
		"<td>x &amp; y</td><td class=\"r\">1</td>", "<pre>&lt;raw&gt;\n</pre>"} {
		if !strings.Contains(got, want) {
			t.Errorf("html lacks %q:\n%s", want, got)
		}
	}
}
