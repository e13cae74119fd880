package simulate

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A results page: `simulate report RUN...` gathers the run folders that
// forgetting, run and sweep write into one Markdown page (report.md, with
// the plots copied beside it) and one self-contained HTML page
// (report.html, plots inlined), each run with the command that reproduces
// it, its resolved settings, its seeds, its table and its plots — what a
// result needs to be cited and rerun.

// ReportMeta is what the page says about where it was made.
type ReportMeta struct {
	Generated string // date and time
	Version   string // the program's version (VCS revision)
	Machine   string // CPU and cores
}

// ReportRun is one run folder as the page shows it.
type ReportRun struct {
	Dir     string
	Name    string
	Command string   // the command that reproduces it (config.toml's "reproduce:" line)
	Config  string   // config.toml, verbatim
	Seeds   []uint64 // from summary.csv (forgetting), else config's seed
	Table   string   // table.md
	Plots   []string // PNG file names in Dir, sorted
}

// ReadReportRun reads a run folder: it must hold config.toml and
// table.md (what every simulate command writes).
func ReadReportRun(dir string) (*ReportRun, error) {
	r := &ReportRun{Dir: dir, Name: filepath.Base(filepath.Clean(dir))}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.toml"))
	if err != nil {
		return nil, fmt.Errorf("report: %s is not a run folder (no config.toml): %w", dir, err)
	}
	r.Config = string(cfg)
	table, err := os.ReadFile(filepath.Join(dir, "table.md"))
	if err != nil {
		return nil, fmt.Errorf("report: %s has no table.md (an interrupted run?): %w", dir, err)
	}
	r.Table = strings.TrimSpace(string(table))
	r.Command = reproduce(r.Config)
	if r.Command == "" {
		r.Command = "go run ./cmd/simulate forgetting --config " + filepath.Join(dir, "config.toml")
	}
	r.Seeds = csvSeeds(filepath.Join(dir, "summary.csv"))
	if len(r.Seeds) == 0 {
		if s, ok := tomlUint(r.Config, "seed"); ok {
			r.Seeds = []uint64{s}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".png") {
			r.Plots = append(r.Plots, e.Name())
		}
	}
	slices.Sort(r.Plots)
	return r, nil
}

// reproduce is config.toml's "# reproduce: COMMAND" line, "" without one.
func reproduce(cfg string) string {
	for _, l := range strings.Split(cfg, "\n") {
		if c, ok := strings.CutPrefix(l, "# reproduce: "); ok {
			return strings.TrimSpace(c)
		}
	}
	return ""
}

