// Package cluster is kronfed's membership layer: discovery and failure
// detection for the coordinator and clients of one federation, over
// hashicorp/memberlist (SWIM gossip).
//
// # What gossip is for
//
// The coordinator and its clients form one gossip cluster. A client needs a
// single seed address (any member, usually the coordinator) to join; from
// then on every node learns every other node, and each node publishes a
// small Meta record: its Role, the coordinator's gRPC address, the base
// model identity, the adapter, the number of local examples and a compute
// capability. The coordinator uses this to choose a round's cohort among
// live clients (Node.Clients), and memberlist's probing notices clients that
// crash or lose the network within seconds, so a round need not wait for its
// deadline to learn that a cohort member is gone (Node.Events, MemberLeave;
// a graceful Leave is seen at once, a crash after memberlist's suspicion
// timeout).
//
// # What gossip is not for
//
// Gossip membership is advisory and never grants the right to take part in
// training. The authoritative enrolment of a client is its TLS client
// certificate, checked by the coordinator's gRPC server on every upload;
// update payloads are additionally encrypted and signed (package secure).
// The cluster key (Config.SecretKey, AES-GCM over all gossip) keeps
// outsiders from joining or reading the gossip, but every holder of the key
// can publish any metadata under any name: a Meta claiming RoleCoordinator
// or a gRPC address is a hint to be verified by TLS, not a credential.
// Clients must authenticate the coordinator's certificate before sending
// anything to the gRPC address they learned from gossip.
//
// # Lifecycle
//
// In the style of memberlist:
//
//	cfg := cluster.DefaultConfig("client-7")
//	cfg.Meta = cluster.Meta{Role: cluster.RoleClient, Model: "stories260K", Examples: 1200}
//	cfg.SecretKey = key // 16, 24 or 32 bytes, e.g. cluster.ParseKey(os.Getenv(...))
//	n, err := cluster.Create(cfg)    // listening, alone
//	_, err = n.Join(ctx, []string{"coordinator.example:7946"}) // retries until ctx
//	...
//	_ = n.Leave(ctx)  // peers see a graceful MemberLeave
//	_ = n.Shutdown()  // stops gossip, closes Events
//
// Members, Clients and Coordinator read the current view; Events delivers
// changes without ever blocking memberlist (a full channel drops the event
// and counts it in Stats). Config.Profile picks memberlist's LAN (default),
// WAN or local (fast, for tests and single-machine simulation) timings.
package cluster
