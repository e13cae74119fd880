package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netnsPair is two network namespaces joined by a veth pair: the
// coordinator's side (A, address IPA) and the clients' (B, IPB), on a /24
// of their own — real, non-loopback interfaces on one machine.
type netnsPair struct {
	A, B     string
	VA, VB   string
	IPA, IPB string
}

// newNetnsPair creates the namespaces (removed at cleanup), or skips the
// test saying why where the kernel or the user does not allow it.
func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root): skipped")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2): skipped")
	}
	id := os.Getpid() % 10000
	n := &netnsPair{A: fmt.Sprintf("kf%d-coord", id), B: fmt.Sprintf("kf%d-clients", id),
		VA: fmt.Sprintf("kfa%d", id), VB: fmt.Sprintf("kfb%d", id),
		IPA: fmt.Sprintf("10.%d.%d.1", 100+id/100%100, id%100), IPB: fmt.Sprintf("10.%d.%d.2", 100+id/100%100, id%100)}
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", n.A); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { ip("netns", "del", n.A) })
	if err := ip("netns", "add", n.B); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { ip("netns", "del", n.B) }) // takes the veth pair with it
	for _, args := range [][]string{
		{"link", "add", n.VA, "type", "veth", "peer", "name", n.VB},
		{"link", "set", n.VA, "netns", n.A},
		{"link", "set", n.VB, "netns", n.B},
		{"-n", n.A, "addr", "add", n.IPA + "/24", "dev", n.VA},
		{"-n", n.B, "addr", "add", n.IPB + "/24", "dev", n.VB},
		{"-n", n.A, "link", "set", n.VA, "up"},
		{"-n", n.B, "link", "set", n.VB, "up"},
		{"-n", n.A, "link", "set", "lo", "up"},
		{"-n", n.B, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Skipf("cannot build the veth link here (the kernel or the container does not allow it): %v", err)
		}
	}
	return n
}

// netem adds delay and loss to both ends of the link (tc netem), or skips.
func (n *netnsPair) netem(t *testing.T, delay string, loss string) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("no tc command (iproute2): skipped")
	}
	for _, side := range [][2]string{{n.A, n.VA}, {n.B, n.VB}} {
		out, err := exec.Command("ip", "netns", "exec", side[0], "tc", "qdisc", "add", "dev", side[1], "root", "netem", "delay", delay, "loss", loss).CombinedOutput()
		if err != nil {
			t.Skipf("tc netem not available here: %v: %s", err, out)
		}
	}
}

// TestSeveralMachines runs a coordinator and three clients as if on two
// machines: the coordinator in one network namespace, the clients in
// another, joined by a veth link, so the certificate's IP name, the gRPC
// address and gossip all go over a real, non-loopback interface. Then the
// same federation over a link with 100 ms added latency and 1% loss each
// way (tc netem): rounds still complete.
func TestSeveralMachines(t *testing.T) {
	n := newNetnsPair(t)
	for _, impaired := range []bool{false, true} {
		t.Run(fmt.Sprintf("netem=%v", impaired), func(t *testing.T) {
			if impaired {
				n.netem(t, "100ms", "1%")
			}
			f := newFederation(t, 3, `[rounds]
rounds = 2
cohort = 3
quorum = 3
timeout = "90s"`, fmt.Sprintf("gossip = %q", n.IPA+":7946"), "--hosts", n.IPA)
			addr := n.IPA + ":7443"
			f.listenOn(t, addr)
			coord := start(t, "coordinator", "ip", "netns", "exec", n.A, f.coord, "serve", "--config", f.config, "--linger", "5s")
			coord.waitFor(t, `listening on `+strings.ReplaceAll(addr, ".", `\.`), 30*time.Second)
			var clients []*proc
			for i := range f.bundles {
				clients = append(clients, start(t, fmt.Sprintf("client c%d", i), "ip", "netns", "exec", n.B, f.client, "join",
					"--coordinator", addr, "--bundle", f.bundles[i], "--model", f.modelPath, "--task", "add-mod-10",
					"--shard", fmt.Sprintf("%d/3", i), "--eval-limit", "8", "--train-limit", "16",
					"--gossip-seed", n.IPA+":7946", "--gossip-bind", n.IPB+":0"))
			}
			res := f.finish(t, coord, clients, 180*time.Second, 2)
			for _, r := range res {
				if r.Outcome != "published" || len(r.Clients) != 3 {
					t.Fatalf("round %d: %v", r.Round, r)
				}
			}
			logLines(t, coord, "member joined")
		})
	}
}
