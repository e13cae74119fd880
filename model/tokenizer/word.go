package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
)

// WordSpecials are the special tokens of a Word tokenizer, at ids 0..3 in
// this order: unknown word, beginning and end of sequence, padding.
var WordSpecials = []string{"<unk>", "<s>", "</s>", "<pad>"}

// WordPunctuation are the punctuation tokens of a Word tokenizer, at ids
// 4.. in this order, right after WordSpecials. Each is one character and is
// always a token of its own: "question: 7?\nanswer:" is
// question : 7 ? \n answer :.
var WordPunctuation = []string{"\n", ".", ",", ":", ";", "?", "!", "'", "\"", "(", ")", "-"}

// Word is a word-level tokenizer over a fixed vocabulary: WordSpecials, then
// WordPunctuation, then the words given to NewWord in their order. Encode
// splits text at white space (which is dropped, except a newline, which is a
// token) and around every punctuation character; a piece not in the
// vocabulary becomes <unk>. It is case-sensitive and never splits a word
// further, so it suits small closed vocabularies such as the synthetic tasks'
// (task.Vocabulary), not open text.
type Word struct {
	tokens []string
	ids    map[string]int
	punct  map[rune]int
}

// Ids of the special tokens of every Word tokenizer.
const (
	WordUNK = 0
	WordBOS = 1
	WordEOS = 2
	WordPAD = 3
)

var _ Tokenizer = (*Word)(nil)

// NewWord builds a Word tokenizer whose words, after the specials and the
// punctuation, are words in the given order. A word must be non-empty,
// contain no white space or punctuation character of WordPunctuation (Encode
// could never produce it), not be a special token, and appear once.
func NewWord(words []string) (*Word, error) {
	w := &Word{ids: make(map[string]int), punct: make(map[rune]int)}
	add := func(tok string) {
		w.ids[tok] = len(w.tokens)
		w.tokens = append(w.tokens, tok)
	}
	for _, s := range WordSpecials {
		add(s)
	}
	for _, p := range WordPunctuation {
		w.punct[[]rune(p)[0]] = len(w.tokens)
		add(p)
	}
	for i, word := range words {
		switch {
		case word == "":
			return nil, fmt.Errorf("word tokenizer: word %d is empty", i)
		case strings.IndexFunc(word, func(r rune) bool { _, p := w.punct[r]; return p || unicode.IsSpace(r) }) >= 0:
			return nil, fmt.Errorf("word tokenizer: word %d (%q) contains white space or punctuation", i, word)
		}
		if j, dup := w.ids[word]; dup {
			if j < len(WordSpecials) {
				return nil, fmt.Errorf("word tokenizer: word %d (%q) is a special token", i, word)
			}
			return nil, fmt.Errorf("word tokenizer: word %d (%q) appears twice", i, word)
		}
		add(word)
	}
	return w, nil
}

// Encode returns the ids of text's words and punctuation, <unk> for a word
// outside the vocabulary. No BOS or EOS is added, and the text of a special
// token ("<s>") is an unknown word, not the special token.
func (w *Word) Encode(text string) []int {
	var out []int
	start := -1 // byte offset of the word being read, or -1
	flush := func(end int) {
		if start >= 0 {
			id, ok := w.ids[text[start:end]]
			if !ok || id < len(WordSpecials) {
				id = WordUNK
			}
			out = append(out, id)
			start = -1
		}
	}
	for i, r := range text {
		if id, ok := w.punct[r]; ok {
			flush(i)
			out = append(out, id)
			continue
		}
		if unicode.IsSpace(r) {
			flush(i)
			continue
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(text))
	return out
}

// Decode joins the tokens of ids with single spaces, leaving special tokens
// and ids outside the vocabulary out. Punctuation is written the way
// ordinary text has it: no space before . , : ; ? ! ) or after (, none
// around ' - or a newline. So Decode(Encode(s)) == s for text written that
// way with words from the vocabulary, such as every synthetic task item.
func (w *Word) Decode(ids []int) string {
	var b strings.Builder
	prev := "" // the last token written, "" at the start
	for _, id := range ids {
		if id < len(WordSpecials) || id >= len(w.tokens) {
			continue
		}
		tok := w.tokens[id]
		if prev != "" && spaceBetween(prev, tok) {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
		prev = tok
	}
	return b.String()
}

// spaceBetween says whether Decode writes a space between two tokens.
func spaceBetween(prev, next string) bool {
	switch prev {
	case "\n", "(", "'", "-":
		return false
	}
	switch next {
	case "\n", ".", ",", ":", ";", "?", "!", ")", "'", "-":
		return false
	}
	return true
}

// VocabSize is the number of tokens: specials, punctuation and words.
func (w *Word) VocabSize() int { return len(w.tokens) }

// Words returns the words given to NewWord, in their order (the vocabulary
// after the specials and the punctuation).
func (w *Word) Words() []string {
	n := len(WordSpecials) + len(WordPunctuation)
	return append([]string(nil), w.tokens[n:]...)
}

// TokenID looks a token up by its text ("<s>", "?", "apple").
func (w *Word) TokenID(tok string) (int, bool) {
	id, ok := w.ids[tok]
	return id, ok
}

// Token is the text of id, or "" outside the vocabulary.
func (w *Word) Token(id int) string {
	if id < 0 || id >= len(w.tokens) {
		return ""
	}
	return w.tokens[id]
}

// Special reports <s>, </s>, <unk> and <pad>; a Word tokenizer has no
// CLS, SEP or MASK.
func (w *Word) Special() SpecialTokens {
	sp := noSpecials()
	sp.UNK, sp.BOS, sp.EOS, sp.PAD = WordUNK, WordBOS, WordEOS, WordPAD
	return sp
}
