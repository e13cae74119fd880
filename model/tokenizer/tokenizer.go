// Package tokenizer turns text into the token ids the frozen models were
// trained on, exactly as their reference tokenizers do, since a single id off
// changes what the model sees:
//
//   - SentencePiece: the SentencePiece-style BPE of Llama-family GGUF files
//     (vocabulary, scores and token types from the GGUF metadata), encoding
//     as llama.cpp's SPM tokenizer and llama2.c do and decoding as llama2.c
//     does.
//   - HF: a Hugging Face tokenizer.json, for the two layouts kronfed's models
//     use: WordPiece with the BERT normalizer, pre-tokenizer and template
//     (BERT, DistilBERT), and byte-fallback BPE with the SentencePiece-style
//     normalizer or Metaspace pre-tokenizer (Llama, Mistral). Any component
//     outside that set is rejected by name when the file is loaded, never
//     approximated.
//
// Both satisfy Tokenizer; HF also satisfies PairEncoder, which the encoder
// (sequence-classification) tasks use for "[CLS] a [SEP] b [SEP]" inputs.
package tokenizer

import "errors"

// Tokenizer is what model and task code needs from any tokenizer.
type Tokenizer interface {
	// Encode returns the ids of text with no special tokens added around it
	// (HF add_special_tokens=False; no BOS for SentencePiece). Decoder
	// models prepend Special().BOS themselves.
	Encode(text string) []int
	// Decode turns ids back into text, leaving special tokens out.
	Decode(ids []int) string
	// VocabSize is one more than the largest token id: the number of rows
	// the model's embedding must have.
	VocabSize() int
	// TokenID looks a token up by its text, as it is written in the
	// vocabulary (e.g. "##able", "▁the", "<0x0A>", "[CLS]").
	TokenID(tok string) (int, bool)
	// Token is the vocabulary text of id, or "" for an id outside it.
	Token(id int) string
	// Special reports the ids of the special tokens; absent ones are -1.
	Special() SpecialTokens
}

// PairEncoder is the extra surface of tokenizers with a post-processor
// template (BERT-style encoders): the template's special tokens and token
// type ids, and truncation that keeps the specials.
type PairEncoder interface {
	Tokenizer
	// EncodeSingle applies the single-sequence template ("[CLS] a [SEP]").
	EncodeSingle(text string) (ids, typeIDs []int)
	// EncodePair applies the pair template ("[CLS] a [SEP] b [SEP]").
	EncodePair(a, b string) (ids, typeIDs []int)
	// EncodeSingleTruncated is EncodeSingle cut to at most maxLen ids.
	EncodeSingleTruncated(text string, maxLen int) (ids, typeIDs []int, err error)
	// EncodePairTruncated is EncodePair cut to at most maxLen ids with
	// Hugging Face's longest-first strategy.
	EncodePairTruncated(a, b string, maxLen int) (ids, typeIDs []int, err error)
}

// SpecialTokens holds the ids of the special tokens a tokenizer knows, -1
// where it has none.
type SpecialTokens struct {
	BOS, EOS, UNK, PAD int
	CLS, SEP, MASK     int
}

var (
	_ Tokenizer   = (*SentencePiece)(nil)
	_ PairEncoder = (*HF)(nil)
)

// noSpecials is SpecialTokens with every id absent.
func noSpecials() SpecialTokens {
	return SpecialTokens{BOS: -1, EOS: -1, UNK: -1, PAD: -1, CLS: -1, SEP: -1, MASK: -1}
}

// ErrTooShort is returned by the truncating encoders when maxLen cannot even
// hold the template's special tokens. (Hugging Face would underflow there.)
var ErrTooShort = errors.New("tokenizer: max length shorter than the special tokens")
