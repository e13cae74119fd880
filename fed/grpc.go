package fed

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
)

// ChunkSize is the payload carried by one streamed message: well under
// gRPC's default 4 MiB message limit, so adapters of any size stream.
const ChunkSize = 1 << 20

// inChunks calls send with data in pieces of at most ChunkSize bytes.
func inChunks(data []byte, send func([]byte) error) error {
	for off := 0; off < len(data); off += ChunkSize {
		if err := send(data[off:min(off+ChunkSize, len(data))]); err != nil {
			return err
		}
	}
	return nil
}

// maxMessage bounds every message either side accepts: a chunk plus its
// framing, or a header.
const maxMessage = ChunkSize + 64<<10

// ServiceName is the gRPC service name, for health checks.
const ServiceName = "kronfed.fed.v1.Coordinator"

// NewGRPCServer serves s over mutually authenticated TLS (tlsConf from
// secure.ServerTLS), with gRPC health checking and reflection so standard
// tools (grpcurl, grpc_health_probe) work.
func NewGRPCServer(s *Server, tlsConf *tls.Config, opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, opts...)
	gs := grpc.NewServer(opts...)
	fedpb.RegisterCoordinatorServer(gs, &grpcService{s: s})
	hs := health.NewServer()
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}

type grpcService struct {
	fedpb.UnimplementedCoordinatorServer
	s *Server
}

// peerOf names the caller from its verified client certificate.
func peerOf(ctx context.Context) (Peer, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}, status.Error(codes.Unauthenticated, "no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Peer{}, status.Error(codes.Unauthenticated, "connection is not TLS")
	}
	name, err := secure.ClientName(info.State)
	if err != nil {
		return Peer{}, status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
	}
	cert := info.State.VerifiedChains[0][0]
	return Peer{Name: name, PublicKey: cert.PublicKey, CertDER: cert.Raw, Operator: secure.IsOperator(cert)}, nil
}

func (g *grpcService) Join(ctx context.Context, req *fedpb.JoinRequest) (*fedpb.JoinResponse, error) {
	p, err := peerOf(ctx)
	if err != nil {
		return nil, err
	}
	if p.Operator {
		return nil, status.Errorf(codes.PermissionDenied, "%s holds an operator certificate, which does not train: enroll a client", p.Name)
	}
	return g.s.Join(ctx, p, req)
}

// maxPollWait bounds how long one NextRound call is held.
const maxPollWait = time.Minute

func (g *grpcService) NextRound(ctx context.Context, req *fedpb.NextRoundRequest) (*fedpb.RoundAssignment, error) {
	p, err := peerOf(ctx)
	if err != nil {
		return nil, err
	}
	wait := min(time.Duration(req.WaitMs)*time.Millisecond, maxPollWait)
	return g.s.NextRound(ctx, p, req.AfterRound, wait)
}

func (g *grpcService) Download(req *fedpb.DownloadRequest, stream fedpb.Coordinator_DownloadServer) error {
	if _, err := peerOf(stream.Context()); err != nil {
		return err
	}
	file, digest, err := g.s.Global(req.Version)
	if err != nil {
		return err
	}
	hdr := &fedpb.DownloadHeader{Version: req.Version, Size: uint64(len(file)), Digest: digest}
	if err := stream.Send(&fedpb.DownloadChunk{Part: &fedpb.DownloadChunk_Header{Header: hdr}}); err != nil {
		return err
	}
	return inChunks(file, func(b []byte) error {
		return stream.Send(&fedpb.DownloadChunk{Part: &fedpb.DownloadChunk_Data{Data: b}})
	})
}

