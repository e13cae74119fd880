package tokenizer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// llamaJSON builds a small tokenizer.json in the layout of Llama-2's and
// Mistral's: BPE with byte fallback, <unk> <s> </s> as special added tokens,
// the Prepend+Replace normalizer (or, with metaspace, the newer Metaspace
// pre-tokenizer) and the matching decoder, "<s> $A" template. Mutate edits
// the decoded JSON before it is serialized again.
func llamaJSON(t testing.TB, metaspace, pairMerges bool, mutate func(map[string]any)) []byte {
	t.Helper()
	vocab := map[string]any{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	next := 259
	for _, tok := range []string{"▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "lo", "el", "▁he", "ll", "▁hel", "▁hello", "▁w", "or", "▁wor", "ld", "▁world"} {
		vocab[tok] = next
		next++
	}
	mergeList := [][2]string{
		{"▁", "h"}, {"l", "o"}, {"e", "l"}, {"▁h", "e"}, {"l", "l"}, {"▁he", "l"}, {"▁hel", "lo"},
		{"▁", "w"}, {"o", "r"}, {"▁w", "or"}, {"l", "d"}, {"▁wor", "ld"},
	}
	var merges []any
	for _, m := range mergeList {
		if pairMerges {
			merges = append(merges, []string{m[0], m[1]})
		} else {
			merges = append(merges, m[0]+" "+m[1])
		}
	}
	special := func(id int, s string) map[string]any {
		return map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	}
	doc := map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": []any{special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}},
		},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": merges,
		},
	}
	if metaspace {
		doc["normalizer"] = nil
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
		}}
	}
	if mutate != nil {
		mutate(doc)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func llamaHF(t testing.TB, metaspace, pairMerges bool) *HF {
	t.Helper()
	h, err := ParseJSON(llamaJSON(t, metaspace, pairMerges, nil))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHFBPEHandWorked walks the rank-ordered merges of "hello" by hand.
func TestHFBPEHandWorked(t *testing.T) {
	for _, pairMerges := range []bool{false, true} {
		h := llamaHF(t, false, pairMerges)
		// "hello" → "▁hello" → ▁ h e l l o. Queued: (▁,h) rank 0 at 0,
		// (e,l) rank 2 at 2, (l,l) rank 4 at 3, (l,o) rank 1 at 4.
		// rank 0: ▁h e l l o, queue (▁h,e) rank 3 at 0.
		// rank 1 at 4: ▁h e l lo; (l,lo) is no merge.
		// rank 2 at 2: ▁h el lo; (▁h,el) and (el,lo) are no merges.
		// rank 3 at 0: stale, ▁h is now followed by el. rank 4 at 3:
		// stale, that l was merged away. Result ▁h el lo, although
		// ▁hello is in the vocabulary: merge order decides, not length.
		want := ids(t, h, "▁h", "el", "lo")
		if got := h.Encode("hello"); !reflect.DeepEqual(got, want) {
			t.Errorf("pairs %v: Encode(hello) = %v, want %v", pairMerges, got, want)
		}
		// "world": (▁,w) 7, (o,r) 8, (l,d) 10 → ▁w or ld; then (▁w,or) 9
		// → ▁wor ld; then (▁wor,ld) 11 → ▁world.
		if got, want := h.Encode("world"), ids(t, h, "▁world"); !reflect.DeepEqual(got, want) {
			t.Errorf("Encode(world) = %v, want %v", got, want)
		}
	}
}

func TestHFBPELlamaLayout(t *testing.T) {
	h := llamaHF(t, false, false)
	want := SpecialTokens{BOS: 1, EOS: 2, UNK: 0, PAD: -1, CLS: -1, SEP: -1, MASK: -1}
	if got := h.Special(); got != want {
		t.Errorf("Special = %+v", got)
	}
	if h.VocabSize() != 279 {
		t.Errorf("VocabSize = %d", h.VocabSize())
	}
	for _, tc := range []struct {
		text string
		want []string
	}{
		// é is not in the vocabulary: its UTF-8 bytes, C3 A9.
		{"hé", []string{"▁h", "<0xC3>", "<0xA9>"}},
		{"hello world", []string{"▁h", "el", "lo", "▁world"}},
		// Prepend always adds ▁, so a leading space gives two.
		{" world", []string{"▁", "▁world"}},
		// Special tokens are cut out first; each remaining piece is
		// normalized on its own and so gets its own ▁.
		{"<s>world</s>", []string{"<s>", "▁world", "</s>"}},
		{"", nil},
	} {
		want := ids(t, h, tc.want...)
		got := h.Encode(tc.text)
		if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Errorf("Encode(%q) = %v, want %v %q", tc.text, got, want, tc.want)
		}
	}
	ids1, types := h.EncodeSingle("world")
	if !reflect.DeepEqual(ids1, []int{1, 278}) || !reflect.DeepEqual(types, []int{0, 0}) {
		t.Errorf("EncodeSingle(world) = %v %v", ids1, types)
	}
	ids2, types2 := h.EncodePair("world", "hé")
	if len(ids2) != 6 || ids2[0] != 1 || ids2[2] != 1 || !reflect.DeepEqual(types2, []int{0, 0, 1, 1, 1, 1}) {
		t.Errorf("EncodePair = %v %v", ids2, types2)
	}
	// Decode: ▁ → ' ', bytes reassembled, the leading space stripped,
	// special tokens left out.
	for text, want := range map[string]string{"hé world": "hé world", " world": " world", "<s>world": "world"} {
		if got := h.Decode(h.Encode(text)); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", text, got, want)
		}
	}
	// A lone continuation byte is not UTF-8: one U+FFFD per byte token.
	if got := h.Decode(ids(t, h, "▁h", "<0xA9>", "<0xA9>", "el")); got != "h\uFFFD\uFFFDel" {
		t.Errorf("Decode(invalid bytes) = %q", got)
	}
}

