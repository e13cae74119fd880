package fed

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/store"
)

// What an operator reads from a stopped coordinator's store, without a
// Server: the published global adapters and the federation's status.

// StoredVersion is one published global adapter read back from a store,
// its digest checked: the file exactly as clients downloaded it, decoded,
// and the server optimizer's state stored with it.
type StoredVersion struct {
	Version, Round uint64
	File           []byte // the adapter file (safetensors) as published
	Set            *adapter.Set
	Optimizer      []byte // the server optimizer's state after this version (nil: none)
}

// ReadStoredGlobal reads global adapter version (0: the latest) from a
// coordinator's store. A version the store does not hold is
// store.ErrNotFound.
func ReadStoredGlobal(st *store.Store, version uint64) (*StoredVersion, error) {
	var rec []byte
	var err error
	if version == 0 {
		version, rec, err = st.LatestGlobal()
	} else {
		rec, err = st.Global(version)
	}
	if err != nil {
		return nil, fmt.Errorf("global adapter version %d: %w", version, err)
	}
	var sg fedpb.StoredGlobal
	if err := proto.Unmarshal(rec, &sg); err != nil {
		return nil, fmt.Errorf("global adapter version %d: %w", version, err)
	}
	if sg.Version != version || !bytes.Equal(sg.Digest, Digest(sg.Adapter)) {
		return nil, fmt.Errorf("global adapter version %d: the stored record is damaged (it says version %d; digest matches: %v)",
			version, sg.Version, bytes.Equal(sg.Digest, Digest(sg.Adapter)))
	}
	set, _, err := DecodeAdapter(sg.Adapter)
	if err != nil {
		return nil, fmt.Errorf("global adapter version %d: %w", version, err)
	}
	return &StoredVersion{Version: version, Round: sg.Round, File: sg.Adapter, Set: set, Optimizer: sg.Optimizer}, nil
}

// OfflineStatus is the status a stopped coordinator would report, read
// from its store: the round and phase it stopped in, the current global
// version, ε spent, and the stored round results (no members: who is live
// is only known while it runs).
func OfflineStatus(st *store.Store) (*fedpb.StatusResponse, error) {
	raw, ok, err := st.State()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the store %s holds no federation yet", st.Path())
	}
	s, err := UnmarshalState(raw)
	if err != nil {
		return nil, fmt.Errorf("the store's state: %w", err)
	}
	cur, err := ReadStoredGlobal(st, 0)
	if err != nil {
		return nil, err
	}
	out := &fedpb.StatusResponse{Coordinator: "(stopped: read from " + st.Path() + ")", Model: cur.Set.BaseModel,
		Adapter: cur.Set.Config.String(), Round: s.Round, Phase: string(s.Phase), GlobalVersion: s.GlobalVersion,
		Cohort: s.Cohort, Epsilon: s.Epsilon}
	for _, r := range s.Accepted {
		out.Accepted = append(out.Accepted, r.Client)
	}
	err = st.Rounds(0, func(_ uint64, rec []byte) error {
		var r fedpb.RoundResult
		if err := proto.Unmarshal(rec, &r); err != nil {
			return err
		}
		out.Results = append(out.Results, &r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the store's round results: %w", err)
	}
	return out, nil
}
