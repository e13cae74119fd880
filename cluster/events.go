package cluster

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// EventKind says what happened to a member.
type EventKind int

const (
	// MemberJoin: a member became live (new, or back after leaving/failing).
	MemberJoin EventKind = iota + 1
	// MemberLeave: a member left gracefully (Leave) or was declared failed
	// by failure detection. memberlist does not tell its delegate which:
	// the Node it passes does not carry the dead/left state.
	MemberLeave
	// MemberUpdate: a live member published new metadata.
	MemberUpdate
)

func (k EventKind) String() string {
	switch k {
	case MemberJoin:
		return "join"
	case MemberLeave:
		return "leave"
	case MemberUpdate:
		return "update"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change in membership as seen by this node. Events are hints to
// react promptly; Node.Members is the source of truth.
type Event struct {
	Kind   EventKind
	Member Member
}

// Stats are counters kept by a Node.
type Stats struct {
	// DroppedEvents counts events not delivered because the Events channel
	// was full.
	DroppedEvents uint64
}

// Member is a live node of the cluster.
type Member struct {
	Name string
	// Addr is the host:port the member gossips on.
	Addr string
	Meta Meta
	// MetaErr is set when the member's published metadata did not decode;
	// Meta is then zero. Such members are listed by Members but skipped by
	// Clients and Coordinator.
	MetaErr error
}

func memberOf(n *memberlist.Node) Member {
	m := Member{Name: n.Name, Addr: n.Address()}
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		m.MetaErr = fmt.Errorf("member %s: %w", n.Name, err)
	} else {
		m.Meta = meta
	}
	return m
}

// delegate implements memberlist.Delegate and memberlist.EventDelegate. It
// is kept apart from Node so that those methods are not part of Node's API.
// memberlist calls the event methods with its node lock held, from several
// goroutines, and possibly after memberlist.Shutdown has returned (suspicion
// timers, packet handlers finishing); so the methods never block, never call
// back into memberlist, and become no-ops once the channel is closed.
type delegate struct {
	logger *slog.Logger

	metaMu sync.RWMutex
	meta   []byte // encoded, fits MetaMaxSize

	// members mirrors memberlist's live nodes, maintained from the event
	// callbacks (which memberlist serialises under its node lock). Reading
	// memberlist's own *Node values outside that lock would race with
	// updates to them.
	memMu   sync.RWMutex
	members map[string]Member

	evMu    sync.Mutex
	ch      chan Event
	closed  bool
	dropped atomic.Uint64
}

func newDelegate(meta []byte, capacity int, logger *slog.Logger) *delegate {
	return &delegate{logger: logger, meta: meta, ch: make(chan Event, capacity), members: make(map[string]Member)}
}

func (d *delegate) setMeta(b []byte) {
	d.metaMu.Lock()
	d.meta = b
	d.metaMu.Unlock()
}

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	d.metaMu.RLock()
	defer d.metaMu.RUnlock()
	if len(d.meta) > limit {
		// Unreachable with memberlist's fixed limit, since Create and
		// UpdateMeta check the size; never hand memberlist more than asked.
		d.logger.Error("cluster: metadata larger than memberlist's limit; publishing none",
			"size", len(d.meta), "limit", limit)
		return nil
	}
	return append([]byte(nil), d.meta...)
}

// NotifyMsg implements memberlist.Delegate; kronfed sends no user messages.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.emit(MemberJoin, n) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.emit(MemberLeave, n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.emit(MemberUpdate, n) }

func (d *delegate) emit(kind EventKind, n *memberlist.Node) {
	ev := Event{Kind: kind, Member: memberOf(n)}
	d.memMu.Lock()
	if kind == MemberLeave {
		delete(d.members, ev.Member.Name)
	} else {
		d.members[ev.Member.Name] = ev.Member
	}
	d.memMu.Unlock()
	d.evMu.Lock()
	if d.closed {
		d.evMu.Unlock()
		return
	}
	sent := true
	select {
	case d.ch <- ev:
	default:
		sent = false
	}
	d.evMu.Unlock()
	if !sent {
		total := d.dropped.Add(1)
		d.logger.Warn("cluster: events channel full, event dropped (Members() still has the current view)",
			"event", kind.String(), "member", n.Name, "dropped_total", total)
	}
}

// snapshot returns the live members sorted by name.
func (d *delegate) snapshot() []Member {
	d.memMu.RLock()
	out := make([]Member, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, m)
	}
	d.memMu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (d *delegate) member(name string) (Member, bool) {
	d.memMu.RLock()
	defer d.memMu.RUnlock()
	m, ok := d.members[name]
	return m, ok
}

func (d *delegate) numMembers() int {
	d.memMu.RLock()
	defer d.memMu.RUnlock()
	return len(d.members)
}

// close closes the events channel once; later events are discarded.
func (d *delegate) close() {
	d.evMu.Lock()
	defer d.evMu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.ch)
	}
}