func TestHFBPEMetaspace(t *testing.T) {
	h := llamaHF(t, true, true)
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"hello world", []string{"▁h", "el", "lo", "▁world"}},
		// Metaspace prepends only when the text does not already start
		// with ▁, unlike Prepend.
		{" world", []string{"▁world"}},
		// "first": only the piece at the start of the input gets ▁.
		{"<s>world", []string{"<s>", "w", "or", "ld"}},
	} {
		want := ids(t, h, tc.want...)
		if got := h.Encode(tc.text); !reflect.DeepEqual(got, want) {
			t.Errorf("Encode(%q) = %v, want %v %q", tc.text, got, want, tc.want)
		}
	}
	// The Metaspace decoder drops the ▁ of the first token.
	if got := h.Decode(ids(t, h, "▁h", "el", "lo", "▁world")); got != "hello world" {
		t.Errorf("Decode = %q", got)
	}
}

func TestHFBPEOptions(t *testing.T) {
	// Without byte fallback, unknown characters become <unk>, fused.
	noFallback := func(doc map[string]any) {
		doc["model"].(map[string]any)["byte_fallback"] = false
	}
	h, err := ParseJSON(llamaJSON(t, false, false, noFallback))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Encode("hééé"), ids(t, h, "▁h", "<unk>"); !reflect.DeepEqual(got, want) {
		t.Errorf("fused unk: %v, want %v", got, want)
	}
	unfused := func(doc map[string]any) {
		noFallback(doc)
		doc["model"].(map[string]any)["fuse_unk"] = false
	}
	h, err = ParseJSON(llamaJSON(t, false, false, unfused))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Encode("héé"), ids(t, h, "▁h", "<unk>", "<unk>"); !reflect.DeepEqual(got, want) {
		t.Errorf("unfused unk: %v, want %v", got, want)
	}
	// ignore_merges: a word that is a token is taken whole.
	ignore := func(doc map[string]any) { doc["model"].(map[string]any)["ignore_merges"] = true }
	h, err = ParseJSON(llamaJSON(t, false, false, ignore))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Encode("hello"), ids(t, h, "▁hello"); !reflect.DeepEqual(got, want) {
		t.Errorf("ignore_merges: %v, want %v", got, want)
	}
	// Byte fallback with a byte token missing: that character is <unk>,
	// and (as in the tokenizers crate) a pending <unk> run is only emitted
	// after byte tokens that follow it.
	missing := func(doc map[string]any) {
		v := doc["model"].(map[string]any)["vocab"].(map[string]any)
		delete(v, "<0xA9>")
	}
	h, err = ParseJSON(llamaJSON(t, false, false, missing))
	if err != nil {
		t.Fatal(err)
	}
	// é is C3 A9 (A9 missing → unk); ã is C3 A3 (bytes present).
	if got, want := h.Encode("éã"), ids(t, h, "▁", "<0xC3>", "<0xA3>", "<unk>"); !reflect.DeepEqual(got, want) {
		t.Errorf("unk after bytes: %v, want %v", got, want)
	}
}

func TestHFAddedTokenOptions(t *testing.T) {
	withTok := func(tok map[string]any) func(map[string]any) {
		return func(doc map[string]any) {
			doc["added_tokens"] = append(doc["added_tokens"].([]any), tok)
		}
	}
	h, err := ParseJSON(llamaJSON(t, false, false, withTok(map[string]any{
		"id": 300, "content": "<x>", "single_word": true, "lstrip": true, "rstrip": true, "normalized": false, "special": false,
	})))
	if err != nil {
		t.Fatal(err)
	}
	// lstrip/rstrip swallow the spaces around; single_word refuses a match
	// glued to a word character.
	if got, want := h.Encode("he <x> world"), ids(t, h, "▁he", "<x>", "▁world"); !reflect.DeepEqual(got, want) {
		t.Errorf("lstrip/rstrip: %v, want %v", got, want)
	}
	if got := h.Encode("w<x>"); reflect.DeepEqual(got[len(got)-1:], []int{300}) {
		t.Errorf("single_word matched inside a word: %v", got)
	}
	// A non-special added token is decoded, a special one is not.
	if got := h.Decode([]int{300, 1}); got != "<x>" {
		t.Errorf("Decode = %q", got)
	}
	// A normalized added token is matched in the normalized text.
	h, err = ParseJSON(llamaJSON(t, false, false, withTok(map[string]any{
		"id": 301, "content": "zz", "normalized": true, "special": false,
	})))
	if err != nil {
		t.Fatal(err)
	}
	// The pattern itself is normalized, "zz" → "▁zz", so it only matches
	// after a space (a quirk of the Prepend normalizer kept as is).
	if got, want := h.Encode("w zz"), []int{ids(t, h, "▁w")[0], 301}; !reflect.DeepEqual(got, want) {
		t.Errorf("normalized added token: %v, want %v", got, want)
	}
	if got := h.Encode("wzz"); got[len(got)-1] == 301 {
		t.Errorf("normalized added token matched without its ▁: %v", got)
	}
}

