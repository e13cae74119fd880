package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/task"
)

// Score is a model's verdict on one multiple-choice item.
type Score struct {
	// LogLik is each choice's score: for decoders the summed log-likelihood
	// of its continuation, for encoders the multiple-choice head's logit.
	LogLik []float64
	// Norm is LogLik divided by the continuation's length in bytes
	// (lm-evaluation-harness acc_norm); equal to LogLik for encoders.
	Norm  []float64
	Label int
	// Completion items (task.Item.Completion): how many tokens the
	// completion has, and whether greedy decoding reproduces it (every
	// token the most likely one given the ones before).
	Completion bool
	Tokens     int
	Exact      bool
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Correct reports acc: the top-scored choice is the gold one.
func (s Score) Correct() bool { return argmax(s.LogLik) == s.Label }

// CorrectNorm reports acc_norm.
func (s Score) CorrectNorm() bool { return argmax(s.Norm) == s.Label }

// Learner adapts one model family to multiple-choice training and scoring.
// A Learner is one client's: it owns the run state of its shared frozen
// model and the adapter Set it trains.
type Learner interface {
	// Set is the trainable adapter Set.
	Set() *adapter.Set
	// Step runs forward and backward on a batch in training mode (dropout
	// on), accumulating gradients into the Set, and returns the batch loss.
	Step(items []task.Item) (float64, error)
	// Score evaluates items at inference (no dropout).
	Score(items []task.Item) ([]Score, error)
	// Loss is the training objective on a batch at inference (no dropout, no
	// gradients): what Step would report without the noise.
	Loss(items []task.Item) (float64, error)
	// Close frees the learner's run state — device memory on a GPU, where
	// a simulator making a learner per client per round would otherwise
	// fill the device — but not the shared base or the Set. The learner
	// must not be used afterwards.
	Close() error
}

// DecoderLearner trains a causal LM on multiple-choice items by maximizing
// the log-likelihood of the gold continuation given its context, and scores
// choices by their continuations' log-likelihood, as lm-evaluation-harness
// does (acc and length-normalized acc_norm).
type DecoderLearner struct {
	run    decoderRun
	set    *adapter.Set
	tok    tokenizer.Tokenizer
	bos    int
	maxLen int
	drop   *adapter.Dropout
}

// NewDecoderLearner binds set to a shared decoder. rng drives adapter dropout
// (set.Config.Dropout) in training.
func NewDecoderLearner(m *model.Llama, tok tokenizer.Tokenizer, set *adapter.Set, rng *rand.Rand) (*DecoderLearner, error) {
	run, err := m.NewRun(set)
	if err != nil {
		return nil, err
	}
	return newDecoderLearner(cpuDecoderRun{run}, m.Cfg, tok, set, rng)
}

// newDecoderLearner wraps a decoder run of either engine.
func newDecoderLearner(run decoderRun, cfg *model.Config, tok tokenizer.Tokenizer, set *adapter.Set, rng *rand.Rand) (*DecoderLearner, error) {
	bos := tok.Special().BOS
	if bos < 0 {
		return nil, fmt.Errorf("decoder tokenizer has no BOS token")
	}
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("tokenizer has %d tokens, the model's vocabulary %d", tok.VocabSize(), cfg.Vocab)
	}
	return &DecoderLearner{run: run, set: set, tok: tok, bos: bos, maxLen: cfg.MaxPositions,
		drop: &adapter.Dropout{P: set.Config.Dropout, Rng: rng}}, nil
}

func (l *DecoderLearner) Set() *adapter.Set { return l.set }

func (l *DecoderLearner) Close() error {
	l.run.Free()
	return nil
}

