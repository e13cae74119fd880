package task

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestWorldText(t *testing.T) {
	kinds := WorldKinds()
	text, err := WorldText(10*len(kinds), 1)
	if err != nil {
		t.Fatal(err)
	}
	vocab := Vocabulary()
	for i, s := range text {
		for _, w := range strings.Fields(s) {
			if _, ok := slices.BinarySearch(vocab, w); !ok {
				t.Fatalf("sentence %d %q: word %q is not in Vocabulary", i, s, w)
			}
		}
	}
	// Each kind's example is a sentence of its kind, in its cycle position.
	for i, k := range kinds {
		for _, w := range strings.Fields(k.Example) {
			if _, ok := slices.BinarySearch(vocab, w); !ok {
				t.Errorf("kind %s example uses %q, not in Vocabulary", k.Name, w)
			}
		}
		if n := len(strings.Fields(text[i])); n < 2 {
			t.Errorf("kind %s: sentence %q", k.Name, text[i])
		}
	}
	// The facts are true.
	for _, s := range text {
		var a, b, c int
		if n, _ := sscan(s, "%d plus %d is %d", &a, &b, &c); n == 3 && a+b != c {
			t.Errorf("%q is false", s)
		}
		if n, _ := sscan(s, "%d minus %d is %d", &a, &b, &c); n == 3 && (a-b != c || c < 0) {
			t.Errorf("%q is false", s)
		}
		if n, _ := sscan(s, "the last digit of %d is %d", &a, &b); n == 2 && a%10 != b {
			t.Errorf("%q is false", s)
		}
		if n, _ := sscan(s, "the last digit of %d plus %d is %d", &a, &b, &c); n == 3 && (a+b)%10 != c {
			t.Errorf("%q is false", s)
		}
		if n, _ := sscan(s, "the last digit of %d minus %d is %d", &a, &b, &c); n == 3 && (a-b+10)%10 != c {
			t.Errorf("%q is false", s)
		}
		if n, _ := sscan(s, "of %d and %d the larger number is %d", &a, &b, &c); n == 3 && (c != max(a, b) || a == b) {
			t.Errorf("%q is false", s)
		}
	}
	// Never a task's frame or rule.
	for _, s := range text {
		for _, banned := range []string{"question", "answer", "mod", "reverse", "most often"} {
			if strings.Contains(s, banned) {
				t.Errorf("%q uses a task's frame word %q", s, banned)
			}
		}
	}
	// Deterministic, and pinned: the built-in model was pretrained on it.
	again, _ := WorldText(len(text), 1)
	if !slices.Equal(text, again) {
		t.Fatal("two draws from seed 1 differ")
	}
	t.Logf("%q", text[:len(kinds)])
	if _, err := WorldText(0, 1); err == nil {
		t.Error("0 sentences accepted")
	}
}

func sscan(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }
