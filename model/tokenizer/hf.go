package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// HF is a tokenizer loaded from a Hugging Face tokenizer.json. It runs the
// file's pipeline the way the tokenizers crate does: added tokens are cut out
// of the raw text first (those marked normalized: false as written, the others
// after normalization), each remaining piece is normalized, pre-tokenized and
// tokenized by the model, and the post-processor template adds the special
// tokens when asked. The file's own truncation and padding settings are not
// applied (transformers does not apply them either); see TruncationMaxLength.
// Safe for concurrent use.
type HF struct {
	model      hfModel
	normalizer normalizer   // nil: none
	pre        preTokenizer // nil: none
	post       *template    // nil: none
	decoder    decoderStep  // nil: tokens joined with spaces

	addedByID   map[int]*addedToken
	addedByText map[string]int
	rawTokens   *addedMatcher // normalized: false
	normTokens  *addedMatcher // normalized: true, matched in normalized text
	special     SpecialTokens
	vocabSize   int
	truncation  int
	modelType   string
}

// addedToken is an entry of "added_tokens".
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// LoadJSON reads a tokenizer.json file.
func LoadJSON(path string) (*HF, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// component is any typed part of the file: {"type": "...", ...} or null.
type component = json.RawMessage

func typeOf(raw component) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	var t struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", err
	}
	if t.Type == nil {
		return "", fmt.Errorf("component without a type: %.60s", raw)
	}
	if *t.Type == "" {
		return "", fmt.Errorf("component with an empty type")
	}
	return *t.Type, nil
}

