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

func unsupported(kind, typ string) error {
	return fmt.Errorf("tokenizer: unsupported %s type %q", kind, typ)
}

func parseModel(raw component) (hfModel, string, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, "", fmt.Errorf("tokenizer: model: %w", err)
	}
	switch typ {
	case "":
		return nil, "", fmt.Errorf("tokenizer: no model")
	case "WordPiece":
		var m struct {
			Vocab    map[string]int `json:"vocab"`
			Unk      *string        `json:"unk_token"`
			Prefix   *string        `json:"continuing_subword_prefix"`
			MaxChars *int           `json:"max_input_chars_per_word"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, "", fmt.Errorf("tokenizer: WordPiece model: %w", err)
		}
		// The defaults are WordPiece's: "[UNK]", "##", 100.
		unk, prefix, maxChars := "[UNK]", "##", 100
		if m.Unk != nil {
			unk = *m.Unk
		}
		if m.Prefix != nil {
			prefix = *m.Prefix
		}
		if m.MaxChars != nil {
			maxChars = *m.MaxChars
		}
		wp, err := newWordPiece(m.Vocab, unk, prefix, maxChars)
		return wp, typ, err
	case "BPE":
		var m struct {
			Vocab        map[string]int    `json:"vocab"`
			Merges       []json.RawMessage `json:"merges"`
			Unk          *string           `json:"unk_token"`
			Dropout      *float64          `json:"dropout"`
			Prefix       *string           `json:"continuing_subword_prefix"`
			Suffix       *string           `json:"end_of_word_suffix"`
			FuseUnk      bool              `json:"fuse_unk"`
			ByteFallback bool              `json:"byte_fallback"`
			IgnoreMerges bool              `json:"ignore_merges"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, "", fmt.Errorf("tokenizer: BPE model: %w", err)
		}
		if m.Dropout != nil && *m.Dropout != 0 {
			return nil, "", fmt.Errorf("tokenizer: BPE dropout %v is random; unsupported", *m.Dropout)
		}
		if m.Prefix != nil && *m.Prefix != "" {
			return nil, "", fmt.Errorf("tokenizer: unsupported BPE continuing_subword_prefix %q", *m.Prefix)
		}
		if m.Suffix != nil && *m.Suffix != "" {
			return nil, "", fmt.Errorf("tokenizer: unsupported BPE end_of_word_suffix %q", *m.Suffix)
		}
		merges := make([][2]string, len(m.Merges))
		for i, mr := range m.Merges {
			// Merges are "a b" strings (older files) or ["a", "b"] pairs.
			var s string
			var pair []string
			if err := json.Unmarshal(mr, &s); err == nil {
				parts := strings.Split(s, " ")
				if len(parts) != 2 {
					return nil, "", fmt.Errorf("tokenizer: BPE merge %d %q is not two tokens", i, s)
				}
				merges[i] = [2]string{parts[0], parts[1]}
			} else if err := json.Unmarshal(mr, &pair); err == nil && len(pair) == 2 {
				merges[i] = [2]string{pair[0], pair[1]}
			} else {
				return nil, "", fmt.Errorf("tokenizer: BPE merge %d is neither \"a b\" nor [a, b]: %.60s", i, mr)
			}
		}
		unk := ""
		if m.Unk != nil {
			unk = *m.Unk
		}
		b, err := newBPE(m.Vocab, merges, unk, m.FuseUnk, m.ByteFallback, m.IgnoreMerges)
		return b, typ, err
	}
	return nil, "", unsupported("model", typ)
}

// replacePattern reads Replace's {"String": "..."} pattern; regex patterns
// are not supported.
func replacePattern(kind string, p map[string]string) (string, error) {
	if s, ok := p["String"]; ok && len(p) == 1 && s != "" {
		return s, nil
	}
	if _, ok := p["Regex"]; ok {
		return "", fmt.Errorf("tokenizer: unsupported regex pattern in %s Replace", kind)
	}
	return "", fmt.Errorf("tokenizer: bad %s Replace pattern %v", kind, p)
}