// encodeChoice tokenizes context+continuation as lm-evaluation-harness does
// (the whole string at once, split where the context's own encoding ends, so
// word pieces straddling the boundary are not double-counted), prepends BOS
// and keeps at most maxLen tokens, dropping from the left. It returns the
// sequence and how many of its last tokens are the continuation.
func (l *DecoderLearner) encodeChoice(it *task.Item, i int) ([]int, int, error) {
	ctx := it.ContextFor(i)
	cont := it.Continuation(i)
	whole := l.tok.Encode(ctx + cont)
	ctxEnc := l.tok.Encode(ctx)
	n := len(ctxEnc)
	if n > len(whole) || !equalInts(whole[:n], ctxEnc) {
		// The context's encoding is not a prefix of the whole: split at the
		// longest common prefix instead.
		n = 0
		for n < len(ctxEnc) && n < len(whole) && whole[n] == ctxEnc[n] {
			n++
		}
	}
	contLen := len(whole) - n
	if contLen == 0 {
		return nil, 0, fmt.Errorf("item %s choice %d: empty continuation %q", it.ID, i, cont)
	}
	seq := append([]int{l.bos}, whole...)
	if contLen+1 > l.maxLen {
		return nil, 0, fmt.Errorf("item %s choice %d: continuation of %d tokens does not fit the context of %d", it.ID, i, contLen, l.maxLen)
	}
	if len(seq) > l.maxLen {
		seq = seq[len(seq)-l.maxLen:]
	}
	return seq, contLen, nil
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// batch packs sequences into a padded B×T batch with next-token targets on
// the last contLen positions of each sequence (−1 elsewhere).
func (l *DecoderLearner) batch(seqs [][]int, contLens []int) (tokens, targets []int, T int) {
	for _, s := range seqs {
		T = max(T, len(s))
	}
	B := len(seqs)
	tokens, targets = make([]int, B*T), make([]int, B*T)
	for i := range targets {
		targets[i] = -1
	}
	for b, s := range seqs {
		copy(tokens[b*T:], s)
		for p := len(s) - contLens[b]; p < len(s); p++ {
			targets[b*T+p-1] = s[p] // position p−1 predicts token p
		}
	}
	return tokens, targets, T
}

func (l *DecoderLearner) Step(items []task.Item) (float64, error) { return l.goldLoss(items, true) }

func (l *DecoderLearner) Loss(items []task.Item) (float64, error) { return l.goldLoss(items, false) }

// goldLoss is the mean negative log-likelihood of the gold continuations'
// tokens; with train it applies dropout and runs the backward pass.
func (l *DecoderLearner) goldLoss(items []task.Item, train bool) (float64, error) {
	seqs, lens := make([][]int, len(items)), make([]int, len(items))
	for i := range items {
		var err error
		if seqs[i], lens[i], err = l.encodeChoice(&items[i], items[i].Label); err != nil {
			return 0, err
		}
	}
	tokens, targets, T := l.batch(seqs, lens)
	if train {
		l.run.SetDropout(l.drop)
		defer l.run.SetDropout(nil)
	}
	if err := l.run.Forward(tokens, len(seqs), T); err != nil {
		return 0, err
	}
	loss, _, err := l.run.LossAndGrad(targets)
	if err != nil {
		return 0, err
	}
	if train {
		if err := l.run.Backward(); err != nil {
			return 0, err
		}
	}
	return loss, nil
}

func (l *DecoderLearner) Score(items []task.Item) ([]Score, error) {
	var seqs [][]int
	var lens []int
	for i := range items {
		for c := range items[i].Choices {
			s, n, err := l.encodeChoice(&items[i], c)
			if err != nil {
				return nil, err
			}
			seqs, lens = append(seqs, s), append(lens, n)
		}
	}
	tokens, targets, T := l.batch(seqs, lens)
	l.run.SetDropout(nil)
	if err := l.run.Forward(tokens, len(seqs), T); err != nil {
		return nil, err
	}
	logProbs, top, err := l.run.TargetLogProbs(targets)
	if err != nil {
		return nil, err
	}
	out := make([]Score, len(items))
	k := 0
	for i := range items {
		it := &items[i]
		sc := Score{Label: it.Label, LogLik: make([]float64, len(it.Choices)), Norm: make([]float64, len(it.Choices)),
			Completion: it.Completion, Exact: it.Completion}
		for c := range it.Choices {
			var ll float64
			for p := k * T; p < (k+1)*T; p++ {
				if targets[p] >= 0 {
					ll += float64(logProbs[p])
					sc.Tokens++
					sc.Exact = sc.Exact && top[p]
				}
			}
			sc.LogLik[c] = ll
			sc.Norm[c] = ll / float64(max(len(it.Continuation(c)), 1))
			k++
		}
		out[i] = sc
	}
	return out, nil
}

// EncoderLearner trains a BERT-family encoder's multiple-choice head and
// adapters on (context, choice) pairs with cross-entropy over the choices.
type EncoderLearner struct {
	run    encoderRun
	set    *adapter.Set
	tok    tokenizer.PairEncoder
	maxLen int
	drop   *adapter.Dropout
	base   *rand.Rand
}

// NewEncoderLearner binds set (adapters plus the head tensors of
// model.NewHead) to a shared encoder. rng drives all training-mode dropout.
// maxLen caps each (context, choice) sequence (longest-first truncation).
func NewEncoderLearner(m *model.BERT, tok tokenizer.PairEncoder, set *adapter.Set, maxLen int, rng *rand.Rand) (*EncoderLearner, error) {
	run, err := m.NewRun(set)
	if err != nil {
		return nil, err
	}
	return newEncoderLearner(cpuEncoderRun{run}, m.Cfg, tok, set, maxLen, rng)
}

// newEncoderLearner wraps an encoder run of either engine.
func newEncoderLearner(run encoderRun, cfg *model.Config, tok tokenizer.PairEncoder, set *adapter.Set, maxLen int, rng *rand.Rand) (*EncoderLearner, error) {
	if maxLen <= 0 || maxLen > cfg.MaxPositions {
		maxLen = cfg.MaxPositions
	}
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("tokenizer has %d tokens, the model's vocabulary %d", tok.VocabSize(), cfg.Vocab)
	}
	return &EncoderLearner{run: run, set: set, tok: tok, maxLen: maxLen,
		drop: &adapter.Dropout{P: set.Config.Dropout, Rng: rng}, base: rng}, nil
}

