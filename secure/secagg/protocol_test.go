package secagg

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// boundaryDrops returns a maximal set of clients whose absence still leaves
// every client of the cohort with at least t live neighbours and at least t
// survivors: adding any other client to it would leave someone at t−1. It
// also returns a client that is exactly at the boundary (t live neighbours)
// and one more client whose absence would push it below, or 0 when the
// binding constraint is the number of survivors.
func boundaryDrops(tb testing.TB, cfg Config) (drops []uint32, atBoundary, oneMore uint32) {
	tb.Helper()
	cfg, err := cfg.Normalize()
	if err != nil {
		tb.Fatal(err)
	}
	g, err := cfg.Graph()
	if err != nil {
		tb.Fatal(err)
	}
	t := cfg.Threshold
	live := func(c uint32, d []uint32) int {
		n := 0
		for _, j := range g.Neighbours(c) {
			if !member(d, j) {
				n++
			}
		}
		return n
	}
	ok := func(d []uint32) bool {
		if cfg.N-len(d) < t {
			return false
		}
		for c := uint32(1); c <= uint32(cfg.N); c++ {
			if live(c, d) < t {
				return false
			}
		}
		return true
	}
	for id := uint32(1); id <= uint32(cfg.N); id++ {
		if ok(append(drops[:len(drops):len(drops)], id)) {
			drops = append(drops, id)
		}
	}
	for c := uint32(1); c <= uint32(cfg.N); c++ {
		if live(c, drops) == t {
			for _, j := range g.Neighbours(c) {
				if !member(drops, j) && j != c {
					return drops, c, j
				}
			}
		}
	}
	if cfg.N-len(drops) != t {
		tb.Fatalf("drop set %v is not at the boundary", drops)
	}
	return drops, 0, 0
}

// feasible reports whether every client keeps at least t live neighbours
// and at least t clients survive when drops are gone.
func feasible(tb testing.TB, cfg Config, drops []uint32) bool {
	cfg, err := cfg.Normalize()
	if err != nil {
		tb.Fatal(err)
	}
	g, _ := cfg.Graph()
	if cfg.N-len(drops) < cfg.Threshold {
		return false
	}
	for c := uint32(1); c <= uint32(cfg.N); c++ {
		n := 0
		for _, j := range g.Neighbours(c) {
			if !member(drops, j) {
				n++
			}
		}
		if n < cfg.Threshold {
			return false
		}
	}
	return true
}

// TestSumExact: the unmasked sum equals the plaintext sum of the survivors'
// inputs bit for bit, with no dropouts, single dropouts at each stage, and
// as many dropouts as the threshold allows.
func TestSumExact(t *testing.T) {
	for _, n := range []int{5, 10, 30} {
		base := Config{Round: 7, Seed: [32]byte{byte(n)}, N: n, Bits: 4, Length: 257}
		cfg, inputs := randomInputs(t, base, uint64(n))
		bd, _, _ := boundaryDrops(t, cfg)
		var half1, half2 []uint32
		for i, id := range bd {
			if i%2 == 0 {
				half1 = append(half1, id)
			} else {
				half2 = append(half2, id)
			}
		}
		scenarios := []scenario{
			{marshal: true},
			{dropBeforeMasked: ids(2)},
			{dropBeforeUnmask: ids(3), marshal: true},
			{dropBeforeShare: ids(4)},
			{neverAdvertise: ids(1)},
			{dropBeforeMasked: bd},
			{dropBeforeUnmask: bd},
			{dropBeforeMasked: half1, dropBeforeUnmask: half2, marshal: true},
		}
		for i, sc := range scenarios {
			t.Run(fmt.Sprintf("n=%d/%d", n, i), func(t *testing.T) {
				got, st, err := runRound(t, cfg, inputs, sc, uint64(100*n+i))
				if err != nil {
					t.Fatalf("%v: %v", sc, err)
				}
				// Clients that vanished before round 3 are not in the sum;
				// those that vanished after sending their input are.
				want := idsExcept(n, sc.neverAdvertise, sc.dropBeforeShare, sc.dropBeforeMasked)
				if fmt.Sprint(st.survivors) != fmt.Sprint(want) {
					t.Fatalf("survivors %v, want %v", st.survivors, want)
				}
				sumsEqual(t, got, plainSum(inputs, want, cfg.ModulusBits()))
			})
		}
	}
}