func (g *grpcService) Upload(stream fedpb.Coordinator_UploadServer) error {
	p, err := peerOf(stream.Context())
	if err != nil {
		return err
	}
	h, err := receiveHeader(stream)
	if err != nil {
		g.s.met.Uploads.WithLabelValues("refused", "malformed").Inc()
		return err
	}
	// The header decides whether the body is read at all.
	release, err := g.s.AdmitUpload(p, h)
	if err != nil {
		return err
	}
	defer release()
	ct, err := receiveBody(stream, h)
	if err != nil {
		g.s.met.Uploads.WithLabelValues("refused", "malformed").Inc()
		return err
	}
	r, err := g.s.Upload(stream.Context(), p, h, ct)
	if err != nil {
		return err
	}
	return stream.SendAndClose(r)
}

// receiveHeader reads an upload stream's first message, which must be its
// header.
func receiveHeader(stream fedpb.Coordinator_UploadServer) (*fedpb.UploadHeader, error) {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.InvalidArgument, "upload stream is empty (want a header first)")
		}
		return nil, err
	}
	h := first.GetHeader()
	if h == nil {
		return nil, status.Error(codes.InvalidArgument, "upload stream must start with a header")
	}
	return h, nil
}

// receiveBody reads exactly header.Size bytes of ciphertext (AdmitUpload has
// bounded the size), refusing truncated and out-of-order streams.
func receiveBody(stream fedpb.Coordinator_UploadServer, h *fedpb.UploadHeader) ([]byte, error) {
	ct := make([]byte, 0, h.Size)
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data, ok := msg.Part.(*fedpb.UploadChunk_Data)
		if !ok {
			return nil, status.Error(codes.InvalidArgument, "upload stream carries a second header")
		}
		if uint64(len(ct)+len(data.Data)) > h.Size {
			return nil, status.Errorf(codes.InvalidArgument, "upload stream carries more than the %d bytes its header announces", h.Size)
		}
		ct = append(ct, data.Data...)
	}
	if uint64(len(ct)) != h.Size {
		return nil, status.Errorf(codes.InvalidArgument, "upload truncated: %d of %d bytes received", len(ct), h.Size)
	}
	return ct, nil
}

const maxInt = int(^uint(0) >> 1)

func (g *grpcService) Status(ctx context.Context, _ *fedpb.StatusRequest) (*fedpb.StatusResponse, error) {
	p, err := peerOf(ctx)
	if err != nil {
		return nil, err
	}
	return g.s.StatusFor(p), nil
}

func (g *grpcService) SecAgg(ctx context.Context, req *fedpb.SecAggRequest) (*fedpb.SecAggResponse, error) {
	p, err := peerOf(ctx)
	if err != nil {
		return nil, err
	}
	return g.s.SecAgg(ctx, p, req, min(time.Duration(req.WaitMs)*time.Millisecond, maxPollWait))
}

// GRPCConn is a client's gRPC connection to the coordinator.
type GRPCConn struct {
	cc *grpc.ClientConn
	c  fedpb.CoordinatorClient
	// MaxDownload caps a downloaded adapter's size (default 4 GiB).
	MaxDownload uint64
}

var _ Conn = (*GRPCConn)(nil)

// DialGRPC connects to the coordinator at addr with tlsConf (from a client
// bundle). The connection is lazy: errors surface on the first call, and
// gRPC reconnects by itself after a coordinator restart.
func DialGRPC(addr string, tlsConf *tls.Config, opts ...grpc.DialOption) (*GRPCConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial coordinator %s: %w", addr, err)
	}
	return &GRPCConn{cc: cc, c: fedpb.NewCoordinatorClient(cc), MaxDownload: 4 << 30}, nil
}

func (c *GRPCConn) Join(ctx context.Context, req *fedpb.JoinRequest) (*fedpb.JoinResponse, error) {
	return c.c.Join(ctx, req)
}

func (c *GRPCConn) NextRound(ctx context.Context, after uint64, wait time.Duration) (*fedpb.RoundAssignment, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	return c.c.NextRound(ctx, &fedpb.NextRoundRequest{AfterRound: after, WaitMs: uint32(wait.Milliseconds())})
}

