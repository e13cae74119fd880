package tokenizer

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

var (
	bertOnce sync.Once
	bertTok  *HF
	bertErr  error
)

// bertTokenizer loads the real bert-base-uncased tokenizer.json.
func bertTokenizer(t testing.TB) *HF {
	t.Helper()
	path := sharedtest.Path(t, "models", "bert-base-uncased-tokenizer.json")
	bertOnce.Do(func() { bertTok, bertErr = LoadJSON(path) })
	if bertErr != nil {
		t.Fatal(bertErr)
	}
	return bertTok
}

// ids looks every token up in the vocabulary, failing on a missing one, so
// that an expectation written as tokens is checked against the file.
func ids(t *testing.T, tk Tokenizer, toks ...string) []int {
	t.Helper()
	out := make([]int, len(toks))
	for i, tok := range toks {
		id, ok := tk.TokenID(tok)
		if !ok {
			t.Fatalf("%q is not in the vocabulary", tok)
		}
		out[i] = id
	}
	return out
}

func TestBertKnownIDs(t *testing.T) {
	h := bertTokenizer(t)
	if h.VocabSize() != 30522 || h.ModelType() != "WordPiece" || h.TruncationMaxLength() != 128 {
		t.Fatalf("VocabSize %d, ModelType %q, truncation %d", h.VocabSize(), h.ModelType(), h.TruncationMaxLength())
	}
	// Published bert-base-uncased ids; each is checked against the file.
	for tok, id := range map[string]int{
		"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103,
		"the": 1996, "hello": 7592, "world": 2088, ",": 1010, ".": 1012, "!": 999,
		"'": 1005, "s": 1055, "un": 4895, "##able": 3085,
	} {
		if got, ok := h.TokenID(tok); !ok || got != id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tok, got, ok, id)
		}
		if got := h.Token(id); got != tok {
			t.Errorf("Token(%d) = %q, want %q", id, got, tok)
		}
	}
	// The "unaffable" → un ##aff ##able example of the Hugging Face docs is
	// an illustration, not this vocabulary: 10354 is "##af" and "##aff" does
	// not exist here (see TestBertUnaffable for what the file gives).
	if got := h.Token(10354); got != "##af" {
		t.Errorf("Token(10354) = %q", got)
	}
	if _, ok := h.TokenID("##aff"); ok {
		t.Errorf("##aff is in the vocabulary")
	}
	want := SpecialTokens{BOS: -1, EOS: -1, UNK: 100, PAD: 0, CLS: 101, SEP: 102, MASK: 103}
	if got := h.Special(); got != want {
		t.Errorf("Special = %+v, want %+v", got, want)
	}
}

// TestBertUnaffable derives the WordPiece split of "unaffable" by hand from
// the vocabulary: greedy longest match from the left.
func TestBertUnaffable(t *testing.T) {
	h := bertTokenizer(t)
	word := "unaffable"
	// Longest prefix in the vocabulary: "una" (nothing longer is a token).
	for end := len(word); end > 3; end-- {
		if _, ok := h.TokenID(word[:end]); ok {
			t.Fatalf("%q is a token", word[:end])
		}
	}
	// Then from "ffable": "##ffa" is the longest continuation, then "##ble".
	for _, notTok := range []string{"##ffable", "##ffabl", "##ffab", "##ble" + "x"} {
		if _, ok := h.TokenID(notTok); ok {
			t.Fatalf("%q is a token", notTok)
		}
	}
	want := ids(t, h, "una", "##ffa", "##ble")
	if !reflect.DeepEqual(want, []int{14477, 20961, 3468}) {
		t.Fatalf("vocabulary ids %v", want)
	}
	if got := h.Encode("unaffable"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode(unaffable) = %v, want %v", got, want)
	}
	if got := h.Decode(want); got != "unaffable" {
		t.Errorf("Decode = %q", got)
	}
}

func TestBertEncode(t *testing.T) {
	h := bertTokenizer(t)
	hundred := strings.Repeat("a", 100)
	hundredToks := []string{"aaa"}
	for i := 0; i < 48; i++ {
		hundredToks = append(hundredToks, "##aa")
	}
	hundredToks = append(hundredToks, "##a")
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"Hello, world!", []string{"hello", ",", "world", "!"}},
		// Accents are stripped since strip_accents follows lowercase.
		{"Héllo", []string{"hello"}},
		{"HÉLLO wörld", []string{"hello", "world"}},
		// İ decomposes to I + U+0307, the mark goes, then lowercasing.
		{"İt", []string{"it"}},
		// CJK ideographs become words of their own, even inside a word.
		{"中国人", []string{"中", "国", "人"}},
		{"a中b", []string{"a", "中", "b"}},
		// Control and format characters vanish (NUL, U+FFFD, ZWSP, BOM);
		// tab and newline are whitespace.
		{"hel\x00lo", []string{"hello"}},
		{"hel\u200blo\ufeff", []string{"hello"}},
		{"hel\ufffdlo", []string{"hello"}},
		{"hello\tworld\n", []string{"hello", "world"}},
		// Non-breaking and ideographic spaces split words.
		{"hello\u00a0world\u3000again", []string{"hello", "world", "again"}},
		// ASCII symbols split like punctuation.
		{"$5@you", []string{"$", "5", "@", "you"}},
		{"don't", []string{"don", "'", "t"}},
		// A word longer than 100 characters is one [UNK]; 100 is fine.
		{strings.Repeat("a", 101), []string{"[UNK]"}},
		{hundred, hundredToks},
		// Unknown symbols: the whole word becomes one [UNK].
		{"🙂", []string{"[UNK]"}},
		{"hello🙂 world", []string{"[UNK]", "world"}},
		// Special tokens in the text are matched whole, not normalized.
		{"[CLS] hi [MASK].", []string{"[CLS]", "hi", "[MASK]", "."}},
		{"[mask]", []string{"[", "mask", "]"}},
		{"", nil},
		{" \t\n", nil},
		// The reference's category tables are Unicode 9.0 ones that list
		// only the endpoints of the private-use ranges: U+E000 is removed
		// as a control character, U+E001 stays and spoils its word.
		{"a\ue000b", []string{"ab"}},
		{"a\ue001b", []string{"[UNK]"}},
		// U+2E45 (Po since Unicode 10) is no punctuation to the reference,
		// so the word is not split around it.
		{"a\u2e45b", []string{"[UNK]"}},
		// U+2E3B (Pd, Unicode 9) is.
		{"a\u2e3bb", []string{"a", "[UNK]", "b"}},
	} {
		want := ids(t, h, tc.want...)
		got := h.Encode(tc.text)
		if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Errorf("Encode(%q) = %v, want %v %q", tc.text, got, want, tc.want)
		}
	}
	ids, types := h.EncodeSingle("Hello, world!")
	if !reflect.DeepEqual(ids, []int{101, 7592, 1010, 2088, 999, 102}) || !reflect.DeepEqual(types, []int{0, 0, 0, 0, 0, 0}) {
		t.Errorf("EncodeSingle(Hello, world!) = %v %v", ids, types)
	}
	if got := h.Decode(ids); got != "hello, world!" {
		t.Errorf("Decode = %q", got)
	}
}

