package task

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
)

// SyntheticFamily describes one family of the built-in synthetic suite.
//
// Every synthetic item is plain lowercase ASCII: words and numbers from
// Vocabulary separated by single spaces, a context of at most 32 words, 2 to 4
// distinct choices of 1 to 5 words, the gold position balanced across items.
// Most contexts use the frame "question ... answer" (the lowercase analogue of
// lm-eval-harness's "Question: ...\nAnswer:"); choices are scored as " " +
// choice like the real tasks. The input spaces are small (add-mod-10 has 100
// distinct questions), so large tasks repeat questions: the suite measures
// learning and forgetting of a rule or a table, not generalization to unseen
// inputs.
type SyntheticFamily struct {
	Name string
	// Tests says what a model must learn to answer.
	Tests string
	// Example is one context and its correct continuation.
	Example string
	// Choices per item.
	Choices int
	// Class says what Item.Class holds (the key PartitionDirichlet skews by).
	Class string
}

// Relation of two synthetic families, for the forgetting protocol (train on
// A, then on B, measure A again).
type Relation string

const (
	// Same family.
	Same Relation = "same"
	// Related: the same rule under a different surface form; training on one
	// should preserve (or help) the other — the analogue of
	// ARC-Challenge ↔ ARC-Easy.
	Related Relation = "related"
	// Conflicting: the same format with a different rule, and each family's
	// correct answers appear among the other's distractors; expect the most
	// interference.
	Conflicting Relation = "conflicting"
	// Shifted: different format, vocabulary and skill — the analogue of
	// HellaSwag ↔ ARC-Easy.
	Shifted Relation = "shifted"
)

type family struct {
	SyntheticFamily
	gen func(r *rng, pos int) (ctx string, choices []string, class string)
}

var families = []family{
	{SyntheticFamily{
		Name:    "add-mod-10",
		Tests:   "single-digit addition modulo 10 (a 100-entry table); the subtraction result is always offered as a distractor when it differs",
		Example: "question what is 7 plus 5 mod 10 answer → 2",
		Choices: 4, Class: "the answer digit",
	}, genAdd},
	{SyntheticFamily{
		Name:    "add-mod-10-alt",
		Tests:   "the same rule as add-mod-10 under a different wording (no question/answer frame); related to add-mod-10",
		Example: "x is 7 and y is 5 so the last digit of x plus y is → 2",
		Choices: 4, Class: "the answer digit",
	}, genAddAlt},
	{SyntheticFamily{
		Name:    "sub-mod-10",
		Tests:   "single-digit subtraction modulo 10 in add-mod-10's template with \"minus\" for \"plus\"; the addition result is always offered as a distractor when it differs, so it conflicts with add-mod-10",
		Example: "question what is 3 minus 5 mod 10 answer → 8",
		Choices: 4, Class: "the answer digit",
	}, genSub},
	{SyntheticFamily{
		Name:    "next-letter",
		Tests:   "alphabet order: the letter after a given letter (a..y); distractors include the letter itself and the one before it",
		Example: "question which letter comes after c answer → d",
		Choices: 4, Class: "the answer letter",
	}, genNextLetter},
	{SyntheticFamily{
		Name:    "larger",
		Tests:   "comparison of two different numbers 0..99 (each number is one token, so the order of 100 tokens must be learned)",
		Example: "question which number is larger 37 or 52 answer → 52",
		Choices: 2, Class: "the tens digit of the answer",
	}, genLarger},
	{SyntheticFamily{
		Name:    "reverse-letters",
		Tests:   "sequence manipulation: reverse 3 to 5 distinct letters; distractors are the unreversed sequence, the reversal with its first two letters swapped and another permutation",
		Example: "question reverse the letters b d k answer → k d b",
		Choices: 4, Class: "the first letter of the answer",
	}, genReverse},
	{SyntheticFamily{
		Name:    "majority-color",
		Tests:   "counting: which of three colors occurs most often in a sequence of 5 to 13 color words (the majority count is strictly the largest)",
		Example: "question red blue red green red which color appears most often answer → red",
		Choices: 3, Class: "the answer color",
	}, genMajority},
	{SyntheticFamily{
		Name:    "word-category",
		Tests:   "memorized word knowledge: the category (fruit, animal, tool, vehicle) of one of 24 nouns",
		Example: "question what kind of thing is pear answer → fruit",
		Choices: 4, Class: "the answer category",
	}, genCategory},
}

var conflictingPairs = [][2]string{
	{"add-mod-10", "sub-mod-10"},
	{"add-mod-10-alt", "sub-mod-10"},
}

var relatedPairs = [][2]string{
	{"add-mod-10", "add-mod-10-alt"},
}

// SyntheticNames lists the synthetic families in a fixed order.
func SyntheticNames() []string {
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.Name
	}
	return out
}

// SyntheticFamilies describes the synthetic families, in SyntheticNames order.
func SyntheticFamilies() []SyntheticFamily {
	out := make([]SyntheticFamily, len(families))
	for i, f := range families {
		out[i] = f.SyntheticFamily
	}
	return out
}

// SyntheticRelation says how two families relate: Same, Related
// (add-mod-10 ↔ add-mod-10-alt), Conflicting (sub-mod-10 ↔ add-mod-10 and
// ↔ add-mod-10-alt) or Shifted (every other pair). Unknown names are an error.
func SyntheticRelation(a, b string) (Relation, error) {
	for _, n := range []string{a, b} {
		if findFamily(n) == nil {
			return "", unknownFamily(n)
		}
	}
	if a == b {
		return Same, nil
	}
	in := func(pairs [][2]string) bool {
		for _, p := range pairs {
			if (p[0] == a && p[1] == b) || (p[0] == b && p[1] == a) {
				return true
			}
		}
		return false
	}
	switch {
	case in(relatedPairs):
		return Related, nil
	case in(conflictingPairs):
		return Conflicting, nil
	}
	return Shifted, nil
}

// SyntheticPair is a suggested (A, B) pair for the sequential protocol.
type SyntheticPair struct {
	A, B     string
	Relation Relation
}

// SyntheticPairs returns the suggested pairs, one per relation: related
// (add-mod-10 then add-mod-10-alt), conflicting (add-mod-10 then sub-mod-10)
// and shifted (add-mod-10 then word-category).
func SyntheticPairs() []SyntheticPair {
	return []SyntheticPair{
		{"add-mod-10", "add-mod-10-alt", Related},
		{"add-mod-10", "sub-mod-10", Conflicting},
		{"add-mod-10", "word-category", Shifted},
	}
}

func findFamily(name string) *family {
	for i := range families {
		if families[i].Name == name {
			return &families[i]
		}
	}
	return nil
}

func unknownFamily(name string) error {
	return fmt.Errorf("task: unknown synthetic family %q (known: %s)", name, strings.Join(SyntheticNames(), ", "))
}

// Synthetic generates n items of a synthetic family. The output depends only on
// (name, n, seed): integer draws from math/rand/v2's PCG (seeded with seed and
// a hash of the name), no floating point and no map iteration, so it is the
// same on every machine. Gold positions are balanced: each position is gold in
// ⌊n/k⌋ or ⌈n/k⌉ items (k choices).
func Synthetic(name string, n int, seed uint64) (*Task, error) {
	f := findFamily(name)
	if f == nil {
		return nil, unknownFamily(name)
	}
	if n < 1 {
		return nil, fmt.Errorf("task: synthetic %s: n = %d, need at least 1", name, n)
	}
	h := fnv.New64a()
	h.Write([]byte("kronfed/task/synthetic/" + name))
	r := newRNG(seed, h.Sum64())
	k := f.Choices
	pos := make([]int, 0, n+k)
	for len(pos) < n {
		pos = append(pos, r.perm(k)...)
	}
	items := make([]Item, n)
	for i := range items {
		ctx, choices, class := f.gen(r, pos[i])
		items[i] = Item{
			ID:      fmt.Sprintf("%s-%05d", name, i),
			Context: ctx,
			Choices: choices,
			Label:   pos[i],
			Query:   ctx,
			Class:   class,
		}
	}
	return &Task{Name: name, Items: items, Source: "synthetic",
		Note: fmt.Sprintf("synthetic family %s: %d items, seed %d", name, n, seed)}, nil
}

// Word lists of the synthetic suite.
var (
	synFrame = strings.Fields(`question answer what is plus minus mod x y and so the last digit of
		which letter comes after number larger or reverse letters color appears most often kind thing`)
	synLetters = strings.Fields("a b c d e f g h i j k l m n o p q r s t u v w x y z")
	synColors  = []string{"red", "blue", "green", "yellow", "black", "white"}
	synCats    = []string{"fruit", "animal", "tool", "vehicle"}
	synMembers = [][]string{
		{"apple", "pear", "plum", "grape", "lemon", "mango"},
		{"cat", "dog", "cow", "horse", "sheep", "goat"},
		{"hammer", "saw", "drill", "wrench", "spade", "chisel"},
		{"car", "bus", "truck", "train", "boat", "bike"},
	}
	synNumbers = func() []string {
		out := make([]string, 100)
		for i := range out {
			out[i] = strconv.Itoa(i)
		}
		return out
	}()
)

// Vocabulary returns every word any synthetic task can contain (numbers 0..99,
// letters a..z, frame words, colors, categories and nouns), sorted and
// without duplicates, for building a small word-level tokenizer.
func Vocabulary() []string {
	var all []string
	all = append(all, synFrame...)
	all = append(all, synLetters...)
	all = append(all, synColors...)
	all = append(all, synCats...)
	for _, m := range synMembers {
		all = append(all, m...)
	}
	all = append(all, synNumbers...)
	sort.Strings(all)
	out := all[:0]
	for i, w := range all {
		if i == 0 || w != all[i-1] {
			out = append(out, w)
		}
	}
	return append([]string(nil), out...)
}