func parseNormalizer(raw component) (normalizer, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: normalizer: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "BertNormalizer":
		var n struct {
			CleanText    *bool `json:"clean_text"`
			Chinese      *bool `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("tokenizer: BertNormalizer: %w", err)
		}
		def := func(b *bool) bool { return b == nil || *b }
		bn := bertNormalizer{cleanText: def(n.CleanText), chineseChars: def(n.Chinese), lowercase: def(n.Lowercase)}
		// strip_accents null follows lowercase.
		bn.stripAccents = bn.lowercase
		if n.StripAccents != nil {
			bn.stripAccents = *n.StripAccents
		}
		return bn, nil
	case "Sequence":
		var n struct {
			Normalizers []component `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("tokenizer: normalizer Sequence: %w", err)
		}
		var seq normalizerSeq
		for _, c := range n.Normalizers {
			step, err := parseNormalizer(c)
			if err != nil {
				return nil, err
			}
			if step != nil {
				seq = append(seq, step)
			}
		}
		return seq, nil
	case "Prepend":
		var n struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("tokenizer: Prepend: %w", err)
		}
		return prependNormalizer{n.Prepend}, nil
	case "Replace":
		var n struct {
			Pattern map[string]string `json:"pattern"`
			Content string            `json:"content"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("tokenizer: normalizer Replace: %w", err)
		}
		p, err := replacePattern("normalizer", n.Pattern)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{p, n.Content}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFD":
		return nfdNormalizer{}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		var n struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("tokenizer: Strip: %w", err)
		}
		return stripNormalizer{n.Left, n.Right}, nil
	}
	return nil, unsupported("normalizer", typ)
}

// parseMetaspaceOptions reads replacement and the prepend scheme, including
// the older add_prefix_space spelling (false means "never").
func parseMetaspaceOptions(raw component) (string, string, bool, error) {
	var m struct {
		Replacement    string  `json:"replacement"`
		PrependScheme  *string `json:"prepend_scheme"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		Split          *bool   `json:"split"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", "", false, fmt.Errorf("tokenizer: Metaspace: %w", err)
	}
	if utf8.RuneCountInString(m.Replacement) != 1 {
		return "", "", false, fmt.Errorf("tokenizer: Metaspace replacement %q is not one character", m.Replacement)
	}
	scheme := prependAlways
	if m.PrependScheme != nil {
		scheme = *m.PrependScheme
	}
	if m.AddPrefixSpace != nil && !*m.AddPrefixSpace {
		scheme = prependNever
	}
	switch scheme {
	case prependAlways, prependFirst, prependNever:
	default:
		return "", "", false, fmt.Errorf("tokenizer: unsupported Metaspace prepend_scheme %q", scheme)
	}
	split := m.Split == nil || *m.Split
	return m.Replacement, scheme, split, nil
}

// parsePreTokenizer reads the pre-tokenizer; first says it sees whole
// pieces of the input, which Metaspace's "first" scheme needs.
func parsePreTokenizer(raw component, first bool) (preTokenizer, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: pre_tokenizer: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "WhitespaceSplit":
		return whitespaceSplit{}, nil
	case "Metaspace":
		rep, scheme, split, err := parseMetaspaceOptions(raw)
		if err != nil {
			return nil, err
		}
		if scheme == prependFirst && !first {
			return nil, fmt.Errorf("tokenizer: unsupported Metaspace prepend_scheme \"first\" after another pre-tokenizer")
		}
		return metaspace{replacement: rep, prepend: scheme, split: split}, nil
	case "Sequence":
		var p struct {
			PreTokenizers []component `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("tokenizer: pre_tokenizer Sequence: %w", err)
		}
		var seq preTokenizerSeq
		for i, c := range p.PreTokenizers {
			step, err := parsePreTokenizer(c, first && i == 0)
			if err != nil {
				return nil, err
			}
			if step != nil {
				seq = append(seq, step)
			}
		}
		return seq, nil
	}
	return nil, unsupported("pre_tokenizer", typ)
}

