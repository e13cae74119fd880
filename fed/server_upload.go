package fed

// The coordinator's upload path: receive, verify the signature, decrypt,
// decode the client's update Δ, check it against the round, and accept it
// durably (the receipt and the machine's new state in one transaction).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/age"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

// refusalStatus is a refusal as the gRPC status both transports carry.
func refusalStatus(r *Refusal) error {
	code := map[RefusalKind]codes.Code{
		RefuseInvalid: codes.InvalidArgument, RefuseDenied: codes.PermissionDenied, RefuseUnauthenticated: codes.Unauthenticated,
		RefuseNotNow: codes.FailedPrecondition, RefuseDuplicate: codes.AlreadyExists, RefuseLate: codes.DeadlineExceeded,
		RefuseAborted: codes.Aborted, RefuseInternal: codes.Internal, RefuseExhausted: codes.ResourceExhausted,
	}[r.Kind]
	st := status.New(code, r.Msg)
	// The reason travels as ErrorInfo too, so a client can act on it (an
	// undecryptable upload means its bundle is wrong) without parsing text.
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: r.Reason, Domain: RefusalDomain}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// ReasonTooLarge: an upload larger than the coordinator accepts. Unlike the
// other ResourceExhausted refusals (in flight, busy), retrying cannot help.
const ReasonTooLarge = "too_large"

// exhausted is a ResourceExhausted refusal carrying reason as ErrorInfo.
func exhausted(reason, format string, args ...any) error {
	return refusalStatus(refuse(RefuseExhausted, reason, format, args...))
}

// RefusalDomain is the ErrorInfo domain of a coordinator's refusals.
const RefusalDomain = "kronfed.fed"

// refusalReason is the reason a coordinator gave for refusing a call ("" for
// any other error).
func refusalReason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == RefusalDomain {
			return info.Reason
		}
	}
	return ""
}

// AdmitUpload checks an upload by its header, before its body is read: the
// announced size, the round, the cohort and the header's own fields
// (CheckUpload), and its signature. A client has one upload in flight at a
// time, and all of them together at most MaxInFlightBytes: beyond that the
// caller is told ResourceExhausted and retries later. So a flood of uploads
// from an enrolled client costs the coordinator a header each, not a body.
// release ends the admission (after Upload).
func (s *Server) AdmitUpload(peer Peer, h *fedpb.UploadHeader) (release func(), err error) {
	if h == nil {
		return nil, status.Error(codes.InvalidArgument, "upload has no header")
	}
	size := int64(h.Size)
	if h.Size > uint64(s.cfg.MaxUploadBytes) {
		s.met.Uploads.WithLabelValues("refused", ReasonTooLarge).Inc()
		return nil, exhausted(ReasonTooLarge, "upload of %d bytes exceeds the limit of %d bytes", h.Size, s.cfg.MaxUploadBytes)
	}
	s.mu.Lock()
	_, ref := s.m.CheckUpload(s.cfg.Now(), peer.Name, h)
	s.mu.Unlock()
	if ref == nil {
		if err := verifyPeerSignature(peer, UploadSigningBytes(h), h.Signature); err != nil {
			ref = refuse(RefuseUnauthenticated, "bad_signature", "upload signature of client %s: %v", peer.Name, err)
		}
	}
	if ref != nil {
		s.met.Uploads.WithLabelValues("refused", ref.Reason).Inc()
		return nil, refusalStatus(ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.inflight[peer.Name]; busy {
		s.met.Uploads.WithLabelValues("refused", "in_flight").Inc()
		return nil, exhausted("in_flight", "client %s already has an upload in flight: one at a time", peer.Name)
	}
	if s.inflightBytes+size > s.cfg.MaxInFlightBytes {
		s.met.Uploads.WithLabelValues("refused", "busy").Inc()
		return nil, exhausted("busy", "the coordinator is receiving %d bytes of uploads (limit %d): retry shortly", s.inflightBytes, s.cfg.MaxInFlightBytes)
	}
	s.inflight[peer.Name] = size
	s.inflightBytes += size
	s.inflightMax = max(s.inflightMax, s.inflightBytes)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.inflight, peer.Name)
			s.inflightBytes -= size
			s.mu.Unlock()
		})
	}, nil
}

