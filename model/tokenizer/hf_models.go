package tokenizer

import (
	"container/heap"
	"fmt"
	"strings"
	"unicode/utf8"
)

// hfModel is the model stage of a Hugging Face pipeline: one pre-tokenized
// word in, token ids out.
type hfModel interface {
	tokenize(word string, out []int) []int
	tokenID(tok string) (int, bool)
	token(id int) (string, bool)
	unkID() int // -1 without an unknown token
	maxID() int
}

// vocabulary is a token ↔ id table with unique tokens and ids.
type vocabulary struct {
	ids    map[string]int
	tokens map[int]string
	max    int
}

func newVocabulary(v map[string]int) (vocabulary, error) {
	voc := vocabulary{ids: v, tokens: make(map[int]string, len(v)), max: -1}
	for tok, id := range v {
		if id < 0 || id > 1<<30 {
			return voc, fmt.Errorf("tokenizer: token %q has id %d", tok, id)
		}
		if other, dup := voc.tokens[id]; dup {
			return voc, fmt.Errorf("tokenizer: id %d given to both %q and %q", id, other, tok)
		}
		voc.tokens[id] = tok
		voc.max = max(voc.max, id)
	}
	return voc, nil
}

func (v *vocabulary) tokenID(tok string) (int, bool) { id, ok := v.ids[tok]; return id, ok }
func (v *vocabulary) token(id int) (string, bool)    { tok, ok := v.tokens[id]; return tok, ok }
func (v *vocabulary) maxID() int                     { return v.max }

// wordPiece is Hugging Face's WordPiece model: greedy longest-match-first
// from the start of the word, pieces after the first carrying the
// continuing-subword prefix; a word with a part no piece matches, or longer
// than maxChars characters, is the single unknown token.
type wordPiece struct {
	vocabulary
	cont     map[string]int // pieces with the prefix, keyed without it
	unk      int
	maxChars int
}

func newWordPiece(v map[string]int, unk, prefix string, maxChars int) (*wordPiece, error) {
	voc, err := newVocabulary(v)
	if err != nil {
		return nil, err
	}
	unkID, ok := v[unk]
	if !ok {
		return nil, fmt.Errorf("tokenizer: WordPiece unk_token %q is not in the vocabulary", unk)
	}
	if maxChars <= 0 {
		return nil, fmt.Errorf("tokenizer: WordPiece max_input_chars_per_word %d", maxChars)
	}
	// Continuation pieces are looked up without their prefix, so that no
	// prefixed string has to be built per candidate.
	cont := map[string]int{}
	for tok, id := range v {
		if rest, ok := strings.CutPrefix(tok, prefix); ok {
			cont[rest] = id
		}
	}
	return &wordPiece{vocabulary: voc, cont: cont, unk: unkID, maxChars: maxChars}, nil
}

func (w *wordPiece) unkID() int { return w.unk }

