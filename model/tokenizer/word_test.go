package tokenizer

import (
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/task"
)

func newTestWord(t testing.TB) *Word {
	t.Helper()
	w, err := NewWord([]string{"question", "answer", "what", "is", "7", "plus", "5", "2", "don", "t", "x", "y"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWordLayout(t *testing.T) {
	w := newTestWord(t)
	if got, want := w.VocabSize(), len(WordSpecials)+len(WordPunctuation)+12; got != want {
		t.Fatalf("VocabSize = %d, want %d", got, want)
	}
	sp := w.Special()
	if sp.UNK != 0 || sp.BOS != 1 || sp.EOS != 2 || sp.PAD != 3 || sp.CLS != -1 || sp.SEP != -1 || sp.MASK != -1 {
		t.Fatalf("Special = %+v", sp)
	}
	for id, tok := range append(append(slices.Clone(WordSpecials), WordPunctuation...), "question") {
		if got := w.Token(id); got != tok {
			t.Errorf("Token(%d) = %q, want %q", id, got, tok)
		}
		if got, ok := w.TokenID(tok); !ok || got != id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tok, got, ok, id)
		}
	}
	for _, id := range []int{-1, w.VocabSize()} {
		if got := w.Token(id); got != "" {
			t.Errorf("Token(%d) = %q, want \"\"", id, got)
		}
	}
	if _, ok := w.TokenID("nope"); ok {
		t.Error("TokenID found a word outside the vocabulary")
	}
}

func TestNewWordRejects(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"a", ""}, "word 1 is empty"},
		{[]string{"a b"}, "white space or punctuation"},
		{[]string{"a\tb"}, "white space or punctuation"},
		{[]string{"end."}, "white space or punctuation"},
		{[]string{"it's"}, "white space or punctuation"},
		{[]string{"<s>"}, "is a special token"},
		{[]string{"a", "b", "a"}, "word 2 (\"a\") appears twice"},
		{[]string{"?"}, "white space or punctuation"},
	} {
		_, err := NewWord(tc.words)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewWord(%q): error %v, want one containing %q", tc.words, err, tc.want)
		}
	}
}

func TestWordEncode(t *testing.T) {
	w := newTestWord(t)
	id := func(tok string) int {
		i, ok := w.TokenID(tok)
		if !ok {
			t.Fatalf("no token %q", tok)
		}
		return i
	}
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"   \t ", nil},
		{"question what is 7 plus 5", []string{"question", "what", "is", "7", "plus", "5"}},
		{"  question\t what  ", []string{"question", "what"}},
		{"Question: what is 7 plus 5?\nAnswer: 2", []string{"<unk>", ":", "what", "is", "7", "plus", "5", "?", "\n", "<unk>", ":", "2"}},
		{"don't (x-y), 7.", []string{"don", "'", "t", "(", "x", "-", "y", ")", ",", "7", "."}},
		{"whatever is", []string{"<unk>", "is"}},
		{"é is", []string{"<unk>", "is"}},
		{"\r\n", []string{"\n"}},
	} {
		var want []int
		for _, tok := range tc.want {
			want = append(want, id(tok))
		}
		if got := w.Encode(tc.text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, want)
		}
	}
}

func TestWordDecode(t *testing.T) {
	w := newTestWord(t)
	for _, s := range []string{
		"",
		"question what is 7 plus 5 answer 2",
		"question: what is 7 plus 5?\nanswer: 2",
		"don't (x-y), 7.",
		"x \" y \" 2!",
		"7; 5",
	} {
		if got := w.Decode(w.Encode(s)); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	// Specials and ids outside the vocabulary are left out.
	ids := []int{WordBOS, w.Encode("what")[0], WordUNK, WordPAD, -3, w.VocabSize(), w.Encode("is")[0], WordEOS}
	if got := w.Decode(ids); got != "what is" {
		t.Errorf("Decode(%v) = %q, want \"what is\"", ids, got)
	}
	// White space is normalized to single spaces.
	if got := w.Decode(w.Encode(" what\t\tis  7 ")); got != "what is 7" {
		t.Errorf("got %q", got)
	}
}

// TestWordCoversSynthetic encodes thousands of items of every synthetic
// family with the vocabulary task.Vocabulary() as the built-in model does:
// no <unk>, the context's encoding a prefix of context+continuation's (so
// the decoder learner splits them exactly), and exact round trips.
func TestWordCoversSynthetic(t *testing.T) {
	w, err := NewWord(task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for _, name := range task.SyntheticNames() {
		tk, err := task.Synthetic(name, n, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range tk.Items {
			for c := range it.Choices {
				ctx, whole := it.ContextFor(c), it.ContextFor(c)+it.Continuation(c)
				ctxIDs, ids := w.Encode(ctx), w.Encode(whole)
				if slices.Contains(ids, WordUNK) {
					t.Fatalf("%s: %q encodes with <unk>: %v", it.ID, whole, ids)
				}
				if len(ids) <= len(ctxIDs) || !slices.Equal(ids[:len(ctxIDs)], ctxIDs) {
					t.Fatalf("%s: context %v is not a strict prefix of %v", it.ID, ctxIDs, ids)
				}
				if got := w.Decode(ids); got != whole {
					t.Fatalf("%s: Decode(Encode(%q)) = %q", it.ID, whole, got)
				}
			}
		}
	}
}

// FuzzWordEncode: every id Encode returns is in the vocabulary, and decoding
// then encoding again gives the same ids less the <unk>s (Decode drops them).
func FuzzWordEncode(f *testing.F) {
	for _, s := range []string{"", "question: what is 7?\nanswer: 2", "don't (x-y)", "a\"b'c", "\xff\xfe 7", "((--''))"} {
		f.Add(s)
	}
	w := newTestWord(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := w.Encode(s)
		var known []int
		for _, id := range ids {
			if id < 0 || id >= w.VocabSize() || (id != WordUNK && id < len(WordSpecials)) {
				t.Fatalf("Encode(%q) gave id %d", s, id)
			}
			if id != WordUNK {
				known = append(known, id)
			}
		}
		if again := w.Encode(w.Decode(ids)); !slices.Equal(again, known) {
			t.Fatalf("Encode(Decode(Encode(%q))) = %v, want %v", s, again, known)
		}
	})
}

func TestWordSpecialTextIsUnknown(t *testing.T) {
	w := newTestWord(t)
	if got := w.Encode("<s> what </s> <pad>"); !slices.Equal(got, []int{WordUNK, w.Encode("what")[0], WordUNK, WordUNK}) {
		t.Fatalf("got %v", got)
	}
}