// place puts gold at position pos and the distractors, shuffled, elsewhere.
func place(r *rng, gold string, distractors []string, pos int) []string {
	d := append([]string(nil), distractors...)
	for i := len(d) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		d[i], d[j] = d[j], d[i]
	}
	out := make([]string, 0, len(d)+1)
	out = append(out, d[:pos]...)
	out = append(out, gold)
	return append(out, d[pos:]...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fill appends uniformly drawn words from pool to have, skipping words already
// in have or in exclude, until have holds want words.
func fill(r *rng, have []string, pool []string, exclude []string, want int) []string {
	for len(have) < want {
		w := pool[r.intN(len(pool))]
		if !contains(have, w) && !contains(exclude, w) {
			have = append(have, w)
		}
	}
	return have
}

func digit(v int) string { return strconv.Itoa(v) }

// arithmetic draws a, b and returns the gold and conflicting answers.
func arithmetic(r *rng, sub bool) (a, b int, gold, other string) {
	a, b = r.intN(10), r.intN(10)
	sum, diff := (a+b)%10, (a-b+10)%10
	if sub {
		return a, b, digit(diff), digit(sum)
	}
	return a, b, digit(sum), digit(diff)
}

func arithChoices(r *rng, gold, other string, pos int) []string {
	var d []string
	if other != gold {
		d = append(d, other)
	}
	d = fill(r, d, synNumbers[:10], []string{gold}, 3)
	return place(r, gold, d, pos)
}

func genAdd(r *rng, pos int) (string, []string, string) {
	a, b, gold, other := arithmetic(r, false)
	return fmt.Sprintf("question what is %d plus %d mod 10 answer", a, b), arithChoices(r, gold, other, pos), gold
}

func genAddAlt(r *rng, pos int) (string, []string, string) {
	a, b, gold, other := arithmetic(r, false)
	return fmt.Sprintf("x is %d and y is %d so the last digit of x plus y is", a, b), arithChoices(r, gold, other, pos), gold
}

func genSub(r *rng, pos int) (string, []string, string) {
	a, b, gold, other := arithmetic(r, true)
	return fmt.Sprintf("question what is %d minus %d mod 10 answer", a, b), arithChoices(r, gold, other, pos), gold
}

func genNextLetter(r *rng, pos int) (string, []string, string) {
	i := r.intN(25) // a..y
	l, gold := synLetters[i], synLetters[i+1]
	d := []string{l}
	if i > 0 {
		d = append(d, synLetters[i-1])
	}
	d = fill(r, d, synLetters, []string{gold}, 3)
	return "question which letter comes after " + l + " answer", place(r, gold, d, pos), gold
}

func genLarger(r *rng, pos int) (string, []string, string) {
	x := r.intN(100)
	y := r.intN(99)
	if y >= x {
		y++
	}
	hi, lo := max(x, y), min(x, y)
	gold := synNumbers[hi]
	return fmt.Sprintf("question which number is larger %d or %d answer", x, y),
		place(r, gold, []string{synNumbers[lo]}, pos), digit(hi / 10)
}

func genReverse(r *rng, pos int) (string, []string, string) {
	k := 3 + r.intN(3)
	p := r.perm(len(synLetters))[:k]
	seq := make([]string, k)
	rev := make([]string, k)
	for i, j := range p {
		seq[i] = synLetters[j]
		rev[k-1-i] = synLetters[j]
	}
	swapped := append([]string(nil), rev...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	gold := strings.Join(rev, " ")
	d := []string{strings.Join(seq, " "), strings.Join(swapped, " ")}
	for len(d) < 3 {
		q := append([]string(nil), seq...)
		for i := k - 1; i > 0; i-- {
			j := r.intN(i + 1)
			q[i], q[j] = q[j], q[i]
		}
		if s := strings.Join(q, " "); s != gold && !contains(d, s) {
			d = append(d, s)
		}
	}
	return "question reverse the letters " + strings.Join(seq, " ") + " answer", place(r, gold, d, pos), rev[0]
}

func genMajority(r *rng, pos int) (string, []string, string) {
	p := r.perm(len(synColors))[:3]
	c := []string{synColors[p[0]], synColors[p[1]], synColors[p[2]]}
	m1 := 3 + r.intN(3)
	counts := []int{m1, 1 + r.intN(m1-1), 1 + r.intN(m1-1)}
	var seq []string
	for i, n := range counts {
		for j := 0; j < n; j++ {
			seq = append(seq, c[i])
		}
	}
	for i := len(seq) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		seq[i], seq[j] = seq[j], seq[i]
	}
	return "question " + strings.Join(seq, " ") + " which color appears most often answer",
		place(r, c[0], c[1:], pos), c[0]
}

func genCategory(r *rng, pos int) (string, []string, string) {
	ci := r.intN(len(synCats))
	w := synMembers[ci][r.intN(len(synMembers[ci]))]
	var d []string
	for j, c := range synCats {
		if j != ci {
			d = append(d, c)
		}
	}
	return "question what kind of thing is " + w + " answer", place(r, synCats[ci], d, pos), synCats[ci]
}
