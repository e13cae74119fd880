package task

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// solve answers a synthetic item from its context alone, independently of the
// generator; ok is false for families without a rule to recompute.
func solve(t *testing.T, family, ctx string) (answer string, ok bool) {
	t.Helper()
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s: %q is not a number in %q", family, s, ctx)
		}
		return n
	}
	match := func(re string) []string {
		m := regexp.MustCompile(re).FindStringSubmatch(ctx)
		if m == nil {
			t.Fatalf("%s: context %q does not match %s", family, ctx, re)
		}
		return m
	}
	switch family {
	case "add-mod-10":
		m := match(`^question what is (\d+) plus (\d+) mod 10 answer$`)
		return strconv.Itoa((num(m[1]) + num(m[2])) % 10), true
	case "add-mod-10-alt":
		m := match(`^x is (\d+) and y is (\d+) so the last digit of x plus y is$`)
		return strconv.Itoa((num(m[1]) + num(m[2])) % 10), true
	case "sub-mod-10":
		m := match(`^question what is (\d+) minus (\d+) mod 10 answer$`)
		return strconv.Itoa(((num(m[1])-num(m[2]))%10 + 10) % 10), true
	case "next-letter":
		m := match(`^question which letter comes after ([a-y]) answer$`)
		return string(rune(m[1][0] + 1)), true
	case "larger":
		m := match(`^question which number is larger (\d+) or (\d+) answer$`)
		return strconv.Itoa(max(num(m[1]), num(m[2]))), true
	case "reverse-letters":
		m := match(`^question reverse the letters ([a-z ]+) answer$`)
		f := strings.Fields(m[1])
		slices.Reverse(f)
		return strings.Join(f, " "), true
	case "majority-color":
		m := match(`^question ([a-z ]+) which color appears most often answer$`)
		counts := map[string]int{}
		best, bestN := "", 0
		for _, c := range strings.Fields(m[1]) {
			counts[c]++
			if counts[c] > bestN {
				best, bestN = c, counts[c]
			}
		}
		for c, n := range counts {
			if c != best && n == bestN {
				t.Fatalf("%s: tie between %s and %s in %q", family, c, best, ctx)
			}
		}
		return best, true
	}
	return "", false
}

func TestSyntheticFamilies(t *testing.T) {
	vocab := map[string]bool{}
	for _, w := range Vocabulary() {
		vocab[w] = true
	}
	for _, name := range SyntheticNames() {
		t.Run(name, func(t *testing.T) {
			const n = 400
			task, err := Synthetic(name, n, 42)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Synthetic(name, n, 42)
			if !reflect.DeepEqual(task.Items, again.Items) {
				t.Fatal("same seed gave different items")
			}
			other, _ := Synthetic(name, n, 43)
			if reflect.DeepEqual(task.Items, other.Items) {
				t.Fatal("different seeds gave identical items")
			}
			positions := make([]int, 4)
			for _, it := range task.Items {
				if err := it.Validate(); err != nil {
					t.Fatal(err)
				}
				if len(it.Choices) < 2 || len(it.Choices) > 4 || len(strings.Fields(it.Context)) > 32 {
					t.Fatalf("item %s: %d choices, %d context words", it.ID, len(it.Choices), len(strings.Fields(it.Context)))
				}
				for _, w := range strings.Fields(it.Context + " " + strings.Join(it.Choices, " ")) {
					if !vocab[w] {
						t.Fatalf("item %s: word %q is not in Vocabulary()", it.ID, w)
					}
				}
				if ans, ok := solve(t, name, it.Context); ok && it.Choices[it.Label] != ans {
					t.Fatalf("item %s %q: gold %q, the rule gives %q", it.ID, it.Context, it.Choices[it.Label], ans)
				}
				positions[it.Label]++
			}
			// Gold positions balanced: each within 25% of the even share.
			c := len(task.Items[0].Choices)
			for p := 0; p < c; p++ {
				if share := float64(positions[p]) / (float64(n) / float64(c)); share < 0.75 || share > 1.25 {
					t.Errorf("gold at position %d in %d of %d items", p, positions[p], n)
				}
			}
		})
	}
	if _, err := Synthetic("no-such-family", 10, 1); err == nil {
		t.Error("unknown family accepted")
	}
}