func (w *wordPiece) tokenize(word string, out []int) []int {
	if utf8.RuneCountInString(word) > w.maxChars {
		return append(out, w.unk)
	}
	n := len(out)
	for start := 0; start < len(word); {
		end, id := len(word), -1
		for start < end {
			var ok bool
			if start == 0 {
				id, ok = w.ids[word[:end]]
			} else {
				id, ok = w.cont[word[start:end]]
			}
			if ok {
				break
			}
			id = -1
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if id < 0 {
			return append(out[:n], w.unk)
		}
		out = append(out, id)
		start = end
	}
	return out
}

// bpe is Hugging Face's BPE model as Llama and Mistral tokenizer.json files
// configure it: characters (or, with byte_fallback, the <0xXX> tokens of
// characters outside the vocabulary) merged by merge rank, the lowest rank
// first and the leftmost on ties.
type bpe struct {
	vocabulary
	merges       map[uint64]bpeMerge
	unk          int // -1 without unk_token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int // -1 where <0xXX> is missing
}

type bpeMerge struct {
	rank, id int
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newBPE(v map[string]int, merges [][2]string, unk string, fuseUnk, byteFallback, ignoreMerges bool) (*bpe, error) {
	voc, err := newVocabulary(v)
	if err != nil {
		return nil, err
	}
	m := &bpe{vocabulary: voc, merges: make(map[uint64]bpeMerge, len(merges)), unk: -1,
		fuseUnk: fuseUnk, byteFallback: byteFallback, ignoreMerges: ignoreMerges}
	if unk != "" {
		id, ok := v[unk]
		if !ok {
			return nil, fmt.Errorf("tokenizer: BPE unk_token %q is not in the vocabulary", unk)
		}
		m.unk = id
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := v[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	for rank, mg := range merges {
		a, okA := v[mg[0]]
		b, okB := v[mg[1]]
		c, okC := v[mg[0]+mg[1]]
		if !okA || !okB || !okC {
			return nil, fmt.Errorf("tokenizer: merge %d %q %q: a token is not in the vocabulary", rank, mg[0], mg[1])
		}
		// A repeated pair keeps its last rank, as Hugging Face's map does.
		m.merges[pairKey(a, b)] = bpeMerge{rank: rank, id: c}
	}
	return m, nil
}

func (m *bpe) unkID() int { return m.unk }

// bpeSymbol is one symbol of a word being merged, linked to its neighbours;
// n is its length in bytes, 0 once merged into its left neighbour.
type bpeSymbol struct {
	id, prev, next, n int
}

// bpeCandidate is a queued merge of the symbol at pos with its right
// neighbour.
type bpeCandidate struct {
	pos, rank, id int
}

type mergeQueue []bpeCandidate

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(bpeCandidate)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// tokenize follows Hugging Face's BPE::merge_word and Word::merge_all.
func (m *bpe) tokenize(word string, out []int) []int {
	if word == "" {
		return out
	}
	if m.ignoreMerges {
		if id, ok := m.ids[word]; ok {
			return append(out, id)
		}
	}
	syms := make([]bpeSymbol, 0, len(word))
	add := func(id, n int) {
		if k := len(syms); k > 0 {
			syms[k-1].next = k
		}
		syms = append(syms, bpeSymbol{id: id, prev: len(syms) - 1, next: -1, n: n})
	}
	unkID, unkLen := -1, 0 // a pending unknown run
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+size]
		i += size
		if id, ok := m.ids[ch]; ok {
			if unkID >= 0 {
				add(unkID, unkLen)
				unkID = -1
			}
			add(id, size)
			continue
		}
		if m.byteFallback && m.allBytes(ch) {
			// Hugging Face adds the byte tokens without first flushing a
			// pending unknown run, which therefore lands after them.
			for j := 0; j < len(ch); j++ {
				add(m.byteIDs[ch[j]], 1)
			}
			continue
		}
		if m.unk < 0 {
			continue // no unk_token: the character is dropped
		}
		switch {
		case unkID >= 0 && m.fuseUnk:
			unkLen += size
		case unkID >= 0:
			add(unkID, unkLen)
			unkID, unkLen = m.unk, size
		default:
			unkID, unkLen = m.unk, size
		}
	}
	if unkID >= 0 {
		add(unkID, unkLen)
	}

	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			q = append(q, bpeCandidate{pos: i, rank: mg.rank, id: mg.id})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(bpeCandidate)
		cur := &syms[top.pos]
		if cur.n == 0 || cur.next == -1 {
			continue
		}
		right := syms[cur.next]
		// Skip queue entries that no longer describe the pair at pos.
		if mg, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mg.id != top.id {
			continue
		}
		nextPos := cur.next
		cur.id = top.id
		cur.n += right.n
		cur.next = right.next
		syms[nextPos].n = 0
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				heap.Push(&q, bpeCandidate{pos: cur.prev, rank: mg.rank, id: mg.id})
			}
		}
		if cur.next >= 0 {
			if mg, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				heap.Push(&q, bpeCandidate{pos: top.pos, rank: mg.rank, id: mg.id})
			}
		}
	}
	for _, s := range syms {
		if s.n != 0 {
			out = append(out, s.id)
		}
	}
	return out
}

// allBytes reports whether every byte of ch has a <0xXX> token.
func (m *bpe) allBytes(ch string) bool {
	for j := 0; j < len(ch); j++ {
		if m.byteIDs[ch[j]] < 0 {
			return false
		}
	}
	return true
}