// tomlUint reads a top-level "key = N" line.
func tomlUint(cfg, key string) (uint64, bool) {
	sc := bufio.NewScanner(strings.NewReader(cfg))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// csvSeeds lists the distinct values of summary.csv's seed column.
func csvSeeds(path string) []uint64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil
	}
	col := slices.Index(rows[0], "seed")
	if col < 0 {
		return nil
	}
	var out []uint64
	for _, row := range rows[1:] {
		if n, err := strconv.ParseUint(row[col], 10, 64); err == nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// WriteReport writes out/report.md (plots copied beside it as
// RUN-PLOT.png) and out/report.html (plots inlined) for the runs.
func WriteReport(out string, runs []*ReportRun, meta ReportMeta) error {
	if len(runs) == 0 {
		return fmt.Errorf("report: no runs")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# kronfed results\n\n%d run(s). Generated %s by kronfed %s on %s.\n", len(runs), meta.Generated, meta.Version, meta.Machine)
	images := map[string]string{} // copied name → source path, for the HTML
	for _, r := range runs {
		fmt.Fprintf(&md, "\n## %s\n\n", r.Name)
		fmt.Fprintf(&md, "Folder `%s`. Reproduce: `%s`.\n", r.Dir, r.Command)
		if len(r.Seeds) > 0 {
			seeds := make([]string, len(r.Seeds))
			for i, s := range r.Seeds {
				seeds[i] = strconv.FormatUint(s, 10)
			}
			fmt.Fprintf(&md, "Seeds: %s.\n", strings.Join(seeds, ", "))
		}
		fmt.Fprintf(&md, "\n### Results\n\n%s\n", r.Table)
		if len(r.Plots) > 0 {
			md.WriteString("\n### Plots\n\n")
			for _, p := range r.Plots {
				name := r.Name + "-" + p
				src := filepath.Join(r.Dir, p)
				b, err := os.ReadFile(src)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
					return fmt.Errorf("report: %w", err)
				}
				images[name] = src
				fmt.Fprintf(&md, "![%s](%s)\n\n", strings.TrimSuffix(p, ".png"), name)
			}
		}
		fmt.Fprintf(&md, "\n### Settings (config.toml)\n\n```toml\n%s\n```\n", strings.TrimSpace(r.Config))
	}
	if err := os.WriteFile(filepath.Join(out, "report.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	page, err := markdownHTML(md.String(), func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			return "", err
		}
		return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b), nil
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.WriteFile(filepath.Join(out, "report.html"), []byte(page), 0o644)
}

// markdownHTML renders the Markdown subset the page uses — headings,
// paragraphs, pipe tables (with ":" alignment), fenced code, images on
// their own line, `code` spans — as one HTML document; image sources go
// through src (to inline them).
func markdownHTML(md string, src func(string) (string, error)) (string, error) {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kronfed results</title>
<style>
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}
th{background:#f3f3f3}td.r{text-align:right}pre{background:#f6f6f6;padding:.75rem;overflow:auto}
img{max-width:100%;border:1px solid #eee}code{background:#f3f3f3;padding:0 .2rem}
</style></head><body>
`)
	lines := strings.Split(md, "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>\n")
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```"):
			flush()
			b.WriteString("<pre>")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				b.WriteString(html.EscapeString(lines[i]) + "\n")
			}
			b.WriteString("</pre>\n")
		case strings.HasPrefix(l, "#"):
			flush()
			level := len(l) - len(strings.TrimLeft(l, "#"))
			fmt.Fprintf(&b, "<h%d>%s</h%d>\n", level, inline(strings.TrimSpace(l[level:])), level)
		case strings.HasPrefix(l, "|"):
			flush()
			var rows []string
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				rows = append(rows, lines[i])
			}
			i--
			b.WriteString(tableHTML(rows))
		case strings.HasPrefix(l, "!["):
			flush()
			alt, rest, _ := strings.Cut(l[2:], "](")
			s, err := src(strings.TrimSuffix(rest, ")"))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "<p><img alt=\"%s\" src=\"%s\"></p>\n", html.EscapeString(alt), s)
		case strings.TrimSpace(l) == "":
			flush()
		default:
			para = append(para, l)
		}
	}
	flush()
	b.WriteString("</body></html>\n")
	return b.String(), nil
}

// tableHTML renders pipe-table rows: header, alignment row, body.
func tableHTML(rows []string) string {
	cells := func(row string) []string {
		parts := strings.Split(strings.Trim(strings.TrimSpace(row), "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	if len(rows) < 2 {
		return "<pre>" + html.EscapeString(strings.Join(rows, "\n")) + "</pre>\n"
	}
	head, align := cells(rows[0]), cells(rows[1])
	var b strings.Builder
	b.WriteString("<table>\n<tr>")
	for _, h := range head {
		b.WriteString("<th>" + inline(h) + "</th>")
	}
	b.WriteString("</tr>\n")
	for _, row := range rows[2:] {
		b.WriteString("<tr>")
		for j, c := range cells(row) {
			if j < len(align) && strings.HasSuffix(align[j], ":") {
				b.WriteString(`<td class="r">` + inline(c) + "</td>")
			} else {
				b.WriteString("<td>" + inline(c) + "</td>")
			}
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	return b.String()
}

// inline escapes text and renders `code` spans.
func inline(s string) string {
	parts := strings.Split(s, "`")
	for i := range parts {
		parts[i] = html.EscapeString(parts[i])
		if i%2 == 1 {
			parts[i] = "<code>" + parts[i] + "</code>"
		}
	}
	return strings.Join(parts, "")
}
