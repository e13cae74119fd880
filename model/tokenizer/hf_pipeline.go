package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// The normalizers, pre-tokenizers, decoders and post-processors of a Hugging
// Face pipeline that kronfed's models use, each doing what the tokenizers
// crate component of the same name does.

type normalizer interface {
	normalize(s string) string
}

type normalizerSeq []normalizer

func (n normalizerSeq) normalize(s string) string {
	for _, step := range n {
		s = step.normalize(s)
	}
	return s
}

// bertNormalizer is BertNormalizer: clean_text drops NUL, U+FFFD and control
// characters and makes all whitespace ' '; handle_chinese_chars puts spaces
// around CJK ideographs; strip_accents is NFD then dropping non-spacing
// marks; lowercase is per-character full lowercasing. In that order.
type bertNormalizer struct {
	cleanText, chineseChars, stripAccents, lowercase bool
}

func (n bertNormalizer) normalize(s string) string {
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		if n.cleanText {
			if r == 0 || r == 0xFFFD || isBertControl(r) {
				continue
			}
			if isBertWhitespace(r) {
				r = ' '
			}
		}
		if n.chineseChars && isChineseChar(r) {
			rs = append(rs, ' ', r, ' ')
			continue
		}
		rs = append(rs, r)
	}
	if n.stripAccents {
		rs = stripMarks(nfd(rs))
	}
	if n.lowercase {
		lower := make([]rune, 0, len(rs))
		for _, r := range rs {
			lower = appendLower(lower, r)
		}
		rs = lower
	}
	return string(rs)
}

func stripMarks(rs []rune) []rune {
	out := rs[:0]
	for _, r := range rs {
		if !isNonspacingMark(r) {
			out = append(out, r)
		}
	}
	return out
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string {
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		rs = appendLower(rs, r)
	}
	return string(rs)
}

type nfdNormalizer struct{}

func (nfdNormalizer) normalize(s string) string { return string(nfd(toValidRunes(s))) }

// stripAccentsNormalizer is StripAccents: it drops non-spacing marks (and
// does not decompose; files pair it with NFD).
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(s string) string {
	return string(stripMarks(toValidRunes(s)))
}

// prependNormalizer is Prepend: the string goes in front of non-empty text.
type prependNormalizer struct{ prefix string }

func (n prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return n.prefix + s
}

// replaceNormalizer is Replace with a literal pattern.
type replaceNormalizer struct{ pattern, content string }

func (n replaceNormalizer) normalize(s string) string {
	return strings.ReplaceAll(s, n.pattern, n.content)
}

// stripNormalizer is Strip: whitespace off the left and/or right end.
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, isWhitespace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, isWhitespace)
	}
	return s
}

// pword is a piece of normalized text on its way to the model. atStart says
// it begins at offset 0 of the original input, which Metaspace's "first"
// prepend scheme asks.
type pword struct {
	text    string
	atStart bool
}

type preTokenizer interface {
	preTokenize(words []pword) []pword
}

type preTokenizerSeq []preTokenizer

func (p preTokenizerSeq) preTokenize(words []pword) []pword {
	for _, step := range p {
		words = step.preTokenize(words)
	}
	return words
}

// bertPreTokenizer is BertPreTokenizer: split on whitespace, dropping it,
// then split off every punctuation character as a word of its own.
type bertPreTokenizer struct{}

func (bertPreTokenizer) preTokenize(words []pword) []pword {
	var out []pword
	for _, w := range words {
		start := -1
		for i, r := range w.text {
			switch {
			case isWhitespace(r):
				if start >= 0 {
					out = append(out, pword{text: w.text[start:i]})
					start = -1
				}
			case isBertPunct(r):
				if start >= 0 {
					out = append(out, pword{text: w.text[start:i]})
					start = -1
				}
				out = append(out, pword{text: w.text[i : i+utf8.RuneLen(r)]})
			default:
				if start < 0 {
					start = i
				}
			}
		}
		if start >= 0 {
			out = append(out, pword{text: w.text[start:]})
		}
	}
	return out
}

// whitespaceSplit is WhitespaceSplit: split on whitespace, dropping it.
type whitespaceSplit struct{}

func (whitespaceSplit) preTokenize(words []pword) []pword {
	var out []pword
	for _, w := range words {
		for _, f := range strings.FieldsFunc(w.text, isWhitespace) {
			out = append(out, pword{text: f})
		}
	}
	return out
}

// Metaspace prepend schemes.
const (
	prependAlways = "always"
	prependFirst  = "first"
	prependNever  = "never"
)

