package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/kronfed/kronfed/adapter"
)

// Generator decodes one token at a time with a key/value cache: each step
// costs one token's worth of the model instead of re-running the prefix.
// It is inference only (no dropout, no activations kept for backward).
type Generator struct {
	m      *Llama
	lin    []*AdaptedLinear
	kc, vc [][]float32 // per layer: MaxPositions×(KV·hd)
	pos    int

	x, xn, q, k, v, ao, o, g, u, h, att, logits []float32
	rstd                                        []float32
}

// NewGenerator starts an empty sequence on the decoder with optional
// adapters.
func (m *Llama) NewGenerator(set *adapter.Set) (*Generator, error) {
	lin, err := bindAdapters(m.Cfg, m.linears(), set)
	if err != nil {
		return nil, err
	}
	c := m.Cfg
	kw := c.KVHeads * c.HeadDim
	g := &Generator{m: m, lin: lin}
	for range m.Blocks {
		g.kc = append(g.kc, make([]float32, c.MaxPositions*kw))
		g.vc = append(g.vc, make([]float32, c.MaxPositions*kw))
	}
	d, f, qw := c.Hidden, c.Intermediate, c.Heads*c.HeadDim
	g.x, g.xn, g.o = make([]float32, d), make([]float32, d), make([]float32, d)
	g.q, g.ao = make([]float32, qw), make([]float32, qw)
	g.k, g.v = make([]float32, kw), make([]float32, kw)
	g.g, g.u, g.h = make([]float32, f), make([]float32, f), make([]float32, f)
	g.att, g.rstd = make([]float32, c.MaxPositions), make([]float32, 1)
	g.logits = make([]float32, c.Vocab)
	return g, nil
}

// Pos is the number of tokens consumed so far.
func (g *Generator) Pos() int { return g.pos }

// Next consumes token at the next position and returns the logits for the
// position after it (valid until the next call).
func (g *Generator) Next(token int) ([]float32, error) {
	c := g.m.Cfg
	if token < 0 || token >= c.Vocab {
		return nil, fmt.Errorf("generate: token %d outside the vocabulary of %d", token, c.Vocab)
	}
	if g.pos >= c.MaxPositions {
		return nil, fmt.Errorf("generate: the context of %d tokens is full", c.MaxPositions)
	}
	d, hd := c.Hidden, c.HeadDim
	kw := c.KVHeads * hd
	eps := float32(c.RMSNormEps)
	copy(g.x, g.m.Embed[token*d:(token+1)*d])
	pos := []int{g.pos}
	scale := float32(1 / math.Sqrt(float64(hd)))
	group := c.Heads / c.KVHeads
	first := 0
	if c.SlidingWindow > 0 {
		first = max(0, g.pos-c.SlidingWindow+1)
	}
	for l := range g.m.Blocks {
		w := &g.m.Blocks[l]
		lin := g.lin[l*DecoderLinears : (l+1)*DecoderLinears]
		rmsnormForward(g.xn, g.rstd, g.x, w.AttnNorm, 1, d, eps)
		lin[DecQ].Forward(g.xn, 1, g.q, nil)
		lin[DecK].Forward(g.xn, 1, g.k, nil)
		lin[DecV].Forward(g.xn, 1, g.v, nil)
		ropeApply(g.q, pos, c.Heads, hd, g.m.Rope, g.m.cos, g.m.sin, 1)
		ropeApply(g.k, pos, c.KVHeads, hd, g.m.Rope, g.m.cos, g.m.sin, 1)
		copy(g.kc[l][g.pos*kw:], g.k)
		copy(g.vc[l][g.pos*kw:], g.v)
		for h := 0; h < c.Heads; h++ {
			kvh := h / group
			qh := g.q[h*hd : (h+1)*hd]
			att := g.att[first : g.pos+1]
			maxv := float32(math.Inf(-1))
			for j := range att {
				kj := g.kc[l][(first+j)*kw+kvh*hd : (first+j)*kw+(kvh+1)*hd]
				var s float32
				for i, qv := range qh {
					s += qv * kj[i]
				}
				att[j] = s * scale
				maxv = max(maxv, att[j])
			}
			var sum float32
			for j := range att {
				att[j] = float32(math.Exp(float64(att[j] - maxv)))
				sum += att[j]
			}
			out := g.ao[h*hd : (h+1)*hd]
			clear(out)
			for j, a := range att {
				vj := g.vc[l][(first+j)*kw+kvh*hd : (first+j)*kw+(kvh+1)*hd]
				for i := range out {
					out[i] += a / sum * vj[i]
				}
			}
		}
		lin[DecO].Forward(g.ao, 1, g.o, nil)
		for i := range g.x {
			g.x[i] += g.o[i]
		}
		rmsnormForward(g.xn, g.rstd, g.x, w.FFNNorm, 1, d, eps)
		lin[DecGate].Forward(g.xn, 1, g.g, nil)
		lin[DecUp].Forward(g.xn, 1, g.u, nil)
		swigluForward(g.h, g.g, g.u)
		lin[DecDown].Forward(g.h, 1, g.o, nil)
		for i := range g.x {
			g.x[i] += g.o[i]
		}
	}
	rmsnormForward(g.xn, g.rstd, g.x, g.m.Norm, 1, d, eps)
	g.lin[len(g.lin)-1].Forward(g.xn, 1, g.logits, nil)
	g.pos++
	return g.logits, nil
}

