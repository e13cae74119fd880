package tokenizer

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
)

// Token types, as GGUF's tokenizer.ggml.token_type and llama.cpp number them.
const (
	TypeUndefined   = 0
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3
	TypeUserDefined = 4
	TypeUnused      = 5
	TypeByte        = 6
)

// spaceMark is SentencePiece's visible space, U+2581 "▁", which stands for ' '
// inside pieces.
const spaceMark = "\u2581"

// SentencePieceOptions are the GGUF tokenizer settings NewSentencePiece needs
// besides the vocabulary itself.
type SentencePieceOptions struct {
	// BOS, EOS, UNK and PAD are token ids, or -1 where the vocabulary has
	// none (GGUF tokenizer.ggml.bos_token_id and so on).
	BOS, EOS, UNK, PAD int
	// ByteFallback says the vocabulary holds the 256 byte tokens <0x00> …
	// <0xFF>, which characters missing from it are spelled with. Without it,
	// such characters become UNK.
	ByteFallback bool
	// NoSpacePrefix turns off SentencePiece's add_dummy_prefix, the "▁" put
	// in front of the text (GGUF tokenizer.ggml.add_space_prefix = false).
	NoSpacePrefix bool
}

// SentencePiece is the BPE tokenizer of SentencePiece-trained Llama-family
// vocabularies as llama.cpp runs it from a GGUF file: the text, with ' ' made
// "▁" and a "▁" put in front, starts as one symbol per UTF-8 character;
// the adjacent pair whose concatenation is a token with the highest score is
// merged until no pair is a token; symbols that are not tokens are spelled in
// byte tokens. Safe for concurrent use.
type SentencePiece struct {
	tokens      []string
	scores      []float32
	types       []int32
	ids         map[string]int
	byteID      [256]int // -1 without byte fallback
	byteOf      []int16  // the byte of each TypeByte token, -1 for others
	userDefined []int    // TypeUserDefined ids, longest text first
	opts        SentencePieceOptions
}

// NewSentencePiece builds the tokenizer from GGUF's tokenizer.ggml.tokens,
// .scores and .token_type. types may be nil: the tokens are then taken as
// normal except BOS/EOS/PAD (control), UNK (unknown) and, with byte fallback,
// the byte tokens.
func NewSentencePiece(tokens []string, scores []float32, types []int32, opts SentencePieceOptions) (*SentencePiece, error) {
	n := len(tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty SentencePiece vocabulary")
	}
	if len(scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(scores), n)
	}
	if types != nil && len(types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(types), n)
	}
	for name, id := range map[string]int{"BOS": opts.BOS, "EOS": opts.EOS, "UNK": opts.UNK, "PAD": opts.PAD} {
		if id < -1 || id >= n {
			return nil, fmt.Errorf("tokenizer: %s id %d outside the %d-token vocabulary", name, id, n)
		}
	}
	// Copies, so that the caller's slices may be reused.
	tokens = append([]string(nil), tokens...)
	scores = append([]float32(nil), scores...)
	s := &SentencePiece{
		tokens: tokens,
		scores: scores,
		ids:    make(map[string]int, n),
		byteOf: make([]int16, n),
		opts:   opts,
	}
	for id, tok := range tokens {
		if prev, dup := s.ids[tok]; dup {
			return nil, fmt.Errorf("tokenizer: token %q appears twice (ids %d and %d)", tok, prev, id)
		}
		s.ids[tok] = id
		s.byteOf[id] = -1
	}
	for b := range s.byteID {
		s.byteID[b] = -1
		if !opts.ByteFallback {
			continue
		}
		tok := fmt.Sprintf("<0x%02X>", b)
		id, ok := s.ids[tok]
		if !ok {
			return nil, fmt.Errorf("tokenizer: byte fallback claimed but byte token %s is missing", tok)
		}
		s.byteID[b] = id
	}
	if !opts.ByteFallback && opts.UNK < 0 {
		return nil, fmt.Errorf("tokenizer: SentencePiece vocabulary with neither byte fallback nor an unknown token")
	}

	if types != nil {
		types = append([]int32(nil), types...)
	} else {
		types = make([]int32, n)
		for id := range types {
			types[id] = TypeNormal
		}
		for _, id := range []int{opts.BOS, opts.EOS, opts.PAD} {
			if id >= 0 {
				types[id] = TypeControl
			}
		}
		if opts.UNK >= 0 {
			types[opts.UNK] = TypeUnknown
		}
		if opts.ByteFallback {
			for _, id := range s.byteID {
				types[id] = TypeByte
			}
		}
	}
	s.types = types
	for id, t := range types {
		switch t {
		case TypeByte:
			b, ok := parseByteToken(tokens[id])
			if !ok {
				return nil, fmt.Errorf("tokenizer: token %d %q has the byte type but is not <0xXX>", id, tokens[id])
			}
			s.byteOf[id] = int16(b)
		case TypeUserDefined:
			s.userDefined = append(s.userDefined, id)
		case TypeUndefined, TypeNormal, TypeUnknown, TypeControl, TypeUnused:
		default:
			return nil, fmt.Errorf("tokenizer: token %d %q has unknown type %d", id, tokens[id], t)
		}
	}
	// llama.cpp splits user-defined tokens out of the text longest first.
	sort.SliceStable(s.userDefined, func(i, j int) bool {
		return len(tokens[s.userDefined[i]]) > len(tokens[s.userDefined[j]])
	})
	return s, nil
}