func (l *EncoderLearner) Set() *adapter.Set { return l.set }

func (l *EncoderLearner) Close() error {
	l.run.Free()
	return nil
}

// encoderFirst is the first segment of an encoder pair: the bare question
// where the task has one (ARC question, PIQA goal, HellaSwag context), else
// the choice's context.
func encoderFirst(it *task.Item, c int) string {
	if it.Contexts != nil {
		return it.Contexts[c]
	}
	if it.Query != "" {
		return it.Query
	}
	return it.Context
}

func (l *EncoderLearner) batch(items []task.Item) (model.EncoderBatch, error) {
	b := model.EncoderBatch{B: len(items)}
	type enc struct{ ids, types []int }
	var all [][]enc
	for i := range items {
		it := &items[i]
		if it.Completion {
			return b, fmt.Errorf("item %s is a prompt and its completion: completion tasks train decoders (Llama, Mistral), not encoders", it.ID)
		}
		b.C = max(b.C, len(it.Choices))
		var row []enc
		for c, ch := range it.Choices {
			ids, types, err := l.tok.EncodePairTruncated(encoderFirst(it, c), ch, l.maxLen)
			if err != nil {
				return b, fmt.Errorf("item %s choice %d: %w", it.ID, c, err)
			}
			row = append(row, enc{ids, types})
			b.T = max(b.T, len(ids))
		}
		all = append(all, row)
		b.Labels = append(b.Labels, it.Label)
		b.NumChoices = append(b.NumChoices, len(it.Choices))
	}
	n := b.B * b.C * b.T
	b.IDs, b.Types, b.Mask = make([]int, n), make([]int, n), make([]float32, n)
	pad := max(l.tok.Special().PAD, 0)
	for q, row := range all {
		for c := 0; c < b.C; c++ {
			off := (q*b.C + c) * b.T
			e := row[min(c, len(row)-1)] // a dummy copy fills missing choices; it is masked from the loss
			for t := 0; t < b.T; t++ {
				if t < len(e.ids) {
					b.IDs[off+t], b.Types[off+t], b.Mask[off+t] = e.ids[t], e.types[t], 1
				} else {
					b.IDs[off+t] = pad
				}
			}
		}
	}
	return b, nil
}

func (l *EncoderLearner) Step(items []task.Item) (float64, error) { return l.loss(items, true) }

func (l *EncoderLearner) Loss(items []task.Item) (float64, error) { return l.loss(items, false) }

// loss is the cross-entropy over choices; with train it applies every
// dropout and runs the backward pass.
func (l *EncoderLearner) loss(items []task.Item, train bool) (float64, error) {
	b, err := l.batch(items)
	if err != nil {
		return 0, err
	}
	if train {
		l.run.SetDropout(l.drop, l.base)
		defer l.run.SetDropout(nil, nil)
	}
	if err := l.run.Forward(b); err != nil {
		return 0, err
	}
	loss, err := l.run.LossAndGrad()
	if err != nil {
		return 0, err
	}
	if train {
		if err := l.run.Backward(); err != nil {
			return 0, err
		}
	}
	return loss, nil
}

func (l *EncoderLearner) Score(items []task.Item) ([]Score, error) {
	b, err := l.batch(items)
	if err != nil {
		return nil, err
	}
	l.run.SetDropout(nil, nil)
	if err := l.run.Forward(b); err != nil {
		return nil, err
	}
	logits := l.run.ChoiceLogits()
	out := make([]Score, len(items))
	for q := range items {
		nc := len(items[q].Choices)
		s := Score{Label: items[q].Label, LogLik: make([]float64, nc)}
		for c := 0; c < nc; c++ {
			s.LogLik[c] = float64(logits[q*b.C+c])
		}
		s.Norm = s.LogLik
		out[q] = s
	}
	return out, nil
}