func (c *GRPCConn) Download(ctx context.Context, version uint64) ([]byte, []byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Download(ctx, &fedpb.DownloadRequest{Version: version})
	if err != nil {
		return nil, nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	h := first.GetHeader()
	switch {
	case h == nil:
		return nil, nil, status.Error(codes.DataLoss, "download stream did not start with a header")
	case h.Version != version:
		return nil, nil, status.Errorf(codes.DataLoss, "download of version %d answered version %d", version, h.Version)
	case h.Size > c.MaxDownload:
		return nil, nil, status.Errorf(codes.ResourceExhausted, "global adapter of %d bytes exceeds the client's limit of %d", h.Size, c.MaxDownload)
	}
	var buf bytes.Buffer
	buf.Grow(int(h.Size))
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		d := msg.GetData()
		if d == nil || uint64(buf.Len()+len(d)) > h.Size {
			return nil, nil, status.Errorf(codes.DataLoss, "download stream exceeds its announced %d bytes or repeats its header", h.Size)
		}
		buf.Write(d)
	}
	if uint64(buf.Len()) != h.Size {
		return nil, nil, status.Errorf(codes.DataLoss, "download truncated: %d of %d bytes", buf.Len(), h.Size)
	}
	return buf.Bytes(), h.Digest, nil
}

func (c *GRPCConn) Upload(ctx context.Context, h *fedpb.UploadHeader, ct []byte) (*fedpb.UploadReceipt, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&fedpb.UploadChunk{Part: &fedpb.UploadChunk_Header{Header: h}}); err != nil {
		return nil, closeAndRecvErr(stream, err)
	}
	err = inChunks(ct, func(b []byte) error {
		return stream.Send(&fedpb.UploadChunk{Part: &fedpb.UploadChunk_Data{Data: b}})
	})
	if err != nil {
		return nil, closeAndRecvErr(stream, err)
	}
	return stream.CloseAndRecv()
}

// closeAndRecvErr turns a failed Send into the server's status: gRPC
// reports io.EOF from Send when the server has already answered.
func closeAndRecvErr(stream fedpb.Coordinator_UploadClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}

func (c *GRPCConn) Status(ctx context.Context) (*fedpb.StatusResponse, error) {
	return c.c.Status(ctx, &fedpb.StatusRequest{})
}

func (c *GRPCConn) SecAgg(ctx context.Context, req *fedpb.SecAggRequest) (*fedpb.SecAggResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.WaitMs)*time.Millisecond+10*time.Second)
	defer cancel()
	return c.c.SecAgg(ctx, req)
}

func (c *GRPCConn) Close() error { return c.cc.Close() }

// ErrCertificateRefused: the coordinator refused the client's certificate.
var ErrCertificateRefused = errors.New("the coordinator refused this client's certificate")

// ErrUntrustedCoordinator: the coordinator's certificate does not verify
// against the bundle's CA (another federation, or a wrong address).
var ErrUntrustedCoordinator = errors.New("the coordinator's certificate is not from this federation's CA")

// ProbeTLS checks that a mutually authenticated TLS session with the
// coordinator at addr can be set up, and says clearly when the coordinator
// refuses this client's certificate. gRPC cannot tell that case from a
// network failure (in TLS 1.3 the refusal arrives after the client's side
// of the handshake is done, and gRPC reports a broken pipe), so clients
// probe once at startup instead of retrying a certificate that will never
// be accepted.
func ProbeTLS(ctx context.Context, addr string, tlsConf *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: tlsConf.Clone()}
	d.Config.NextProtos = []string{"h2"}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return fmt.Errorf("%w: %v", ErrUntrustedCoordinator, err)
		}
		return fmt.Errorf("TLS with the coordinator at %s: %w", addr, err)
	}
	defer conn.Close()
	// The server verifies our certificate, then either speaks first
	// (HTTP/2 settings) or sends an alert.
	conn.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	var alert tls.AlertError
	if errors.As(err, &alert) || (err != nil && strings.Contains(err.Error(), "remote error: tls")) {
		return fmt.Errorf("%w: the coordinator at %s says %v", ErrCertificateRefused, addr, err)
	}
	return nil
}