func TestPartitions(t *testing.T) {
	task, err := Synthetic("word-category", 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, parts [][]int, n int) {
		t.Helper()
		if len(parts) != n {
			t.Fatalf("%s: %d parts, want %d", name, len(parts), n)
		}
		seen := make([]bool, len(task.Items))
		for c, p := range parts {
			if len(p) == 0 {
				t.Fatalf("%s: client %d is empty", name, c)
			}
			for _, i := range p {
				if seen[i] {
					t.Fatalf("%s: item %d assigned twice", name, i)
				}
				seen[i] = true
			}
		}
		for i, s := range seen {
			if !s {
				t.Fatalf("%s: item %d not assigned", name, i)
			}
		}
	}
	iid, err := PartitionIID(task.Items, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	check("iid", iid, 8)
	for _, p := range iid {
		if len(p) != 125 {
			t.Fatalf("iid client sizes %d, want 125 each", len(p))
		}
	}
	again, _ := PartitionIID(task.Items, 8, 1)
	if !reflect.DeepEqual(iid, again) {
		t.Fatal("IID partition not reproducible")
	}
	// Label skew: the mean over clients of the largest class share.
	skew := func(parts [][]int) float64 {
		var s float64
		for _, p := range parts {
			counts := map[string]int{}
			top := 0
			for _, i := range p {
				k := ClassKey(&task.Items[i])
				counts[k]++
				top = max(top, counts[k])
			}
			s += float64(top) / float64(len(p))
		}
		return s / float64(len(parts))
	}
	for _, c := range []struct {
		alpha    float64
		min, max float64
	}{{0.1, 0.7, 1.0}, {1000, 0, 0.4}, {math.Inf(1), 0, 0.4}} {
		parts, err := PartitionDirichlet(task.Items, 8, c.alpha, 7)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("dirichlet %v", c.alpha), parts, 8)
		if s := skew(parts); s < c.min || s > c.max {
			t.Errorf("alpha %v: mean top-class share %.3f outside [%.2f, %.2f]", c.alpha, s, c.min, c.max)
		}
	}
	if _, err := PartitionDirichlet(task.Items, 8, 0, 1); err == nil {
		t.Error("alpha 0 accepted")
	}
	if _, err := PartitionIID(task.Items, 0, 1); err == nil {
		t.Error("0 clients accepted")
	}
}

// TestGammaMoments checks the sampler's mean and variance (both = shape) for
// shapes on both sides of the α < 1 boost, within 5 standard errors.
func TestGammaMoments(t *testing.T) {
	src := rand.NewPCG(9, 9)
	for _, shape := range []float64{0.1, 0.5, 1, 2.5, 10} {
		const n = 40000
		var s, ss float64
		for i := 0; i < n; i++ {
			x := Gamma(src, shape)
			s += x
			ss += x * x
		}
		mean := s / n
		variance := ss/n - mean*mean
		// Var(mean) = shape/n; Var(sample variance) ≈ (μ4 − σ⁴)/n with
		// μ4 = 3k² + 6k for Gamma(k).
		if se := math.Sqrt(shape / n); math.Abs(mean-shape) > 5*se {
			t.Errorf("shape %v: mean %.4f, want %v ± %.4f", shape, mean, shape, 5*se)
		}
		if se := math.Sqrt((3*shape*shape + 6*shape - shape*shape) / n); math.Abs(variance-shape) > 5*se {
			t.Errorf("shape %v: variance %.4f, want %v ± %.4f", shape, variance, shape, 5*se)
		}
	}
}
