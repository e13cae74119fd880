package fed

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
)

// MemoryConn links a client to a coordinator in the same process: every
// call goes straight to the Server as Peer, with byte slices copied so
// neither side can change what the other holds. It is the simulator's
// transport and the protocol tests'.
type MemoryConn struct {
	Server *Server
	Peer   Peer
}

var _ Conn = (*MemoryConn)(nil)

func (c *MemoryConn) Join(ctx context.Context, req *fedpb.JoinRequest) (*fedpb.JoinResponse, error) {
	return c.Server.Join(ctx, c.Peer, req)
}

func (c *MemoryConn) NextRound(ctx context.Context, after uint64, wait time.Duration) (*fedpb.RoundAssignment, error) {
	return c.Server.NextRound(ctx, c.Peer, after, wait)
}

func (c *MemoryConn) Download(ctx context.Context, version uint64) ([]byte, []byte, error) {
	file, digest, err := c.Server.Global(version)
	return slices.Clone(file), slices.Clone(digest), err
}

func (c *MemoryConn) Upload(ctx context.Context, h *fedpb.UploadHeader, ct []byte) (*fedpb.UploadReceipt, error) {
	release, err := c.Server.AdmitUpload(c.Peer, h)
	if err != nil {
		return nil, err
	}
	defer release()
	return c.Server.Upload(ctx, c.Peer, h, slices.Clone(ct))
}

func (c *MemoryConn) Status(ctx context.Context) (*fedpb.StatusResponse, error) {
	return c.Server.StatusFor(c.Peer), nil
}

func (c *MemoryConn) SecAgg(ctx context.Context, req *fedpb.SecAggRequest) (*fedpb.SecAggResponse, error) {
	req = proto.Clone(req).(*fedpb.SecAggRequest)
	return c.Server.SecAgg(ctx, c.Peer, req, time.Duration(req.WaitMs)*time.Millisecond)
}

func (c *MemoryConn) Close() error { return nil }