func TestBertPair(t *testing.T) {
	h := bertTokenizer(t)
	ids, types := h.EncodePair("Hello", "world!")
	if want := []int{101, 7592, 102, 2088, 999, 102}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if want := []int{0, 0, 0, 1, 1, 1}; !reflect.DeepEqual(types, want) {
		t.Errorf("type ids %v, want %v", types, want)
	}
	var _ PairEncoder = h
}

func TestBertTruncation(t *testing.T) {
	h := bertTokenizer(t)
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("the ", n)) }
	the := 1996
	for _, tc := range []struct {
		na, nb, maxLen int
		keepA, keepB   int
	}{
		{10, 3, 100, 10, 3}, // fits
		{10, 3, 10, 4, 3},   // only the longer gives: room 7, b keeps 3
		{3, 10, 10, 3, 4},
		{10, 8, 11, 4, 4}, // both give: room 8 split evenly
		{10, 8, 12, 5, 4}, // room 9: the odd id goes to the longer
		{6, 6, 10, 3, 4},  // tie: the odd id goes to b
		{5, 0, 6, 3, 0},
		{4, 4, 3, 0, 0}, // room 0
	} {
		ids, types, err := h.EncodePairTruncated(words(tc.na), words(tc.nb), tc.maxLen)
		if err != nil {
			t.Fatal(err)
		}
		var want, wantTypes []int
		want = append(want, 101)
		for i := 0; i < tc.keepA; i++ {
			want = append(want, the)
		}
		want = append(want, 102)
		wantTypes = make([]int, len(want))
		for i := 0; i < tc.keepB; i++ {
			want = append(want, the)
		}
		want = append(want, 102)
		for len(wantTypes) < len(want) {
			wantTypes = append(wantTypes, 1)
		}
		if !reflect.DeepEqual(ids, want) || !reflect.DeepEqual(types, wantTypes) {
			t.Errorf("%d+%d in %d: ids %v types %v, want %v %v", tc.na, tc.nb, tc.maxLen, ids, types, want, wantTypes)
		}
		if len(ids) > tc.maxLen && tc.maxLen >= 3 {
			t.Errorf("%d ids exceed %d", len(ids), tc.maxLen)
		}
	}
	if _, _, err := h.EncodePairTruncated("a", "b", 2); !errors.Is(err, ErrTooShort) {
		t.Errorf("maxLen 2 for a pair: err %v", err)
	}
	ids, types, err := h.EncodeSingleTruncated("Hello, world! Again.", 5)
	if err != nil || !reflect.DeepEqual(ids, []int{101, 7592, 1010, 2088, 102}) || len(types) != 5 {
		t.Errorf("EncodeSingleTruncated = %v %v %v", ids, types, err)
	}
	if _, _, err := h.EncodeSingleTruncated("a", 1); !errors.Is(err, ErrTooShort) {
		t.Errorf("maxLen 1 single: err %v", err)
	}
}

func TestLongestFirst(t *testing.T) {
	// Checked against the tokenizers crate's truncate_encodings case by case.
	for _, tc := range [][5]int{
		{5, 5, 10, 5, 5},
		{7, 2, 6, 4, 2},
		{2, 7, 6, 2, 4},
		{7, 7, 5, 2, 3},
		{9, 4, 7, 4, 3},
		{100, 1, 0, 0, 0},
	} {
		a, b := longestFirst(tc[0], tc[1], tc[2])
		if a != tc[3] || b != tc[4] {
			t.Errorf("longestFirst(%d, %d, %d) = %d, %d; want %d, %d", tc[0], tc[1], tc[2], a, b, tc[3], tc[4])
		}
	}
}

func BenchmarkBertEncode(b *testing.B) {
	h := bertTokenizer(b)
	text := strings.Repeat("The quick brown fox jumps over the lazy dog, unaffably. ", 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		h.EncodePair(text, text)
	}
}
