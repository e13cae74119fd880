package task

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// The built-in model's pretraining corpus: "world text" about the things the
// synthetic tasks ask about — number and letter order, sums and differences,
// last digits (of numbers, of sums, of differences), which of two numbers is
// larger, the categories of the nouns, color words — in plain sentences,
// never in a task's question/answer frame (there is no "question", "answer"
// or "mod", no reversal, no majority vote). A model pretrained on it knows the facts; an adapter has to
// learn each task's format and rule on top, which is the setting the paper
// studies: adapters on a pretrained model, not on random features.

// WorldKind is one kind of world-text sentence.
type WorldKind struct {
	Name    string
	Example string
}

var worldKinds = []struct {
	WorldKind
	gen func(r *rng) string
}{
	{WorldKind{"count", "14 15 16 17 18"}, genCount},
	{WorldKind{"alphabet", "f g h i j k"}, genAlphabet},
	{WorldKind{"sum", "7 plus 5 is 12"}, genSum},
	{WorldKind{"difference", "13 minus 5 is 8"}, genDifference},
	{WorldKind{"last-digit", "the last digit of 47 is 7"}, genLastDigit},
	{WorldKind{"last-digit-sum", "the last digit of 7 plus 5 is 2"}, genLastDigitSum},
	{WorldKind{"last-digit-difference", "the last digit of 3 minus 5 is 8"}, genLastDigitDifference},
	{WorldKind{"larger", "of 37 and 52 the larger number is 52"}, genLargerFact},
	{WorldKind{"category", "pear is a kind of fruit"}, genKind},
	{WorldKind{"members", "fruit apple pear plum"}, genMembers},
	{WorldKind{"colors", "red is a color"}, genColors},
	{WorldKind{"color-list", "color red blue red"}, genColorList},
}

// WorldKinds lists the sentence kinds of WorldText, in the order it cycles
// through them.
func WorldKinds() []WorldKind {
	out := make([]WorldKind, len(worldKinds))
	for i, k := range worldKinds {
		out[i] = k.WorldKind
	}
	return out
}

// WorldText returns n sentences of world text, drawn from seed: the kinds
// in turn (WorldKinds order), each sentence's content at random. Every word
// is in Vocabulary. Like Synthetic it uses integer draws only, so the text
// is the same on every machine.
func WorldText(n int, seed uint64) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("task: world text of %d sentences, need at least 1", n)
	}
	h := fnv.New64a()
	h.Write([]byte("kronfed/task/world"))
	r := newRNG(seed, h.Sum64())
	out := make([]string, n)
	for i := range out {
		out[i] = worldKinds[i%len(worldKinds)].gen(r)
	}
	return out, nil
}

func genCount(r *rng) string {
	k := 4 + r.intN(7)
	start := r.intN(100 - k + 1)
	seq := synNumbers[start : start+k]
	if r.intN(4) == 0 { // sometimes counting down
		return strings.Join(reversed(seq), " ")
	}
	return strings.Join(seq, " ")
}

func genAlphabet(r *rng) string {
	k := 4 + r.intN(7)
	start := r.intN(len(synLetters) - k + 1)
	seq := synLetters[start : start+k]
	if r.intN(4) == 0 {
		return strings.Join(reversed(seq), " ")
	}
	return strings.Join(seq, " ")
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, w := range s {
		out[len(s)-1-i] = w
	}
	return out
}

func genSum(r *rng) string {
	a, b := r.intN(10), r.intN(10)
	return fmt.Sprintf("%d plus %d is %d", a, b, a+b)
}

func genDifference(r *rng) string {
	b := r.intN(10)
	a := b + r.intN(20-b)
	return fmt.Sprintf("%d minus %d is %d", a, b, a-b)
}

func genLastDigit(r *rng) string {
	v := r.intN(100)
	return fmt.Sprintf("the last digit of %d is %d", v, v%10)
}

func genLastDigitSum(r *rng) string {
	a, b := r.intN(10), r.intN(10)
	return fmt.Sprintf("the last digit of %d plus %d is %d", a, b, (a+b)%10)
}

// genLastDigitDifference: a − b taken modulo 10 (3 − 5 → 8), the digit
// arithmetic a written subtraction with a borrow ends in.
func genLastDigitDifference(r *rng) string {
	a, b := r.intN(10), r.intN(10)
	return fmt.Sprintf("the last digit of %d minus %d is %d", a, b, (a-b+10)%10)
}

func genLargerFact(r *rng) string {
	x := r.intN(100)
	y := r.intN(99)
	if y >= x {
		y++
	}
	return fmt.Sprintf("of %d and %d the larger number is %d", x, y, max(x, y))
}

func genKind(r *rng) string {
	ci := r.intN(len(synCats))
	w := synMembers[ci][r.intN(len(synMembers[ci]))]
	return w + " is a kind of " + synCats[ci]
}

func genMembers(r *rng) string {
	ci := r.intN(len(synCats))
	p := r.perm(len(synMembers[ci]))[:2+r.intN(3)]
	words := []string{synCats[ci]}
	for _, j := range p {
		words = append(words, synMembers[ci][j])
	}
	return strings.Join(words, " ")
}

func genColors(r *rng) string {
	return synColors[r.intN(len(synColors))] + " is a color"
}

func genColorList(r *rng) string {
	words := []string{"color"}
	for k := 2 + r.intN(5); k > 0; k-- {
		words = append(words, synColors[r.intN(len(synColors))])
	}
	return strings.Join(words, " ")
}