// Sample picks a token from logits: the argmax at temperature 0 (ties to the
// lowest id, as llama2.c), else a draw from softmax(logits/temperature).
func Sample(logits []float32, temperature float64, rng *rand.Rand) int {
	if temperature <= 0 || rng == nil {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	maxv := float32(math.Inf(-1))
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	probs := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		probs[i] = math.Exp(float64(v-maxv) / temperature)
		sum += probs[i]
	}
	r := rng.Float64() * sum
	for i, p := range probs {
		r -= p
		if r < 0 {
			return i
		}
	}
	return len(logits) - 1
}

// Generate continues prompt with up to maxTokens tokens, as llama2.c's run
// does: the prompt is encoded with BOS in front (just BOS when empty), the
// model samples (argmax at temperature 0) until maxTokens tokens are out or it
// emits BOS or EOS, and each token's text goes to emit as it is produced
// (decoded as llama2.c decodes: no leading space right after BOS, byte tokens
// as raw bytes). It returns the whole generated text.
func (m *Model) Generate(prompt string, maxTokens int, temperature float64, rng *rand.Rand, set *adapter.Set, emit func(string)) (string, error) {
	if m.Llama == nil {
		return "", fmt.Errorf("generate: %s is an encoder; only decoders generate text", m.Name)
	}
	// SentencePiece decodes token by token as llama2.c does; other tokenizers
	// decode the growing output whole and emit what is new.
	var generated []int
	decodeNext := func(prev, next int) string {
		generated = append(generated, next)
		before := m.Tok.Decode(generated[:len(generated)-1])
		return strings.TrimPrefix(m.Tok.Decode(generated), before)
	}
	if sp, ok := m.Tok.(interface{ DecodeToken(prev, id int) string }); ok {
		decodeNext = sp.DecodeToken
	}
	special := m.Tok.Special()
	if special.BOS < 0 {
		return "", fmt.Errorf("generate: the tokenizer has no BOS token")
	}
	promptIDs := append([]int{special.BOS}, m.Tok.Encode(prompt)...)
	if prompt == "" {
		promptIDs = promptIDs[:1]
	}
	if len(promptIDs) >= m.Cfg.MaxPositions {
		return "", fmt.Errorf("generate: prompt of %d tokens fills the context of %d", len(promptIDs), m.Cfg.MaxPositions)
	}
	g, err := m.Llama.NewGenerator(set)
	if err != nil {
		return "", err
	}
	var out []byte
	token := promptIDs[0]
	for produced := 0; produced < maxTokens && g.Pos() < m.Cfg.MaxPositions; {
		logits, err := g.Next(token)
		if err != nil {
			return string(out), err
		}
		var next int
		if g.Pos() < len(promptIDs) {
			next = promptIDs[g.Pos()] // still reading the prompt
		} else {
			next = Sample(logits, temperature, rng)
			produced++
			if next == special.BOS || next == special.EOS {
				break
			}
		}
		// Like llama2.c, print the prompt's own tokens as they are read too.
		piece := decodeNext(token, next)
		out = append(out, piece...)
		if emit != nil {
			emit(piece)
		}
		token = next
	}
	return string(out), nil
}
