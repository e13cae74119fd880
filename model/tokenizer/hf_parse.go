package tokenizer

// Parsing tokenizer.json's pipeline components — model, normalizer,
// pre-tokenizer, decoder, post-processor — into the steps hf.go runs.

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

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