// parseByteToken reads the byte of a "<0xXX>" token.
func parseByteToken(tok string) (byte, bool) {
	if len(tok) != 6 || tok[:3] != "<0x" || tok[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(tok[3])
	lo, ok2 := hexDigit(tok[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// VocabSize is the number of tokens.
func (s *SentencePiece) VocabSize() int { return len(s.tokens) }

// Token is the text of token id, or "" outside the vocabulary.
func (s *SentencePiece) Token(id int) string {
	if id < 0 || id >= len(s.tokens) {
		return ""
	}
	return s.tokens[id]
}

// Score is the merge score of token id (0 outside the vocabulary).
func (s *SentencePiece) Score(id int) float32 {
	if id < 0 || id >= len(s.scores) {
		return 0
	}
	return s.scores[id]
}

// TokenID looks a token up by its text.
func (s *SentencePiece) TokenID(tok string) (int, bool) {
	id, ok := s.ids[tok]
	return id, ok
}

// Special reports BOS, EOS, UNK and PAD; SentencePiece has no CLS/SEP/MASK.
func (s *SentencePiece) Special() SpecialTokens {
	sp := noSpecials()
	sp.BOS, sp.EOS, sp.UNK, sp.PAD = s.opts.BOS, s.opts.EOS, s.opts.UNK, s.opts.PAD
	return sp
}

// Encode tokenizes text without BOS or EOS.
func (s *SentencePiece) Encode(text string) []int {
	return s.EncodeSpecial(text, false, false)
}

// EncodeSpecial tokenizes text, with BOS in front and EOS behind if asked (and
// the vocabulary has them). Like llama.cpp with parse_special off, control
// tokens written in the text ("<s>") are plain text, while user-defined
// tokens are matched as whole tokens first. Empty text gives no tokens but
// the requested BOS/EOS.
func (s *SentencePiece) EncodeSpecial(text string, addBOS, addEOS bool) []int {
	out := make([]int, 0, len(text)/3+2)
	if addBOS && s.opts.BOS >= 0 {
		out = append(out, s.opts.BOS)
	}
	// Like llama.cpp, the space prefix goes in front of the text and after
	// every user-defined token.
	prevSpecial := true
	for _, f := range s.partition(text) {
		if f.id >= 0 {
			out = append(out, f.id)
			prevSpecial = true
			continue
		}
		raw := f.text
		if !s.opts.NoSpacePrefix && prevSpecial {
			raw = " " + raw
		}
		out = s.tokenize(strings.ReplaceAll(raw, " ", spaceMark), out)
		prevSpecial = false
	}
	if addEOS && s.opts.EOS >= 0 {
		out = append(out, s.opts.EOS)
	}
	return out
}

// fragment is a piece of the input: raw text (id < 0) or a user-defined token.
type fragment struct {
	text string
	id   int
}

// partition splits text around the user-defined tokens as llama.cpp's
// tokenizer_st_partition does: token by token, longest first, every
// non-overlapping occurrence in every remaining text fragment, left to right.
func (s *SentencePiece) partition(text string) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{text: text, id: -1}}
	for _, id := range s.userDefined {
		tok := s.tokens[id]
		if tok == "" {
			continue
		}
		var next []fragment
		for _, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, tok) {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				i := strings.Index(rest, tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{text: rest[:i], id: -1})
				}
				next = append(next, fragment{id: id})
				rest = rest[i+len(tok):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, id: -1})
			}
		}
		frags = next
	}
	return frags
}

