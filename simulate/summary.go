package simulate

import (
	"fmt"
	"math"
)

// Stat is a quantity over seeds: its mean, its sample standard deviation
// (0 with one seed) and how many seeds it averages.
type Stat struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	N    int     `json:"n"`
}

func newStat(xs []float64) Stat {
	s := Stat{N: len(xs)}
	if s.N == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// Cell formats a stat for a table: "0.912" for one seed, "0.912 ± 0.031"
// for several, "not run" for none; signed puts a + on positive means.
func (s Stat) Cell(signed bool) string {
	if s.N == 0 {
		return "not run"
	}
	f := "%.3f"
	if signed {
		f = "%+.3f"
	}
	if s.N == 1 {
		return fmt.Sprintf(f, s.Mean)
	}
	return fmt.Sprintf(f+" ± %.3f", s.Mean, s.SD)
}

// Summary is one (adapter, mitigation, pair) of an experiment over its
// seeds.
type Summary struct {
	Adapter         string  `json:"adapter"`
	Mitigation      string  `json:"mitigation"`
	TrainableParams int     `json:"trainable_params"`
	Pair            string  `json:"pair"`
	TaskA           string  `json:"task_a"`
	TaskB           string  `json:"task_b"`
	LR              float64 `json:"lr"`
	Seeds           int     `json:"seeds"`
	// Each accuracy over the seeds whose phase ran.
	AccAAfterA Stat `json:"acc_a_after_a"`
	AccBAfterA Stat `json:"acc_b_after_a"`
	AccAAfterB Stat `json:"acc_a_after_b"`
	AccBAfterB Stat `json:"acc_b_after_b"`
	Forgetting Stat `json:"forgetting"`
	// UploadedBytes and RawBytes are one seed's (the first that ran).
	UploadedBytes, RawBytes uint64
	Epsilon                 float64 `json:"epsilon,omitempty"` // the largest over seeds
	Accountant              string  `json:"accountant,omitempty"`
	// Stops lists why phases did not run.
	Stops []string `json:"stops,omitempty"`
}

// Summarize groups outcomes by (adapter, mitigation, pair), in first-seen
// order.
func Summarize(outcomes []Outcome) []Summary {
	var out []Summary
	index := map[[3]string]int{}
	var vals [][5][]float64
	for _, o := range outcomes {
		k := [3]string{o.Adapter, o.Mitigation, o.Pair}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Summary{Adapter: o.Adapter, Mitigation: o.Mitigation, Pair: o.Pair, TaskA: o.TaskA, TaskB: o.TaskB, LR: o.LR})
			vals = append(vals, [5][]float64{})
		}
		s := &out[i]
		s.Seeds++
		if o.NotRun != "" {
			s.Stops = append(s.Stops, fmt.Sprintf("seed %d: phase %s not run: %s", o.Seed, o.NotRun, o.Stopped))
		}
		if o.NotRun == "A and B" {
			continue
		}
		if s.TrainableParams == 0 {
			s.TrainableParams, s.UploadedBytes, s.RawBytes = o.TrainableParams, o.UploadedBytes, o.RawBytes
		}
		s.Epsilon, s.Accountant = max(s.Epsilon, o.Epsilon), o.Accountant
		v := &vals[i]
		v[0] = append(v[0], o.AccAAfterA)
		v[1] = append(v[1], o.AccBAfterA)
		if o.NotRun == "" {
			v[2] = append(v[2], o.AccAAfterB)
			v[3] = append(v[3], o.AccBAfterB)
			v[4] = append(v[4], o.Forgetting)
		}
	}
	for i := range out {
		v := vals[i]
		out[i].AccAAfterA, out[i].AccBAfterA = newStat(v[0]), newStat(v[1])
		out[i].AccAAfterB, out[i].AccBAfterB, out[i].Forgetting = newStat(v[2]), newStat(v[3]), newStat(v[4])
	}
	return out
}

// meanOverSeeds averages round records of the same (adapter, pair, phase,
// round) over seeds, keeping the first seed's order: one curve per run in
// the plots however many seeds ran.
func meanOverSeeds(records []RoundRecord) []RoundRecord {
	type key struct {
		series, phase string
		round         int
	}
	var out []RoundRecord
	index := map[key]int{}
	counts := []int{}
	for _, r := range records {
		k := key{seriesKey(r), r.Phase, r.Round}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			r.Seed = 0
			out = append(out, r)
			counts = append(counts, 1)
			continue
		}
		m := &out[i]
		m.AccA += r.AccA
		m.AccB += r.AccB
		m.TrainLoss += r.TrainLoss
		counts[i]++
	}
	for i := range out {
		n := float64(counts[i])
		out[i].AccA /= n
		out[i].AccB /= n
		out[i].TrainLoss /= n
	}
	return out
}