// metaspace is the Metaspace pre-tokenizer: ' ' becomes the replacement,
// which is then put in front unless already there (always, or only for the
// piece at the start of the input with "first"), and with split the text is
// cut before every replacement character.
type metaspace struct {
	replacement string
	prepend     string
	split       bool
}

func (m metaspace) preTokenize(words []pword) []pword {
	var out []pword
	for _, w := range words {
		s := strings.ReplaceAll(w.text, " ", m.replacement)
		if !strings.HasPrefix(s, m.replacement) &&
			(m.prepend == prependAlways || m.prepend == prependFirst && w.atStart) {
			s = m.replacement + s
		}
		if !m.split {
			out = append(out, pword{text: s})
			continue
		}
		// Cut before every replacement (MergedWithNext).
		start := 0
		for i := 0; i < len(s); {
			j := strings.Index(s[i:], m.replacement)
			if j < 0 {
				break
			}
			j += i
			if j > start {
				out = append(out, pword{text: s[start:j]})
				start = j
			}
			i = j + len(m.replacement)
		}
		if start < len(s) {
			out = append(out, pword{text: s[start:]})
		}
	}
	return out
}

// decoderStep is one decoder of a Hugging Face decode chain.
type decoderStep interface {
	decodeChain(tokens []string) []string
}

// wordPieceDecoder joins pieces, gluing on those with the prefix, and
// optionally undoes the spaces before punctuation and in contractions.
type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		if i != 0 {
			if rest, ok := strings.CutPrefix(tok, d.prefix); ok {
				tok = rest
			} else {
				tok = " " + tok
			}
		}
		if d.cleanup {
			tok = cleanupTokenization(tok)
		}
		out[i] = tok
	}
	return out
}

// cleanupTokenization is the tokenizers crate's cleanup, replacement by
// replacement in its order.
func cleanupTokenization(s string) string {
	for _, r := range [][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
		{" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

type decoderSeq []decoderStep

func (d decoderSeq) decodeChain(tokens []string) []string {
	for _, step := range d {
		tokens = step.decodeChain(tokens)
	}
	return tokens
}

type replaceDecoder struct{ pattern, content string }

func (d replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = strings.ReplaceAll(t, d.pattern, d.content)
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens into the text they spell,
// or into one U+FFFD per token when the bytes are not valid UTF-8.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := decoderByte(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// decoderByte reads a byte token as the ByteFallback decoder does: six bytes,
// "<0x", two characters Rust's u8::from_str_radix(_, 16) accepts (which
// includes a leading '+'), ">".
func decoderByte(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	if t[3] == '+' {
		lo, ok := hexDigit(t[4])
		return lo, ok
	}
	hi, ok1 := hexDigit(t[3])
	lo, ok2 := hexDigit(t[4])
	return hi<<4 | lo, ok1 && ok2
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from each token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rs := []rune(t)
		lo, hi := 0, len(rs)
		for lo < d.start && lo < len(rs) && rs[lo] == d.content {
			lo++
		}
		for n := 0; n < d.stop && hi > lo && rs[hi-1] == d.content; n++ {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// metaspaceDecoder turns the replacement back into spaces, except that in
// the first token it is dropped altogether (unless the prepend scheme is
// "never").
type metaspaceDecoder struct {
	replacement rune
	prepend     string
}

func (d metaspaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var b strings.Builder
		for _, r := range t {
			if r != d.replacement {
				b.WriteRune(r)
			} else if i != 0 || d.prepend == prependNever {
				b.WriteByte(' ')
			}
		}
		out[i] = b.String()
	}
	return out
}

// templatePiece is one element of a post-processor template: a special
// token (seq < 0) or sequence A (0) or B (1), with its token type id.
type templatePiece struct {
	special string
	seq     int
	typeID  int
}

// template is TemplateProcessing (and BertProcessing, which is the BERT
// template): how the special tokens and the sequences are laid out.
type template struct {
	single, pair []templatePiece
	specials     map[string][]int
}

// apply lays out a (and b when pair) with the template.
func (t *template) apply(a, b []int, pair bool) (ids, typeIDs []int) {
	pieces := t.single
	if pair {
		pieces = t.pair
	}
	for _, p := range pieces {
		var part []int
		switch p.seq {
		case 0:
			part = a
		case 1:
			part = b
		default:
			part = t.specials[p.special]
		}
		ids = append(ids, part...)
		for range part {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs
}

// added counts the special-token ids the template adds.
func (t *template) added(pair bool) int {
	pieces := t.single
	if pair {
		pieces = t.pair
	}
	n := 0
	for _, p := range pieces {
		if p.seq < 0 {
			n += len(t.specials[p.special])
		}
	}
	return n
}