// InFlight is the upload bytes admitted and not yet finished, and their
// high-water mark since the coordinator started.
func (s *Server) InFlight() (now, peak int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflightBytes, s.inflightMax
}

// Upload verifies, decrypts, validates and durably accepts one client's
// update. The receipt is returned only after the encrypted upload and the
// state that records it are committed together.
func (s *Server) Upload(ctx context.Context, peer Peer, h *fedpb.UploadHeader, ciphertext []byte) (*fedpb.UploadReceipt, error) {
	received := time.Now()
	r, err := s.upload(peer, h, ciphertext)
	if err != nil {
		reason := "invalid"
		var ref *Refusal
		if errors.As(err, &ref) {
			reason = ref.Reason
			err = refusalStatus(ref)
		}
		s.met.Uploads.WithLabelValues("refused", reason).Inc()
		s.log.Warn("upload refused", "client", peer.Name, "round", h.GetRound(), "reason", reason, "err", err)
		if contentRefusal[reason] {
			s.mu.Lock()
			s.step(func() []Effect { return s.m.RefusedUpload(s.cfg.Now(), h.GetRound(), peer.Name) })
			s.mu.Unlock()
		}
		return nil, err
	}
	s.met.UploadSeconds.Observe(time.Since(received).Seconds())
	return r, nil
}

// contentRefusal: the reasons for refusing an upload whose signed,
// authenticated body its client made wrong (not a transport fault, not a
// matter of timing). The round at quorum stops waiting for that client.
var contentRefusal = map[string]bool{ReasonUndecryptable: true, "bad_payload": true, ReasonUpdateNorm: true}