func parseDecoder(raw component) (decoderStep, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: decoder: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "WordPiece":
		var d struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("tokenizer: WordPiece decoder: %w", err)
		}
		wd := wordPieceDecoder{prefix: "##", cleanup: true}
		if d.Prefix != nil {
			wd.prefix = *d.Prefix
		}
		if d.Cleanup != nil {
			wd.cleanup = *d.Cleanup
		}
		return wd, nil
	case "Sequence":
		var d struct {
			Decoders []component `json:"decoders"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("tokenizer: decoder Sequence: %w", err)
		}
		var seq decoderSeq
		for _, c := range d.Decoders {
			step, err := parseDecoder(c)
			if err != nil {
				return nil, err
			}
			if step != nil {
				seq = append(seq, step)
			}
		}
		return seq, nil
	case "Replace":
		var d struct {
			Pattern map[string]string `json:"pattern"`
			Content string            `json:"content"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("tokenizer: decoder Replace: %w", err)
		}
		p, err := replacePattern("decoder", d.Pattern)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{p, d.Content}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var d struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("tokenizer: Strip decoder: %w", err)
		}
		if utf8.RuneCountInString(d.Content) != 1 || d.Start < 0 || d.Stop < 0 {
			return nil, fmt.Errorf("tokenizer: bad Strip decoder %q %d %d", d.Content, d.Start, d.Stop)
		}
		r, _ := utf8.DecodeRuneInString(d.Content)
		return stripDecoder{content: r, start: d.Start, stop: d.Stop}, nil
	case "Metaspace":
		rep, scheme, _, err := parseMetaspaceOptions(raw)
		if err != nil {
			return nil, err
		}
		r, _ := utf8.DecodeRuneInString(rep)
		return metaspaceDecoder{replacement: r, prepend: scheme}, nil
	}
	return nil, unsupported("decoder", typ)
}

func parsePostProcessor(raw component, h *HF) (*template, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: post_processor: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "BertProcessing":
		var p struct {
			Sep []json.RawMessage `json:"sep"`
			Cls []json.RawMessage `json:"cls"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("tokenizer: BertProcessing: %w", err)
		}
		t := &template{specials: map[string][]int{}}
		var names [2]string
		for i, tok := range [][]json.RawMessage{p.Cls, p.Sep} {
			var id int
			if len(tok) != 2 || json.Unmarshal(tok[0], &names[i]) != nil || json.Unmarshal(tok[1], &id) != nil {
				return nil, fmt.Errorf("tokenizer: BertProcessing cls/sep is not [token, id]")
			}
			t.specials[names[i]] = []int{id}
		}
		cls, sep := names[0], names[1]
		t.single = []templatePiece{{special: cls, seq: -1}, {seq: 0}, {special: sep, seq: -1}}
		t.pair = []templatePiece{{special: cls, seq: -1}, {seq: 0}, {special: sep, seq: -1},
			{seq: 1, typeID: 1}, {special: sep, seq: -1, typeID: 1}}
		return t, t.check(h)
	case "TemplateProcessing":
		type seqRef struct {
			ID     string `json:"id"`
			TypeID int    `json:"type_id"`
		}
		type piece struct {
			SpecialToken *seqRef `json:"SpecialToken"`
			Sequence     *seqRef `json:"Sequence"`
		}
		var p struct {
			Single   []piece `json:"single"`
			Pair     []piece `json:"pair"`
			Specials map[string]struct {
				IDs []int `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("tokenizer: TemplateProcessing: %w", err)
		}
		t := &template{specials: map[string][]int{}}
		for name, s := range p.Specials {
			t.specials[name] = s.IDs
		}
		conv := func(ps []piece, what string) ([]templatePiece, error) {
			var out []templatePiece
			for _, q := range ps {
				switch {
				case q.SpecialToken != nil && q.Sequence == nil:
					out = append(out, templatePiece{special: q.SpecialToken.ID, seq: -1, typeID: q.SpecialToken.TypeID})
				case q.Sequence != nil && q.SpecialToken == nil && (q.Sequence.ID == "A" || q.Sequence.ID == "B"):
					out = append(out, templatePiece{seq: int(q.Sequence.ID[0] - 'A'), typeID: q.Sequence.TypeID})
				default:
					return nil, fmt.Errorf("tokenizer: TemplateProcessing %s has a piece that is neither a special token nor sequence A/B", what)
				}
			}
			return out, nil
		}
		if t.single, err = conv(p.Single, "single"); err != nil {
			return nil, err
		}
		if t.pair, err = conv(p.Pair, "pair"); err != nil {
			return nil, err
		}
		return t, t.check(h)
	}
	return nil, unsupported("post_processor", typ)
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
