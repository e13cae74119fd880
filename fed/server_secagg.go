package fed

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
)

// startSecAgg sets up the secure aggregation of the round st just opened;
// s.mu is held.
func (s *Server) startSecAgg(st State) error {
	p, rc, dp := s.cfg.Policy.SecAgg, s.cfg.Policy.Train, s.cfg.Policy.DP
	weights := make([]uint64, len(st.Cohort))
	maxSteps := 0
	for i, name := range st.Cohort {
		items := int64(1)
		if mb, ok := s.m.Member(name); ok {
			items = mb.Examples
		}
		if rc.MaxItems > 0 {
			items = min(items, int64(rc.MaxItems))
		}
		weights[i] = uint64(max(items, 1))
		if dp != nil {
			weights[i] = 1 // DP-FedAvg averages unweighted: each client moves the sum by ≤ C
		}
		steps := int(rc.LocalEpochs) * int((items+int64(rc.BatchSize)-1)/int64(rc.BatchSize))
		maxSteps = max(maxSteps, steps)
	}
	bound := p.Range
	if bound == 0 {
		bound = rc.LearningRate * float64(max(maxSteps, 1))
	}
	clip, clipBit := 0.0, false
	if dp != nil {
		clip, clipBit = st.Clip, dp.Adaptive
		bound = math.Min(bound, clip)
	}
	sa, err := newSecAggRound(p, st.Round, st.Cohort, weights, int(rc.Bits), secAggVectorLen(s.cur.set, clipBit),
		bound, clip, clipBit, s.cfg.Now(), s.cfg.Policy.RoundTimeout)
	if err != nil {
		return err
	}
	s.sa, s.saJob = sa, nil
	s.log.Info("secure aggregation", "round", st.Round, "setting", sa.describe(), "range", bound, "values", sa.cfg.Length,
		"masked_bytes", sa.cfg.MaskedInputBytes())
	return nil
}

// secAggLive says whether a cohort member may still send (not known down).
func (s *Server) secAggLive(name string) bool {
	mb, ok := s.m.Member(name)
	return !ok || mb.Live
}

// secAggTick closes secure-aggregation stages that are complete or past
// their deadline; s.mu is held.
func (s *Server) secAggTick() {
	sa := s.sa
	if sa == nil {
		return
	}
	now := s.cfg.Now()
	switch sa.stage {
	case saKeys, saShares:
		stage := sa.stage
		left, err := sa.advance(now, s.secAggLive)
		if err != nil {
			s.log.Warn("secure aggregation cannot continue", "round", sa.round, "stage", stage, "err", err)
			s.step(func() []Effect { return s.m.Abandon(sa.round, "secure aggregation: "+err.Error()) })
			return
		}
		if sa.stage == stage {
			return
		}
		s.log.Info("secure aggregation stage closed", "round", sa.round, "stage", stage, "missed", left)
		s.step(func() []Effect { return s.m.Exclude(now, sa.round, left) })
	case saUnmask:
		if !sa.unmaskComplete(now, s.secAggLive) {
			return
		}
		sa.stage = saDone
		s.log.Info("secure aggregation: unmask stage closed", "round", sa.round, "responses", len(sa.answered), "survivors", len(sa.uploaded))
		if job := s.saJob; job != nil {
			s.saJob = nil
			select {
			case s.aggCh <- *job:
			default:
				s.log.Error("aggregation already queued", "round", job.Round)
			}
		}
		s.handle(nil)
	}
}

// SecAgg takes one secure-aggregation step of peer and waits up to wait
// for the stage's relay (see the Coordinator service's SecAgg).
func (s *Server) SecAgg(ctx context.Context, peer Peer, req *fedpb.SecAggRequest, wait time.Duration) (*fedpb.SecAggResponse, error) {
	if err := verifyPeerSignature(peer, SecAggSigningBytes(req.Round, peer.Name, req.Stage, req.Message), req.Signature); err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "secure aggregation message of client %s: %v", peer.Name, err)
	}
	if req.Stage < fedpb.SecAggStage_SECAGG_STAGE_KEYS || req.Stage > fedpb.SecAggStage_SECAGG_STAGE_UNMASK {
		return nil, status.Errorf(codes.InvalidArgument, "unknown secure aggregation stage %d", req.Stage)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	offered := false
	for {
		s.mu.Lock()
		resp, ch, err := s.secAggStep(peer.Name, req, !offered)
		s.mu.Unlock()
		offered = true
		if err != nil || resp.Ready {
			if err != nil {
				s.log.Warn("secure aggregation message refused", "client", peer.Name, "round", req.Round, "stage", req.Stage, "err", err)
			}
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-timer.C:
			return resp, nil
		case <-ch:
		}
	}
}