func (s *Server) upload(peer Peer, h *fedpb.UploadHeader, ct []byte) (*fedpb.UploadReceipt, error) {
	if h == nil {
		return nil, refuse(RefuseInvalid, "bad_header", "upload has no header")
	}
	s.mu.Lock()
	dup, ref := s.m.CheckUpload(s.cfg.Now(), peer.Name, h)
	base := s.cur
	s.mu.Unlock()
	if ref != nil {
		return nil, ref
	}
	switch {
	case uint64(len(ct)) != h.Size:
		return nil, refuse(RefuseInvalid, "truncated", "upload carries %d bytes, its header says %d", len(ct), h.Size)
	case !bytes.Equal(Digest(ct), h.Digest):
		return nil, refuse(RefuseInvalid, "tampered", "upload payload does not match its signed digest (tampered or corrupted)")
	}
	if err := verifyPeerSignature(peer, UploadSigningBytes(h), h.Signature); err != nil {
		return nil, refuse(RefuseUnauthenticated, "bad_signature", "upload signature of client %s: %v", peer.Name, err)
	}
	if dup {
		s.mu.Lock()
		n := len(s.m.State().Accepted)
		s.mu.Unlock()
		return &fedpb.UploadReceipt{Round: h.Round, Bytes: uint64(len(ct)), Accepted: uint32(n)}, nil
	}
	if base.version != h.BaseVersion {
		return nil, refuse(RefuseNotNow, "stale_base", "update is relative to global version %d, current is %d", h.BaseVersion, base.version)
	}
	var clientSet *adapter.Set
	secAgg := s.cfg.Policy.SecAgg != nil
	var masked []byte // a secure-aggregation round's masked input
	var err error
	if secAgg {
		if masked, err = s.decrypt(ct, base); err != nil {
			return nil, err
		}
	} else if clientSet, err = s.open(ct, base, h.Round, peer.Name); err != nil {
		return nil, err
	} else if bound := s.cfg.Policy.MaxUpdateNorm; bound > 0 {
		if norm := clientSet.Norm(); !(norm <= bound) {
			return nil, refuse(RefuseInvalid, ReasonUpdateNorm, "update of client %s has L2 norm %.4g, above the bound of %.4g (rounds.max_update_norm)", peer.Name, norm, bound)
		}
	}
	rec, err := proto.Marshal(&fedpb.StoredUpload{Header: h, Ciphertext: ct, CertDer: peer.CertDER, ReceivedUnixMs: s.cfg.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	receipt := Receipt{Client: peer.Name, Examples: h.Examples, Nonce: h.Nonce, Digest: h.Digest,
		WireBytes: uint64(len(ct)), RawBytes: h.RawBytes, Loss: h.TrainLoss, Accuracy: h.ValAccuracy}

	s.mu.Lock()
	defer s.mu.Unlock()
	// The state may have moved while the payload was checked: decide again.
	if dup, ref := s.m.CheckUpload(s.cfg.Now(), peer.Name, h); ref != nil || dup {
		if ref != nil {
			return nil, ref
		}
		return &fedpb.UploadReceipt{Round: h.Round, Bytes: uint64(len(ct)), Accepted: uint32(len(s.m.State().Accepted))}, nil
	}
	if secAgg {
		// Into the secure sum first: it validates the input fully, and an
		// input the sum refused must not be stored as accepted.
		if s.sa == nil || s.sa.round != h.Round {
			return nil, refuse(RefuseNotNow, "late", "round %d has no secure aggregation open", h.Round)
		}
		if ref := s.sa.addInput(peer.Name, masked); ref != nil {
			return nil, ref
		}
	}
	// The receipt and the state it moves the machine to are written in one
	// transaction before the client hears "accepted".
	effects := s.m.Accept(s.cfg.Now(), receipt)
	if _, changed := s.m.Ready(); !changed { // CheckUpload, under the same lock, guards this
		return nil, refuse(RefuseInternal, "store", "round %d did not take the upload of %s", h.Round, peer.Name)
	}
	err = s.commit(func(state []byte) error { return s.store.AcceptUpload(h.Round, peer.Name, rec, state) })
	if err != nil {
		if secAgg {
			s.sa.failed = fmt.Errorf("an input was added to the secure sum but could not be stored: %v", err)
		}
		if errors.Is(err, store.ErrDuplicate) {
			return nil, refuse(RefuseDuplicate, "duplicate", "client %s already has an accepted upload in round %d", peer.Name, h.Round)
		}
		return nil, refuse(RefuseInternal, "store", "persist upload: %v", err)
	}
	after := s.m.State()
	if clientSet != nil {
		s.remember(h.Round, peer.Name, clientSet)
	}
	s.met.Uploads.WithLabelValues("accepted", "").Inc()
	s.met.WireBytes.Add(float64(len(ct)))
	s.met.RawBytes.Add(float64(h.RawBytes))
	s.log.Info("upload accepted", "client", peer.Name, "round", h.Round, "wire_bytes", len(ct), "raw_bytes", h.RawBytes,
		"examples", h.Examples, "accepted", len(after.Accepted), "cohort", len(after.Cohort))
	s.handle(effects)
	return &fedpb.UploadReceipt{Round: h.Round, Bytes: uint64(len(ct)), Accepted: uint32(len(after.Accepted))}, nil
}

// ReasonUpdateNorm is the refusal of an update whose norm exceeds the
// policy's MaxUpdateNorm.
const ReasonUpdateNorm = "update_norm"

// ReasonUndecryptable is the refusal of an upload the coordinator cannot
// decrypt: the client encrypted to another key, its bundle is wrong.
const ReasonUndecryptable = "undecryptable"

// decrypt opens an upload's ciphertext, capped like open's.
func (s *Server) decrypt(ct []byte, base *publishedGlobal) ([]byte, error) {
	return decryptUpload(s.cfg.Identity, ct, base.file)
}

// decryptUpload opens an upload's ciphertext with the coordinator's
// identity. The plaintext is capped well above any honest update of the
// base file's shape, so a forged size cannot make it allocate without
// bound.
func decryptUpload(id age.Identity, ct, baseFile []byte) ([]byte, error) {
	plain, err := secure.Decrypt(id, ct, 2*int64(len(baseFile))+1<<20)
	if err != nil {
		return nil, refuse(RefuseInvalid, ReasonUndecryptable, "the coordinator cannot decrypt this upload: %v", err)
	}
	return plain, nil
}

func verifyPeerSignature(peer Peer, msg, sig []byte) error {
	switch pk := peer.PublicKey.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(pk, msg, sig) {
			return errors.New("signature does not verify (tampered, replayed under another header, or signed by another key)")
		}
		return nil
	case nil:
		return errors.New("the caller presented no public key")
	default:
		return fmt.Errorf("unsupported client key type %T (enrolment issues Ed25519 keys)", pk)
	}
}

// remember keeps an accepted client adapter for the round's aggregation,
// within the cache budget; s.mu is held.
func (s *Server) remember(round uint64, client string, set *adapter.Set) {
	if s.decodedRound != round {
		s.decoded, s.decodedRound, s.decodedBytes = map[string]*adapter.Set{}, round, 0
	}
	size := int64(RawBytes(set))
	if s.decodedBytes+size > s.cfg.CacheBytes {
		return
	}
	set.ReleaseGrads() // only read from here on: half the memory of a waiting update
	s.decoded[client] = set
	s.decodedBytes += size
}

// checkStoredUploads reads every upload the open round has accepted and
// checks its ciphertext against the digest its receipt recorded, so that
// bytes damaged on disk are found when the coordinator starts, naming the
// client and round, not when the round aggregates.
func (s *Server) checkStoredUploads(st State) error {
	if st.Phase != PhaseCollecting && st.Phase != PhaseAggregating {
		return nil
	}
	for _, r := range st.Accepted {
		rec, err := s.store.Upload(st.Round, r.Client)
		if err != nil {
			return fmt.Errorf("accepted upload of %s in round %d: %w", r.Client, st.Round, err)
		}
		var su fedpb.StoredUpload
		if err := proto.Unmarshal(rec, &su); err != nil {
			return fmt.Errorf("accepted upload of %s in round %d is damaged on disk: %w", r.Client, st.Round, err)
		}
		if got := Digest(su.Ciphertext); !bytes.Equal(got, r.Digest) || !bytes.Equal(got, su.GetHeader().GetDigest()) {
			return fmt.Errorf("accepted upload of %s in round %d is damaged on disk: its %d bytes of ciphertext no longer match the digest recorded when it was accepted (restore %s from a backup)",
				r.Client, st.Round, len(su.Ciphertext), s.store.Path())
		}
	}
	return nil
}

// loadUpload decrypts and decodes a stored upload (after a restart, or
// beyond the cache budget).
func (s *Server) loadUpload(job StartAggregation, client string, base *publishedGlobal) (*adapter.Set, error) {
	rec, err := s.store.Upload(job.Round, client)
	if err != nil {
		return nil, err
	}
	var su fedpb.StoredUpload
	if err := proto.Unmarshal(rec, &su); err != nil {
		return nil, fmt.Errorf("stored upload of %s: %w", client, err)
	}
	delta, err := s.open(su.Ciphertext, base, job.Round, client)
	if err != nil {
		return nil, fmt.Errorf("stored upload of %s: %w", client, err)
	}
	return delta, nil
}

// open decrypts an upload's ciphertext and decodes it as client's update Δ
// for round against base.
func (s *Server) open(ct []byte, base *publishedGlobal, round uint64, client string) (*adapter.Set, error) {
	plain, err := s.decrypt(ct, base)
	if err != nil {
		return nil, err
	}
	delta, err := DecodeUpdate(plain, base.set, round, client, base.version, int(s.cfg.Policy.Train.Bits), s.cfg.Rule.Whole())
	if err != nil {
		return nil, refuse(RefuseInvalid, "bad_payload", "%v", err)
	}
	return delta, nil
}