func TestParseJSONErrors(t *testing.T) {
	set := func(path string, v any) func(map[string]any) {
		return func(doc map[string]any) {
			parts := strings.Split(path, ".")
			m := doc
			for _, p := range parts[:len(parts)-1] {
				m = m[p].(map[string]any)
			}
			m[parts[len(parts)-1]] = v
		}
	}
	for name, tc := range map[string]struct {
		mutate func(map[string]any)
		want   string
	}{
		"model type":     {set("model.type", "Unigram"), `"Unigram"`},
		"normalizer":     {set("normalizer", map[string]any{"type": "NFKC"}), `"NFKC"`},
		"pre_tokenizer":  {set("pre_tokenizer", map[string]any{"type": "ByteLevel"}), `"ByteLevel"`},
		"decoder":        {set("decoder", map[string]any{"type": "ByteLevel"}), `"ByteLevel"`},
		"post_processor": {set("post_processor", map[string]any{"type": "RobertaProcessing"}), `"RobertaProcessing"`},
		"regex replace":  {set("normalizer", map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " +"}, "content": "▁"}), "regex"},
		"dropout":        {set("model.dropout", 0.1), "dropout"},
		"suffix":         {set("model.end_of_word_suffix", "</w>"), "end_of_word_suffix"},
		"bad merge":      {set("model.merges", []any{"▁ q"}), "merge"},
		"merge format":   {set("model.merges", []any{"a b c"}), "merge"},
		"no model":       {set("model", nil), "no model"},
		"untyped":        {set("decoder", map[string]any{"x": 1}), "type"},
		"unk":            {set("model.unk_token", "<nope>"), "unk_token"},
		"added id":       {set("added_tokens", []any{map[string]any{"id": 5, "content": "<s>", "special": true}}), "<s>"},
		"template":       {set("post_processor.single", []any{map[string]any{"SpecialToken": map[string]any{"id": "<q>", "type_id": 0}}}), "<q>"},
		"scheme":         {set("decoder", map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}), "sometimes"},
	} {
		_, err := ParseJSON(llamaJSON(t, false, false, tc.mutate))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", name, err, tc.want)
		}
	}
	for _, bad := range []string{"", "{", "[]", `{"model": 3}`, `{"model": {"type": "WordPiece", "vocab": {"a": -1}}}`, "null"} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%q): no error", bad)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add(llamaJSON(f, false, false, nil))
	f.Add(llamaJSON(f, true, true, nil))
	f.Add([]byte(`{"model":{"type":"WordPiece","vocab":{"[UNK]":0,"a":1,"##b":2}},"normalizer":{"type":"BertNormalizer"},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",1],"cls":["[CLS]",0]}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"added_tokens":[{"id":0,"content":"a","lstrip":true,"rstrip":true,"single_word":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseJSON(data)
		if err != nil {
			return
		}
		// Whatever parses must tokenize without panicking.
		for _, s := range []string{"", "ab a b", "hello world", "<s> é 🙂", "\xff"} {
			ids := h.Encode(s)
			h.Decode(ids)
			h.EncodePair(s, s)
			h.EncodePairTruncated(s, s, 4)
		}
	})
}

func FuzzHFEncode(f *testing.F) {
	llama := llamaHF(f, false, false)
	meta := llamaHF(f, true, false)
	bert := bertTokenizer(f)
	for _, s := range []string{"", "hello world", "héllo 🙂", "[CLS] x [SEP]", "<s>a</s>", "  a  ", "\xff\x00", "中国人", strings.Repeat("a", 120)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, h := range []*HF{llama, meta, bert} {
			ids := h.Encode(text)
			for _, id := range ids {
				if h.Token(id) == "" {
					t.Fatalf("Encode(%q) gave id %d outside the vocabulary", text, id)
				}
			}
			h.Decode(ids)
			if a, b, err := h.EncodePairTruncated(text, text, 16); err != nil || len(a) > 16 || len(a) != len(b) {
				t.Fatalf("EncodePairTruncated(%q): %d ids, %d types, %v", text, len(a), len(b), err)
			}
		}
		// The Llama layout spells every character in the vocabulary or in
		// bytes, so it round-trips valid UTF-8 that holds no ▁ (read as a
		// space) and no special-token text (left out of Decode).
		if utf8.ValidString(text) && !strings.Contains(text, spaceMark) &&
			!strings.Contains(text, "<s>") && !strings.Contains(text, "</s>") && !strings.Contains(text, "<unk>") {
			if got := llama.Decode(llama.Encode(text)); got != text {
				t.Fatalf("Decode(Encode(%q)) = %q", text, got)
			}
		}
	})
}
