package fed

import (
	"context"
	"crypto/rand"
	"encoding"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/secure/secagg"
)

// clientSecAgg is a client's side of one secure-aggregation round. Its
// messages are kept so that a retried call sends the very same bytes.
type clientSecAgg struct {
	round  uint64
	setup  *fedpb.SecAggSetup
	cfg    secagg.Config
	id     uint32
	c      *secagg.Client
	keys   []byte              // AdvertiseKeys sent
	shares []byte              // ShareKeys sent (after the key bundle came)
	bundle *secagg.ShareBundle // shares addressed to this client
	unmask []byte              // UnmaskResponse sent
}

// startSecAgg checks a round's secure-aggregation setup against what this
// client holds and prepares its side.
func (c *Client) startSecAgg(a *fedpb.RoundAssignment) (*clientSecAgg, error) {
	s := a.Secagg
	var cfg secagg.Config
	if err := cfg.UnmarshalBinary(s.Config); err != nil {
		return nil, fmt.Errorf("round %d secure aggregation config: %w", a.Round, err)
	}
	i := slices.Index(s.Cohort, c.cfg.Name)
	switch {
	case cfg.Round != a.Round:
		return nil, fmt.Errorf("round %d secure aggregation config names round %d", a.Round, cfg.Round)
	case cfg.N != len(s.Cohort) || len(s.Weights) != len(s.Cohort):
		return nil, fmt.Errorf("round %d secure aggregation: %d clients, %d names, %d weights", a.Round, cfg.N, len(s.Cohort), len(s.Weights))
	case i < 0:
		return nil, fmt.Errorf("round %d secure aggregation: %s is not in the cohort", a.Round, c.cfg.Name)
	case cfg.Bits != int(a.Config.GetBits()):
		return nil, fmt.Errorf("round %d secure aggregation: %d value bits, the round uploads %d", a.Round, cfg.Bits, a.Config.GetBits())
	case cfg.Length != secAggVectorLen(c.global, s.ClipBit):
		return nil, fmt.Errorf("round %d secure aggregation: vectors of %d values, this adapter has %d", a.Round, cfg.Length, secAggVectorLen(c.global, s.ClipBit))
	case !(s.Range > 0) || math.IsInf(s.Range, 0) || s.Clip < 0 || math.IsNaN(s.Clip) || math.IsInf(s.Clip, 0) || (s.ClipBit && s.Clip == 0):
		return nil, fmt.Errorf("round %d secure aggregation: range %v, clip %v", a.Round, s.Range, s.Clip)
	}
	sc, err := secagg.NewClient(cfg, uint32(i+1), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("round %d secure aggregation: %w", a.Round, err)
	}
	return &clientSecAgg{round: a.Round, setup: s, cfg: sc.Config(), id: uint32(i + 1), c: sc}, nil
}

// exchange sends msg for stage until the coordinator answers with the
// stage's relay (long polls of PollWait each).
func (c *Client) exchange(ctx context.Context, round uint64, stage fedpb.SecAggStage, msg []byte) ([]byte, error) {
	sig, err := secure.SignWithKey(c.cfg.Key, SecAggSigningBytes(round, c.cfg.Name, stage, msg))
	if err != nil {
		return nil, err
	}
	req := &fedpb.SecAggRequest{Round: round, Stage: stage, Message: msg, Signature: sig, WaitMs: uint32(c.cfg.PollWait.Milliseconds())}
	for {
		resp, err := c.cfg.Conn.SecAgg(ctx, req)
		if err != nil {
			return nil, err
		}
		if resp.Ready {
			return resp.Message, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

func marshal(m encoding.BinaryMarshaler, dst *[]byte) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode %T: %w", m, err)
	}
	*dst = b
	return nil
}

// keying runs the key and share stages of a round.
func (c *Client) keying(ctx context.Context, a *fedpb.RoundAssignment) ClientEvent {
	if c.sa == nil || c.sa.round != a.Round {
		sa, err := c.startSecAgg(a)
		if err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
		ak, err := sa.c.AdvertiseKeys()
		if err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
		if err := marshal(ak, &sa.keys); err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
		c.sa = sa
	}
	sa := c.sa
	if sa.shares == nil {
		b, err := c.exchange(ctx, a.Round, fedpb.SecAggStage_SECAGG_STAGE_KEYS, sa.keys)
		if err != nil {
			return c.failed(ClientKeying, err)
		}
		var kb secagg.KeyBundle
		if err := kb.UnmarshalBinary(b); err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d key bundle: %w", a.Round, err)}
		}
		sk, err := sa.c.ShareKeys(&kb)
		if err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d share keys: %w", a.Round, err)}
		}
		if err := marshal(sk, &sa.shares); err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
	}
	if sa.bundle == nil {
		b, err := c.exchange(ctx, a.Round, fedpb.SecAggStage_SECAGG_STAGE_SHARES, sa.shares)
		if err != nil {
			return c.failed(ClientKeying, err)
		}
		var sb secagg.ShareBundle
		if err := sb.UnmarshalBinary(b); err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d share bundle: %w", a.Round, err)}
		}
		sa.bundle = &sb
	}
	c.log.Info("secure aggregation keys exchanged", "round", a.Round, "id", sa.id, "neighbours", sa.cfg.Neighbours)
	return Keyed{}
}