// spmSymbol is a run of the text, linked to its neighbours.
type spmSymbol struct {
	start, n   int
	prev, next int
}

// spmBigram is a candidate merge of symbols left and right (adjacent when
// queued), whose concatenation is size bytes long and scores score.
type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// bigramQueue pops the highest score first and, on ties, the leftmost pair,
// as llama.cpp's llm_bigram_spm comparator does.
type bigramQueue []spmBigram

func (q bigramQueue) Len() int { return len(q) }
func (q bigramQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q bigramQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bigramQueue) Push(x any)   { *q = append(*q, x.(spmBigram)) }
func (q *bigramQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// tokenize appends the tokens of text (already with "▁" for spaces) to out:
// llama.cpp's llm_tokenizer_spm::tokenize.
func (s *SentencePiece) tokenize(text string, out []int) []int {
	if text == "" {
		return out
	}
	// One symbol per UTF-8 character, its length read from the lead byte
	// alone as llama.cpp's unicode_len_utf8 does, so invalid input splits
	// exactly as there.
	syms := make([]spmSymbol, 0, len(text))
	for off := 0; off < len(text); {
		n := min(utf8LenFromLead(text[off]), len(text)-off)
		i := len(syms)
		next := i + 1
		if off+n == len(text) {
			next = -1
		}
		syms = append(syms, spmSymbol{start: off, n: n, prev: i - 1, next: next})
		off += n
	}

	q := make(bigramQueue, 0, len(syms))
	tryAdd := func(left, right int) {
		if left < 0 || right < 0 {
			return
		}
		a, b := syms[left], syms[right]
		id, ok := s.ids[text[a.start:a.start+a.n+b.n]]
		if !ok {
			return
		}
		heap.Push(&q, spmBigram{left: left, right: right, score: s.scores[id], size: a.n + b.n})
	}
	for i := 1; i < len(syms); i++ {
		tryAdd(i-1, i)
	}
	for q.Len() > 0 {
		bg := heap.Pop(&q).(spmBigram)
		l, r := &syms[bg.left], &syms[bg.right]
		// A queued pair is stale once either side was merged away or grew.
		if l.n == 0 || r.n == 0 || l.n+r.n != bg.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = bg.left
		}
		tryAdd(l.prev, bg.left)
		tryAdd(bg.left, l.next)
	}

	for i := 0; i != -1; i = syms[i].next {
		sym := syms[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := s.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		// Every merged symbol is a token, so this is a single character
		// missing from the vocabulary.
		if s.opts.ByteFallback {
			for j := 0; j < len(piece); j++ {
				out = append(out, s.byteID[piece[j]])
			}
		} else {
			out = append(out, s.opts.UNK)
		}
	}
	return out
}

// utf8LenFromLead is the sequence length a UTF-8 lead byte announces, 1 for
// continuation bytes: llama.cpp's unicode_len_utf8.
func utf8LenFromLead(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// Decode turns ids into text: "▁" becomes ' ', byte tokens become their
// bytes, control and unused tokens vanish, and the leading space the dummy
// prefix added is dropped from the first piece (and from the piece after a
// BOS, as llama2.c does). Ids outside the vocabulary are skipped.
// Decode(Encode(x)) == x for valid UTF-8 x without "▁" (U+2581) in it.
func (s *SentencePiece) Decode(ids []int) string {
	var b strings.Builder
	prev := -1
	for _, id := range ids {
		b.WriteString(s.DecodeToken(prev, id))
		prev = id
	}
	return b.String()
}

// DecodeToken is the text of id when it follows prev, for printing tokens as
// they are generated; prev is -1 at the start of the text. Byte tokens give
// single bytes, so a character spelled in bytes only becomes valid UTF-8 once
// all of its pieces are concatenated. Concatenating DecodeToken over a
// sequence gives Decode of it.
func (s *SentencePiece) DecodeToken(prev, id int) string {
	if id < 0 || id >= len(s.tokens) {
		return ""
	}
	switch s.types[id] {
	case TypeControl, TypeUnused, TypeUndefined:
		// llama.cpp's token_to_piece prints none of these.
		return ""
	case TypeByte:
		return string([]byte{byte(s.byteOf[id])})
	case TypeUnknown, TypeUserDefined:
		return s.tokens[id]
	}
	piece := s.tokens[id]
	if !s.opts.NoSpacePrefix && (prev < 0 || prev == s.opts.BOS) {
		piece = strings.TrimPrefix(piece, spaceMark)
	}
	return strings.ReplaceAll(piece, spaceMark, " ")
}