// secAggStep handles req once (offer) and answers it if its stage has
// closed; s.mu is held.
func (s *Server) secAggStep(client string, req *fedpb.SecAggRequest, offer bool) (*fedpb.SecAggResponse, <-chan struct{}, error) {
	sa := s.sa
	if sa == nil || sa.round != req.Round {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "round %d has no secure aggregation in progress (current round %d)", req.Round, s.m.State().Round)
	}
	if sa.failed != nil {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "secure aggregation of round %d failed: %v", sa.round, sa.failed)
	}
	id, ok := sa.ids[client]
	if !ok {
		return nil, nil, status.Errorf(codes.PermissionDenied, "client %s is not in round %d's cohort", client, sa.round)
	}
	s.m.Seen(s.cfg.Now(), client)
	if offer {
		var ref *Refusal
		switch req.Stage {
		case fedpb.SecAggStage_SECAGG_STAGE_KEYS, fedpb.SecAggStage_SECAGG_STAGE_SHARES:
			ref = sa.offer(id, req.Stage, req.Message)
		case fedpb.SecAggStage_SECAGG_STAGE_UNMASK:
			ref = sa.unmask(id, req.Message)
		}
		if ref != nil {
			return nil, nil, refusalStatus(ref)
		}
		s.secAggTick() // the message may complete its stage
		if s.sa != sa || sa.failed != nil {
			return nil, nil, status.Errorf(codes.FailedPrecondition, "secure aggregation of round %d cannot complete", sa.round)
		}
	}
	resp := &fedpb.SecAggResponse{Round: sa.round, Stage: req.Stage}
	switch req.Stage {
	case fedpb.SecAggStage_SECAGG_STAGE_KEYS, fedpb.SecAggStage_SECAGG_STAGE_SHARES:
		if relay, closed := sa.relays[stageOf(req.Stage)]; closed {
			if relay[id] == nil {
				return nil, nil, status.Errorf(codes.FailedPrecondition, "client %s missed round %d's %s stage", client, sa.round, stageOf(req.Stage))
			}
			resp.Ready, resp.Message = true, relay[id]
		}
	case fedpb.SecAggStage_SECAGG_STAGE_UNMASK_REQUEST:
		if sa.stage >= saUnmask {
			if !sa.uploaded[id] {
				return nil, nil, status.Errorf(codes.FailedPrecondition, "client %s sent no masked input in round %d", client, sa.round)
			}
			resp.Ready, resp.Message = true, sa.request
		}
	case fedpb.SecAggStage_SECAGG_STAGE_UNMASK:
		resp.Ready = true
	}
	return resp, s.changed, nil
}

// secureSum reconstructs the survivors' sum from the secure aggregation and
// hands it to the strategy (a SumStrategy: FedAvg's weighted mean, or with
// central DP the noised sum of the clipped updates over the cohort).
func (s *Server) secureSum(job StartAggregation, base *publishedGlobal, st State, res *fedpb.RoundResult) (*aggregate.Result, error) {
	s.mu.Lock()
	sa := s.sa
	s.mu.Unlock()
	if sa == nil || sa.round != job.Round {
		return nil, fmt.Errorf("round %d has no secure aggregation state", job.Round)
	}
	sum, err := sa.srv.Result()
	if err != nil {
		return nil, fmt.Errorf("secure aggregation: %w", err)
	}
	weight, n := sa.survivorWeight()
	total, unclipped, err := decodeSecAggSum(sum, sa.setup, int(s.cfg.Policy.Train.Bits), weight, n, base.set)
	if err != nil {
		return nil, fmt.Errorf("secure aggregation: %w", err)
	}
	res.SecureAggregation, res.Survivors = sa.describe(), uint32(n)
	strategy, ok := s.strategy.(aggregate.SumStrategy)
	if !ok { // NewStrategy refuses such a policy
		return nil, fmt.Errorf("secure aggregation: %s cannot work from a sum", s.strategy)
	}
	return strategy.AggregateSum(aggregate.Sum{Base: base.set, Total: total, Weight: float64(weight), Clients: n, Unclipped: unclipped,
		Cohort: len(st.Cohort), Clip: st.Clip})
}
