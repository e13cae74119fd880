package main

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kronfed/kronfed/fed"
)

// exportedNames is every series name a coordinator's /metrics can show:
// its registry as serve builds it (the Go and process collectors and
// fed.NewMetrics), histograms with their _bucket, _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := fed.NewMetrics(reg)
	names := map[string]bool{}
	add := func(name string, histogram bool) {
		names[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	fams, err := reg.Gather() // the unlabelled series, present from the start
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		add(f.GetName(), f.GetType().String() == "HISTOGRAM")
	}
	// The labelled ones appear once observed: take their descriptions.
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		_, histogram := c.(prometheus.ObserverVec)
		if _, h := c.(prometheus.Histogram); h {
			histogram = true
		}
		for d := range ch {
			if mm := fq.FindStringSubmatch(d.String()); mm != nil {
				add(mm[1], histogram)
			}
		}
	}
	return names
}

// TestGrafanaDashboard: every query of docs/grafana's dashboard names only
// series the coordinator exports, and every panel reads the dashboard's
// Prometheus input, has a title and a place on the grid.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana/kronfed-coordinator.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct{ Name string } `json:"__inputs"`
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			GridPos    struct{ W, H int } `json:"gridPos"`
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || len(dash.Panels) < 10 {
		t.Fatalf("inputs %v, %d panels", dash.Inputs, len(dash.Panels))
	}
	exported := exportedNames(t)
	for _, must := range []string{"kronfed_rounds_total", "kronfed_uploads_total", "kronfed_upload_seconds_bucket", "process_resident_memory_bytes"} {
		if !exported[must] {
			t.Fatalf("the exported names lack %s: the check itself is broken", must)
		}
	}
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promql := []string{"sum", "by", "rate", "increase", "histogram_quantile", "le", "outcome", "result", "reason", "__rate_interval"}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Title == "" || p.Datasource.UID != "${DS_PROMETHEUS}" || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %+v", p)
		}
		for _, tg := range p.Targets {
			for _, id := range ident.FindAllString(tg.Expr, -1) {
				if slices.Contains(promql, id) {
					continue
				}
				used[id] = true
				if !exported[id] {
					t.Errorf("panel %q queries %s, which the coordinator does not export", p.Title, id)
				}
			}
		}
	}
	// Every kronfed series is on the dashboard.
	for name := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "kronfed_") && !used[name] && !used[base] && !used[base+"_bucket"] {
			t.Errorf("series %s is on no panel", name)
		}
	}
}
