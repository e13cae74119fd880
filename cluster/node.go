package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrShutdown is returned by calls on a Node after Shutdown.
	ErrShutdown = errors.New("cluster: node is shut down")
	// ErrLeft is returned by UpdateMeta and Join after Leave.
	ErrLeft = errors.New("cluster: node has left the cluster")
)

// Node is this process's membership in the kronfed gossip cluster. Create
// starts it (listening, alone); Join contacts seeds; Leave announces a
// graceful departure; Shutdown stops it. All methods are safe for concurrent
// use.
type Node struct {
	cfg    *Config
	logger *slog.Logger
	ml     *memberlist.Memberlist
	del    *delegate
	addr   string // advertised gossip host:port

	// mu guards the lifecycle flags and wg.Add against Shutdown's wg.Wait.
	mu       sync.Mutex
	shutdown bool
	left     bool
	stopCh   chan struct{} // closed by Shutdown
	wg       sync.WaitGroup

	// metaMu serialises UpdateMeta calls.
	metaMu sync.Mutex

	shutdownOnce sync.Once
	shutdownErr  error
}

// Create validates cfg, starts listening and returns a Node that is alone in
// its cluster until Join. The Events channel already carries the node's own
// MemberJoin.
func Create(cfg *Config) (*Node, error) {
	c, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	meta, err := c.Meta.Encode()
	if err != nil {
		return nil, fmt.Errorf("cluster: config: Meta: %w", err)
	}
	logger := c.Logger.With("component", "cluster", "node", c.Name)
	n := &Node{cfg: c, logger: logger, stopCh: make(chan struct{})}
	n.del = newDelegate(meta, c.Events, logger)
	mc := c.memberlistConfig()
	mc.Delegate = n.del
	mc.Events = n.del
	ml, err := memberlist.Create(mc)
	if err != nil {
		n.del.close()
		return nil, fmt.Errorf("cluster: create node %q on %s:%d: %w", c.Name, c.BindAddr, c.BindPort, err)
	}
	n.ml = ml
	self, ok := n.del.member(c.Name) // memberlist reported our own join in Create
	if !ok {
		_ = ml.Shutdown()
		n.del.close()
		return nil, fmt.Errorf("cluster: create node %q: memberlist did not report the local node", c.Name)
	}
	n.addr = self.Addr
	logger.Debug("cluster: node started", "addr", n.LocalAddr(), "role", c.Meta.Role, "profile", c.Profile,
		"encrypted", len(c.SecretKey) > 0)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// LocalAddr returns the host:port this node advertises for gossip (the
// actual port when BindPort was 0); give it to others as a seed.
func (n *Node) LocalAddr() string { return n.addr }

// Local returns this node as a Member, with the metadata it currently
// publishes.
func (n *Node) Local() Member {
	m := Member{Name: n.cfg.Name, Addr: n.addr}
	n.del.metaMu.RLock()
	m.Meta, m.MetaErr = DecodeMeta(n.del.meta)
	n.del.metaMu.RUnlock()
	return m
}

// Events returns the channel of membership events. It is closed by Shutdown.
// Events never block memberlist: when the channel is full the event is
// dropped, counted in Stats().DroppedEvents and logged; Members is always
// the source of truth.
func (n *Node) Events() <-chan Event { return n.del.ch }

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return Stats{DroppedEvents: n.del.dropped.Load()} }

// Members returns the live members (alive or suspected, including this node
// while it has not left), sorted by name. It returns nil after Shutdown.
func (n *Node) Members() []Member {
	if n.isShutdown() {
		return nil
	}
	return n.del.snapshot()
}

// Clients returns the live members whose metadata decoded and says
// RoleClient, sorted by name.
func (n *Node) Clients() []Member {
	var out []Member
	for _, m := range n.Members() {
		if m.MetaErr == nil && m.Meta.Role == RoleClient {
			out = append(out, m)
		}
	}
	return out
}

// Coordinator returns the live coordinator. If several members claim the
// role (a misconfiguration), the first by name is returned.
func (n *Node) Coordinator() (Member, bool) {
	for _, m := range n.Members() {
		if m.MetaErr == nil && m.Meta.Role == RoleCoordinator {
			return m, true
		}
	}
	return Member{}, false
}

// NumMembers returns the number of live members, including this node. It
// returns 0 after Shutdown.
func (n *Node) NumMembers() int {
	if n.isShutdown() {
		return 0
	}
	return n.del.numMembers()
}