// ParseJSON builds the tokenizer from the contents of a tokenizer.json.
// Components outside the supported set are an error naming them.
func ParseJSON(data []byte) (*HF, error) {
	var file struct {
		AddedTokens   []addedToken `json:"added_tokens"`
		Normalizer    component    `json:"normalizer"`
		PreTokenizer  component    `json:"pre_tokenizer"`
		PostProcessor component    `json:"post_processor"`
		Decoder       component    `json:"decoder"`
		Model         component    `json:"model"`
		Truncation    *struct {
			MaxLength int `json:"max_length"`
		} `json:"truncation"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	h := &HF{addedByID: map[int]*addedToken{}, addedByText: map[string]int{}}
	var err error
	if h.model, h.modelType, err = parseModel(file.Model); err != nil {
		return nil, err
	}
	if h.normalizer, err = parseNormalizer(file.Normalizer); err != nil {
		return nil, err
	}
	if h.pre, err = parsePreTokenizer(file.PreTokenizer, true); err != nil {
		return nil, err
	}
	if h.decoder, err = parseDecoder(file.Decoder); err != nil {
		return nil, err
	}
	if file.Truncation != nil {
		h.truncation = file.Truncation.MaxLength
	}

	h.vocabSize = h.model.maxID() + 1
	var raw, norm []*addedToken
	for i := range file.AddedTokens {
		a := &file.AddedTokens[i]
		if a.Content == "" {
			continue // ignored, as Hugging Face does
		}
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer: added token %q has id %d", a.Content, a.ID)
		}
		if id, ok := h.model.tokenID(a.Content); ok && id != a.ID {
			return nil, fmt.Errorf("tokenizer: added token %q has id %d but the vocabulary says %d", a.Content, a.ID, id)
		}
		if other, dup := h.addedByID[a.ID]; dup {
			return nil, fmt.Errorf("tokenizer: added tokens %q and %q share id %d", other.Content, a.Content, a.ID)
		}
		if _, dup := h.addedByText[a.Content]; dup {
			return nil, fmt.Errorf("tokenizer: added token %q appears twice", a.Content)
		}
		h.addedByID[a.ID] = a
		h.addedByText[a.Content] = a.ID
		h.vocabSize = max(h.vocabSize, a.ID+1)
		// A missing "normalized" means true, AddedToken's default.
		if a.Normalized == nil || *a.Normalized {
			norm = append(norm, a)
		} else {
			raw = append(raw, a)
		}
	}
	h.rawTokens = newAddedMatcher(raw, nil)
	h.normTokens = newAddedMatcher(norm, h.normalizer)

	if h.post, err = parsePostProcessor(file.PostProcessor, h); err != nil {
		return nil, err
	}
	h.special = h.findSpecials()
	return h, nil
}

// check validates a template: each sequence where it belongs exactly once,
// every special token defined and every id in the vocabulary.
func (t *template) check(h *HF) error {
	for _, c := range []struct {
		name   string
		pieces []templatePiece
		want   []int
	}{{"single", t.single, []int{1, 0}}, {"pair", t.pair, []int{1, 1}}} {
		var seen [2]int
		for _, p := range c.pieces {
			if p.seq >= 0 {
				seen[p.seq]++
				continue
			}
			if _, ok := t.specials[p.special]; !ok {
				return fmt.Errorf("tokenizer: template %s uses undefined special token %q", c.name, p.special)
			}
		}
		if seen[0] != c.want[0] || seen[1] != c.want[1] {
			return fmt.Errorf("tokenizer: template %s must hold sequence A%s exactly once", c.name, map[bool]string{true: " and B", false: ""}[c.name == "pair"])
		}
	}
	for name, ids := range t.specials {
		for _, id := range ids {
			if h.Token(id) == "" {
				return fmt.Errorf("tokenizer: template special token %q has id %d outside the vocabulary", name, id)
			}
		}
	}
	return nil
}

// findSpecials names the special tokens. tokenizer.json does not say which
// token plays which role (tokenizer_config.json does), so the roles come from
// the model's unk_token and the conventional spellings of the added special
// tokens: [CLS] [SEP] [PAD] [MASK] for BERT, <s> </s> <pad> <mask> for
// SentencePiece-style vocabularies.
func (h *HF) findSpecials() SpecialTokens {
	sp := noSpecials()
	sp.UNK = h.model.unkID()
	for _, c := range []struct {
		dst   *int
		names []string
	}{
		{&sp.CLS, []string{"[CLS]"}},
		{&sp.SEP, []string{"[SEP]"}},
		{&sp.PAD, []string{"[PAD]", "<pad>"}},
		{&sp.MASK, []string{"[MASK]", "<mask>"}},
		{&sp.BOS, []string{"<s>"}},
		{&sp.EOS, []string{"</s>"}},
	} {
		for _, name := range c.names {
			if id, ok := h.addedByText[name]; ok && h.addedByID[id].Special {
				*c.dst = id
				break
			}
		}
	}
	return sp
}

// VocabSize is one more than the largest id of the vocabulary or the added
// tokens.
func (h *HF) VocabSize() int { return h.vocabSize }

// ModelType is the model's type in the file: "WordPiece" or "BPE".
func (h *HF) ModelType() string { return h.modelType }

// TruncationMaxLength is the max_length of the file's own truncation
// setting, 0 when it has none. It is informational: nothing here applies it.
func (h *HF) TruncationMaxLength() int { return h.truncation }

// Special reports the special tokens found by name (see findSpecials).
func (h *HF) Special() SpecialTokens { return h.special }

// TokenID looks tok up among the added tokens, then in the model vocabulary.
func (h *HF) TokenID(tok string) (int, bool) {
	if id, ok := h.addedByText[tok]; ok {
		return id, true
	}
	return h.model.tokenID(tok)
}

// Token is the text of id, an added token's or the vocabulary's.
func (h *HF) Token(id int) string {
	if a, ok := h.addedByID[id]; ok {
		return a.Content
	}
	tok, _ := h.model.token(id)
	return tok
}

// IsSpecial reports whether id is an added token marked special.
func (h *HF) IsSpecial(id int) bool {
	a, ok := h.addedByID[id]
	return ok && a.Special
}

// Encode tokenizes text without the template's special tokens (transformers'
// add_special_tokens=False); special tokens written in the text, such as
// "[SEP]", are still recognised as such. Invalid UTF-8 bytes are read as
// U+FFFD each (the reference only accepts valid strings).
func (h *HF) Encode(text string) []int {
	if !utf8.ValidString(text) {
		text = string(toValidRunes(text))
	}
	var out []int
	for _, seg := range h.rawTokens.split(text) {
		if seg.id >= 0 {
			out = append(out, seg.id)
			continue
		}
		norm := seg.text
		if h.normalizer != nil {
			norm = h.normalizer.normalize(norm)
		}
		for _, sub := range h.normTokens.split(norm) {
			if sub.id >= 0 {
				out = append(out, sub.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			words := []pword{{text: sub.text, atStart: seg.start == 0 && sub.start == 0}}
			if h.pre != nil {
				words = h.pre.preTokenize(words)
			}
			for _, w := range words {
				out = h.model.tokenize(w.text, out)
			}
		}
	}
	return out
}

// EncodeSingle tokenizes text and applies the single-sequence template
// ("[CLS] text [SEP]" for BERT, "<s> text" for Llama); without a
// post-processor it is Encode with type ids 0.
func (h *HF) EncodeSingle(text string) (ids, typeIDs []int) {
	return h.layout(h.Encode(text), nil, false)
}

// EncodePair tokenizes a and b and applies the pair template; without a
// post-processor the result is a then b with type ids 0 and 1.
func (h *HF) EncodePair(a, b string) (ids, typeIDs []int) {
	return h.layout(h.Encode(a), h.Encode(b), true)
}

func (h *HF) layout(a, b []int, pair bool) (ids, typeIDs []int) {
	if h.post != nil {
		return h.post.apply(a, b, pair)
	}
	ids = append(append([]int{}, a...), b...)
	typeIDs = make([]int, len(ids))
	for i := len(a); i < len(ids); i++ {
		typeIDs[i] = 1
	}
	return ids, typeIDs
}

// numAdded is how many ids the template adds.
func (h *HF) numAdded(pair bool) int {
	if h.post == nil {
		return 0
	}
	return h.post.added(pair)
}

// EncodeSingleTruncated is EncodeSingle with the text cut (from the right)
// so that the result, special tokens included, has at most maxLen ids.
func (h *HF) EncodeSingleTruncated(text string, maxLen int) (ids, typeIDs []int, err error) {
	room := maxLen - h.numAdded(false)
	if room < 0 {
		return nil, nil, ErrTooShort
	}
	a := h.Encode(text)
	a = a[:min(len(a), room)]
	ids, typeIDs = h.layout(a, nil, false)
	return ids, typeIDs, nil
}

// EncodePairTruncated is EncodePair cut to at most maxLen ids, special tokens
// included, with Hugging Face's longest-first strategy (truncation=True):
// when only the longer sequence has to give, it keeps what the shorter
// leaves room for; otherwise each keeps half of the room, the odd id going to
// the longer (to b when they tie). Both are cut from the right.
func (h *HF) EncodePairTruncated(a, b string, maxLen int) (ids, typeIDs []int, err error) {
	room := maxLen - h.numAdded(true)
	if room < 0 {
		return nil, nil, ErrTooShort
	}
	ea, eb := h.Encode(a), h.Encode(b)
	na, nb := longestFirst(len(ea), len(eb), room)
	ids, typeIDs = h.layout(ea[:min(na, len(ea))], eb[:min(nb, len(eb))], true)
	return ids, typeIDs, nil
}

// longestFirst is the tokenizers crate's LongestFirst pair truncation: the
// lengths to keep of sequences of n1 and n2 ids for at most room ids.
func longestFirst(n1, n2, room int) (int, int) {
	if n1+n2 <= room {
		return n1, n2
	}
	if room == 0 {
		return 0, 0
	}
	swap := n1 > n2
	if swap {
		n1, n2 = n2, n1
	}
	// n1 is the shorter; keep it whole if the longer can take the rest.
	long := n2
	if n1 > room {
		n2 = n1
	} else {
		n2 = max(n1, room-n1)
	}
	if n1+n2 > room {
		n1 = room / 2
		n2 = n1 + room%2
	}
	n2 = min(n2, long)
	if swap {
		n1, n2 = n2, n1
	}
	return n1, n2
}

// Decode turns ids into text through the file's decoder, leaving special
// tokens (and ids that name no token) out, as tokenizers' decode with
// skip_special_tokens does.
func (h *HF) Decode(ids []int) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if h.IsSpecial(id) {
			continue
		}
		if tok := h.Token(id); tok != "" {
			toks = append(toks, tok)
		}
	}
	if h.decoder == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(h.decoder.decodeChain(toks), "")
}

// addedMatcher finds added tokens in text as the tokenizers crate's
// AddedVocabulary does: leftmost-longest, non-overlapping matches, then the
// single_word, lstrip and rstrip options applied to each.
type addedMatcher struct {
	tokens  []*addedToken
	pattern []string       // per token: its content, normalized if it is a normalized token
	byFirst map[byte][]int // token indices by the first byte of the pattern, longest first
}

func newAddedMatcher(tokens []*addedToken, norm normalizer) *addedMatcher {
	m := &addedMatcher{tokens: tokens, byFirst: map[byte][]int{}}
	for i, t := range tokens {
		p := t.Content
		if norm != nil {
			p = norm.normalize(p)
		}
		m.pattern = append(m.pattern, p)
		if p != "" {
			m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
		}
	}
	for _, idx := range m.byFirst {
		sort.SliceStable(idx, func(a, b int) bool { return len(m.pattern[idx[a]]) > len(m.pattern[idx[b]]) })
	}
	return m
}

// segment is a piece of the input: text (id < 0) starting at byte start, or
// an added token.
type segment struct {
	text  string
	start int
	id    int
}

// split cuts s around the added tokens it contains.
func (m *addedMatcher) split(s string) []segment {
	if len(m.tokens) == 0 || s == "" {
		return []segment{{text: s, id: -1}}
	}
	var out []segment
	last := 0 // end of the previous emitted piece
	for i := 0; i < len(s); {
		k := -1
		for _, idx := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], m.pattern[idx]) {
				k = idx
				break
			}
		}
		if k < 0 {
			i++
			continue
		}
		start, stop := i, i+len(m.pattern[k])
		i = stop // the matcher resumes after the match, kept or not
		t := m.tokens[k]
		if start < last {
			continue // inside what an rstrip already took
		}
		if t.SingleWord {
			before, _ := utf8.DecodeLastRuneInString(s[:start])
			after, _ := utf8.DecodeRuneInString(s[stop:])
			if start > 0 && isWordChar(before) || stop < len(s) && isWordChar(after) {
				continue
			}
		}
		if t.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], isWhitespace)), last)
		}
		if t.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], isWhitespace))
		}
		if last < start {
			out = append(out, segment{text: s[last:start], start: last, id: -1})
		}
		out = append(out, segment{text: s[start:stop], start: start, id: t.ID})
		last = stop
	}
	if last < len(s) {
		out = append(out, segment{text: s[last:], start: last, id: -1})
	}
	return out
}