// maskedUpdate is the secure-aggregation payload of a trained round: the
// update delta (local − global; clipped here, in place, to the round's L2
// norm under DP), every coordinate clipped to ±range, encoded on the common
// grid with the client's weight, and masked. It returns the payload and how
// many coordinates the range clipped.
func (c *Client) maskedUpdate(delta *adapter.Set, rng *mrand.Rand) ([]byte, int, error) {
	sa := c.sa
	s := sa.setup
	unclipped := true
	if s.Clip > 0 {
		if err := delta.CheckFinite(); err != nil {
			return nil, 0, fmt.Errorf("update: %w", err)
		}
		_, clipped := aggregate.ClipUpdate(delta, s.Clip)
		unclipped = !clipped
	}
	x := make([]float32, 0, sa.cfg.Length)
	r := float32(s.Range)
	if float64(r) > s.Range { // float32 rounding must not leave the grid
		r = math.Nextafter32(r, 0)
	}
	cut := 0
	for _, p := range delta.Params() {
		for _, v := range p.Data {
			if v != v {
				return nil, 0, errors.New("update has a NaN")
			}
			if v > r || v < -r {
				v = max(-r, min(r, v))
				cut++
			}
			x = append(x, v)
		}
	}
	if s.ClipBit {
		bit := -r
		if unclipped {
			bit = r
		}
		x = append(x, bit)
	}
	q, err := secagg.Encode(x, s.Range, sa.cfg.Bits, s.Weights[sa.id-1], rng)
	if err != nil {
		return nil, 0, err
	}
	mi, err := sa.c.MaskedInput(sa.bundle, q)
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	if err := marshal(mi, &out); err != nil {
		return nil, 0, err
	}
	return out, cut, nil
}

// unmasking answers the coordinator's unmask request.
func (c *Client) unmasking(ctx context.Context, a *fedpb.RoundAssignment) ClientEvent {
	sa := c.sa
	if sa == nil || sa.round != a.Round {
		return Failed{Class: SkipRound, Err: fmt.Errorf("round %d: no secure aggregation state to unmask", a.Round)}
	}
	if sa.unmask == nil {
		b, err := c.exchange(ctx, a.Round, fedpb.SecAggStage_SECAGG_STAGE_UNMASK_REQUEST, nil)
		if err != nil {
			return c.failed(ClientUnmasking, err)
		}
		var req secagg.UnmaskRequest
		if err := req.UnmarshalBinary(b); err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d unmask request: %w", a.Round, err)}
		}
		resp, err := sa.c.Unmask(&req)
		if err != nil {
			// secagg.ErrRefused: a request that contradicts what this
			// client saw (both secrets of one neighbour) is never answered.
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d unmask: %w", a.Round, err)}
		}
		if err := marshal(resp, &sa.unmask); err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
	}
	if _, err := c.exchange(ctx, a.Round, fedpb.SecAggStage_SECAGG_STAGE_UNMASK, sa.unmask); err != nil {
		return c.failed(ClientUnmasking, err)
	}
	c.log.Info("secure aggregation: shares revealed", "round", a.Round)
	c.sa = nil
	return Unmasked{}
}