// Join contacts the seeds (host:port, or host for the default port) and
// merges state with every one that answers. It retries, with exponential
// backoff and jitter, until at least one seed answers or ctx is done, and
// returns the number of seeds that answered. On failure the error names the
// seeds and wraps both ctx's error and the last join error. An attempt in
// flight when ctx ends is not interrupted (memberlist bounds it by its TCP
// timeout) and may still complete; Members is the source of truth.
func (n *Node) Join(ctx context.Context, seeds []string) (int, error) {
	if len(seeds) == 0 {
		return 0, errors.New("cluster: join: no seed addresses given")
	}
	seeds = slices.Clone(seeds)
	backoff := n.cfg.JoinBackoff
	var lastErr error
	attempts := 0
	for ctx.Err() == nil {
		if err := n.usable(); err != nil {
			return 0, err
		}
		attempts++
		k, err := n.joinOnce(ctx, seeds)
		if k > 0 {
			n.logger.Debug("cluster: joined", "seeds_answered", k, "attempts", attempts, "members", n.NumMembers())
			return k, nil
		}
		if errors.Is(err, ErrShutdown) {
			return 0, err
		}
		if err != nil && ctx.Err() == nil {
			lastErr = err
			n.logger.Debug("cluster: join attempt failed", "attempt", attempts, "err", err)
		}
		if ctx.Err() != nil {
			break
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter in [backoff/2, backoff]
		backoff = min(2*backoff, n.cfg.JoinBackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-n.stopCh:
		}
		t.Stop()
	}
	if lastErr == nil {
		lastErr = errors.New("no attempt completed")
	}
	return 0, fmt.Errorf("cluster: join via %s: no seed answered after %d attempt(s): %w; last error: %w",
		strings.Join(seeds, ", "), attempts, ctx.Err(), lastErr)
}

// joinOnce runs one memberlist.Join, returning early if ctx ends or the node
// shuts down.
func (n *Node) joinOnce(ctx context.Context, seeds []string) (int, error) {
	type result struct {
		k   int
		err error
	}
	ch := make(chan result, 1)
	if err := n.goTracked(func() {
		k, err := n.ml.Join(seeds)
		ch <- result{k, flattenErr(err)}
	}); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.k, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopCh:
		return 0, ErrShutdown
	}
}

// flattenErr turns memberlist's multi-line multierror into one line.
func flattenErr(err error) error {
	var multi interface{ WrappedErrors() []error }
	if err == nil || !errors.As(err, &multi) {
		return err
	}
	errs := multi.WrappedErrors()
	if len(errs) == 1 {
		return errs[0]
	}
	return joinedErr(errs)
}

// joinedErr prints several errors on one line and unwraps to all of them.
type joinedErr []error

func (e joinedErr) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e joinedErr) Unwrap() []error { return e }

// UpdateMeta publishes new metadata and waits until the update has been
// broadcast to a peer (if there is one), ctx is done, or BroadcastTimeout
// passes when ctx has no deadline. The new metadata is in effect locally
// even when the wait ends early; gossip spreads it anyway.
func (n *Node) UpdateMeta(ctx context.Context, m Meta) error {
	if m.Version == 0 {
		m.Version = MetaVersion
	}
	b, err := m.Encode()
	if err != nil {
		return fmt.Errorf("cluster: update meta: %w", err)
	}
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	if err := n.usable(); err != nil {
		return err
	}
	n.del.setMeta(b)
	timeout := n.timeout(ctx)
	if err := n.runBounded(ctx, func() error { return n.ml.UpdateNode(timeout) }); err != nil {
		return fmt.Errorf("cluster: update meta: %w", err)
	}
	return nil
}

// Leave announces that this node is leaving and waits until the announcement
// has been broadcast to a peer (if there is one), ctx is done, or
// BroadcastTimeout passes when ctx has no deadline. The node keeps running,
// answering probes, until Shutdown. Leave is idempotent.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.Lock()
	if n.shutdown {
		n.mu.Unlock()
		return ErrShutdown
	}
	n.left = true
	n.mu.Unlock()
	timeout := n.timeout(ctx)
	if err := n.runBounded(ctx, func() error { return n.ml.Leave(timeout) }); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	n.logger.Debug("cluster: left")
	return nil
}

// Shutdown stops the node without announcing a departure (peers detect it
// as failed; call Leave first to leave gracefully). It waits for the
// goroutines the Node started, then closes the Events channel. Events that
// memberlist still reports after Shutdown (its timers may fire late) are
// discarded. Shutdown is idempotent and returns the first call's result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.shutdown = true
		close(n.stopCh)
		n.mu.Unlock()
		if err := n.ml.Shutdown(); err != nil {
			n.shutdownErr = fmt.Errorf("cluster: shutdown: %w", err)
		}
		n.wg.Wait()
		n.del.close()
		n.logger.Debug("cluster: node stopped")
	})
	return n.shutdownErr
}

func (n *Node) isShutdown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shutdown
}

// usable returns ErrShutdown or ErrLeft when the node can no longer join or
// publish.
func (n *Node) usable() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.shutdown:
		return ErrShutdown
	case n.left:
		return ErrLeft
	}
	return nil
}

// timeout is the time left before ctx's deadline, or BroadcastTimeout.
func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return n.cfg.BroadcastTimeout
}

// goTracked starts f in a goroutine that Shutdown waits for.
func (n *Node) goTracked(f func()) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shutdown {
		return ErrShutdown
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return nil
}

// runBounded runs a memberlist call that blocks for at most its own timeout
// and returns its result, or ctx's error if ctx ends first. memberlist
// panics when Leave races with its Shutdown; that is reported as
// ErrShutdown.
func (n *Node) runBounded(ctx context.Context, f func() error) error {
	ch := make(chan error, 1)
	if err := n.goTracked(func() {
		defer func() {
			if r := recover(); r != nil {
				if n.isShutdown() {
					ch <- ErrShutdown
					return
				}
				panic(r)
			}
		}()
		ch <- f()
	}); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