// TestBeyondThreshold: one dropout past the boundary makes the round fail
// with an error that names the problem, never a wrong sum.
func TestBeyondThreshold(t *testing.T) {
	for _, n := range []int{5, 10, 30} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cfg, inputs := randomInputs(t, Config{Round: 1, Seed: [32]byte{9, byte(n)}, N: n, Bits: 4, Length: 33}, uint64(n))
			bd, _, extra := boundaryDrops(t, cfg)
			if extra == 0 {
				// The survivor count binds: drop any other client.
				extra = idsExcept(n, bd)[0]
			}
			drops := append(bd, extra)
			for _, sc := range []scenario{{dropBeforeMasked: drops}, {dropBeforeUnmask: drops}} {
				got, _, err := runRound(t, cfg, inputs, sc, 5)
				if err == nil {
					t.Fatalf("%v: round succeeded with sum %v...", sc, got[:4])
				}
				if got != nil {
					t.Fatalf("failed round returned a partial result")
				}
				if !strings.Contains(err.Error(), "threshold") {
					t.Fatalf("error does not explain the threshold: %v", err)
				}
				t.Logf("%v: %v", sc, err)
			}
		})
	}
}

// TestTooFewSurvivors: fewer than t masked inputs abandons the round with a
// clear message and no result.
func TestTooFewSurvivors(t *testing.T) {
	cfg, inputs := randomInputs(t, Config{Round: 3, N: 10, Neighbours: 8, Threshold: 4, Bits: 4, Length: 16}, 1)
	drop := ids(1, 2, 3, 4, 5, 6, 7) // 3 survivors
	got, _, err := runRound(t, cfg, inputs, scenario{dropBeforeMasked: drop}, 1)
	if err == nil || got != nil {
		t.Fatalf("got sum %v, err %v", got, err)
	}
	if want := "round abandoned: 3 survivors, threshold 4"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// TestXWing: the hybrid post-quantum key agreement gives the same exact
// sums, with dropouts on both sides of every pairwise relation.
func TestXWing(t *testing.T) {
	for _, n := range []int{5, 10} {
		cfg, inputs := randomInputs(t, Config{Round: 11, Seed: [32]byte{1, 2, 3}, N: n, Bits: 8, Length: 100, KeyAgreement: XWing}, uint64(n))
		bd, _, _ := boundaryDrops(t, cfg)
		scs := []scenario{{marshal: true}, {dropBeforeMasked: bd}, {dropBeforeMasked: ids(1), marshal: true}}
		if n >= 10 {
			// A dropped client with neighbours on both sides of its id,
			// plus a survivor that then stays silent in round 4.
			for j := uint32(1); j <= uint32(n); j++ {
				if j != 5 && feasible(t, cfg, ids(5, j)) {
					scs = append(scs, scenario{dropBeforeMasked: ids(5), dropBeforeUnmask: ids(j)})
					break
				}
			}
		}
		for i, sc := range scs {
			t.Run(fmt.Sprintf("n=%d/%d", n, i), func(t *testing.T) {
				got, _, err := runRound(t, cfg, inputs, sc, uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				sumsEqual(t, got, plainSum(inputs, idsExcept(n, sc.dropBeforeMasked), cfg.ModulusBits()))
			})
		}
	}
}

// TestTamperedShare: a share ciphertext altered in transit is an error that
// names its sender, for both key agreements and for both the sealed shares
// and the X-Wing encapsulation.
func TestTamperedShare(t *testing.T) {
	for _, tc := range []struct {
		ka    KeyAgreement
		field string
	}{{X25519, "sealed"}, {XWing, "sealed"}, {XWing, "kem"}} {
		t.Run(tc.ka.String()+"/"+tc.field, func(t *testing.T) {
			cfg, inputs := randomInputs(t, Config{Round: 2, N: 5, Bits: 4, Length: 8, KeyAgreement: tc.ka}, 3)
			sc := scenario{tamper: func(to uint32, b *ShareBundle) {
				if to != 5 {
					return
				}
				for i := range b.Shares {
					if b.Shares[i].From == 3 {
						f := b.Shares[i].Sealed
						if tc.field == "kem" {
							f = b.Shares[i].KEMCiphertext
						}
						f[len(f)/2] ^= 0x40
					}
				}
			}}
			_, _, err := runRound(t, cfg, inputs, sc, 1)
			if err == nil {
				t.Fatal("tampered share accepted")
			}
			if !strings.Contains(err.Error(), "share from client 3") || !strings.Contains(err.Error(), "client 5") {
				t.Fatalf("error does not name sender and receiver: %v", err)
			}
		})
	}
}

// maskedCohort runs rounds 1–3 for every client of cfg and returns the
// clients, the server and the masked inputs.
func maskedCohort(t *testing.T, cfg Config, inputs [][]uint64) (map[uint32]*Client, *Server, map[uint32]*MaskedInput) {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = srv.Config()
	clients := map[uint32]*Client{}
	for id := uint32(1); id <= uint32(cfg.N); id++ {
		c, err := NewClient(cfg, id, seededReader(42, id))
		if err != nil {
			t.Fatal(err)
		}
		clients[id] = c
		ak, err := c.AdvertiseKeys()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddKeys(ak); err != nil {
			t.Fatal(err)
		}
	}
	kbs, err := srv.KeyBundles()
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range clients {
		sk, err := c.ShareKeys(kbs[id])
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddShares(sk); err != nil {
			t.Fatal(err)
		}
	}
	sbs, err := srv.ShareBundles()
	if err != nil {
		t.Fatal(err)
	}
	masked := map[uint32]*MaskedInput{}
	for id, c := range clients {
		mi, err := c.MaskedInput(sbs[id], inputs[id-1])
		if err != nil {
			t.Fatal(err)
		}
		masked[id] = mi
		if err := srv.AddMaskedInput(mi); err != nil {
			t.Fatal(err)
		}
	}
	return clients, srv, masked
}

// TestRefuseBothSecrets: a coordinator that asks for both secrets of one
// client, directly or across two requests, or sends an inconsistent
// request, is refused.
func TestRefuseBothSecrets(t *testing.T) {
	cfg, inputs := randomInputs(t, Config{Round: 5, N: 10, Bits: 4, Length: 8}, 2)
	clients, srv, _ := maskedCohort(t, cfg, inputs)
	cfg = srv.Config()
	g, _ := cfg.Graph()
	c := clients[1]
	nb := g.Neighbours(1)
	victim := nb[0]
	all := idsExcept(cfg.N)
	without := func(list []uint32, drop ...uint32) []uint32 {
		var out []uint32
		for _, id := range list {
			if !member(drop, id) {
				out = append(out, id)
			}
		}
		return out
	}
	refused := func(name string, req *UnmaskRequest, wantMsg string) {
		t.Helper()
		_, err := c.Unmask(req)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: not refused: %v", name, err)
		}
		if !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("%s: error %q does not contain %q", name, err, wantMsg)
		}
	}
	refused("listed in both", &UnmaskRequest{Round: 5, Survivors: all, Dropped: ids(victim)},
		fmt.Sprintf("client %d is listed both as a survivor and as dropped", victim))
	refused("listed twice", &UnmaskRequest{Round: 5, Survivors: append(all, victim)}, "listed twice")
	refused("too few survivors", &UnmaskRequest{Round: 5, Survivors: ids(1, 2), Dropped: without(all, 1, 2)}, "only 2 survivors")
	refused("self dropped", &UnmaskRequest{Round: 5, Survivors: without(all, 1), Dropped: ids(1)}, "lists this client as dropped")
	refused("neighbour missing", &UnmaskRequest{Round: 5, Survivors: without(all, victim)},
		fmt.Sprintf("neighbour %d is listed neither", victim))
	refused("wrong round", &UnmaskRequest{Round: 6, Survivors: all}, "round 6")
	refused("not in cohort", &UnmaskRequest{Round: 5, Survivors: append(all, 99)}, "client 99 is not in the cohort")

	// A first request claims victim dropped: the client reveals its
	// mask-key share. A second one claims it survived: revealing its
	// self-mask share too would give the server both secrets.
	resp, err := c.Unmask(&UnmaskRequest{Round: 5, Survivors: without(all, victim), Dropped: ids(victim)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range resp.Shares {
		want := SelfMaskShare
		if rs.Owner == victim {
			want = MaskKeyShare
		}
		if rs.Kind != want {
			t.Fatalf("revealed %s share of %d, want %s", rs.Kind, rs.Owner, want)
		}
	}
	if len(resp.Shares) != len(nb) {
		t.Fatalf("revealed %d shares, client has %d neighbours", len(resp.Shares), len(nb))
	}
	refused("both across requests", &UnmaskRequest{Round: 5, Survivors: all},
		fmt.Sprintf("would reveal both its secrets: its mask-key seed share was revealed earlier"))
	// Repeating the first request is harmless and answered.
	if _, err := c.Unmask(&UnmaskRequest{Round: 5, Survivors: without(all, victim), Dropped: ids(victim)}); err != nil {
		t.Fatalf("repeated consistent request refused: %v", err)
	}

	// The honest request still works for another client.
	req, err := srv.UnmaskRequest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients[2].Unmask(req); err != nil {
		t.Fatal(err)
	}
}

// TestServerRejects: the server refuses malformed and out-of-phase
// messages without changing state.
func TestServerRejects(t *testing.T) {
	cfg := Config{Round: 4, N: 5, Bits: 4, TotalWeight: 5, Length: 8}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewClient(cfg, 1, seededReader(1, 1))
	ak, _ := c.AdvertiseKeys()
	bad := *ak
	bad.Round = 5
	if err := srv.AddKeys(&bad); err == nil {
		t.Fatal("wrong round accepted")
	}
	bad = *ak
	bad.ConfigDigest[0] ^= 1
	if err := srv.AddKeys(&bad); err == nil || !strings.Contains(err.Error(), "different round configuration") {
		t.Fatalf("foreign config: %v", err)
	}
	bad = *ak
	bad.ShareKey = bad.ShareKey[:31]
	if err := srv.AddKeys(&bad); err == nil {
		t.Fatal("short key accepted")
	}
	bad = *ak
	bad.ID = 6
	if err := srv.AddKeys(&bad); err == nil {
		t.Fatal("id outside cohort accepted")
	}
	if err := srv.AddKeys(ak); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddKeys(ak); err == nil {
		t.Fatal("duplicate accepted")
	}
	if err := srv.AddMaskedInput(&MaskedInput{Round: 4, ID: 1}); err == nil {
		t.Fatal("masked input accepted in round 1")
	}
	if _, err := srv.KeyBundles(); err == nil || !strings.Contains(err.Error(), "round abandoned: 1 clients advertised keys, threshold 3") {
		t.Fatalf("closing round 1 with one client: %v", err)
	}
}

// TestClientRejects: a client refuses bundles that do not fit the round.
func TestClientRejects(t *testing.T) {
	cfg, inputs := randomInputs(t, Config{Round: 8, N: 10, Bits: 4, Length: 8}, 4)
	srv, _ := NewServer(cfg)
	cfg = srv.Config()
	g, _ := cfg.Graph()
	clients := map[uint32]*Client{}
	for id := uint32(1); id <= 10; id++ {
		c, _ := NewClient(cfg, id, seededReader(3, id))
		clients[id] = c
		ak, _ := c.AdvertiseKeys()
		if err := srv.AddKeys(ak); err != nil {
			t.Fatal(err)
		}
	}
	kbs, _ := srv.KeyBundles()
	// A non-neighbour's keys in the bundle.
	var stranger uint32
	for id := uint32(2); id <= 10; id++ {
		if !g.Adjacent(1, id) {
			stranger = id
			break
		}
	}
	kb := *kbs[1]
	kb.Keys = append(append([]AdvertiseKeys(nil), kb.Keys...), kbs[stranger].Keys[0])
	kb.Keys[len(kb.Keys)-1].ID = stranger
	if _, err := clients[1].ShareKeys(&kb); err == nil || !strings.Contains(err.Error(), "not a neighbour") {
		t.Fatalf("stranger's keys: %v", err)
	}
	// Too few neighbours with keys.
	kb = *kbs[1]
	kb.Keys = kb.Keys[:cfg.Threshold-1]
	if _, err := clients[1].ShareKeys(&kb); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("too few keys: %v", err)
	}
	// The honest bundle still works after the refusals.
	for id, c := range clients {
		sk, err := c.ShareKeys(kbs[id])
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddShares(sk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := clients[1].ShareKeys(kbs[1]); err == nil {
		t.Fatal("shared twice")
	}
	sbs, _ := srv.ShareBundles()
	if _, err := clients[1].MaskedInput(sbs[1], inputs[0][:7]); err == nil {
		t.Fatal("short input accepted")
	}
	big := append([]uint64(nil), inputs[0]...)
	big[3] = 1 << cfg.ModulusBits()
	if _, err := clients[1].MaskedInput(sbs[1], big); err == nil {
		t.Fatal("oversized value accepted")
	}
	if _, err := clients[1].MaskedInput(sbs[2], inputs[0]); err == nil {
		t.Fatal("someone else's bundle accepted")
	}
	if _, err := clients[1].Unmask(&UnmaskRequest{Round: 8}); err == nil {
		t.Fatal("unmask before masked input")
	}
	if _, err := clients[1].MaskedInput(sbs[1], inputs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[1].MaskedInput(sbs[1], inputs[0]); err == nil {
		t.Fatal("masked twice")
	}
}
