// Package fed is the federation's protocol: one round, from the
// coordinator's cohort to the published global adapter, as deterministic
// state machines with the network, disk and clock outside them.
//
//	coordinator (Server)                          client (Client)
//	CoordinatorMachine.Tick: select the cohort
//	  ─── signed RoundAssignment (NextRound) ──▶  ClientMachine: download the
//	                                              global version, train
//	                                              (Trainer), Δ = local − global
//	                                              [local DP: clip, noise Δ]
//	                                              quantize Δ (b bits, stochastic)
//	                                              [SecAgg+: mask on a common grid]
//	                                              encrypt (age), sign
//	  ◀── Upload: header + ciphertext (TLS) ───
//	upload path (server_upload.go): check the header against the round
//	(CheckUpload), verify, decrypt, decode Δ (DecodeUpdate), accept: the
//	receipt and the machine's new state in one transaction
//	at quorum or deadline (closeUploads) the publish path (server_publish.go):
//	the round's Δs — or with SecAgg+ only their sum — go to the aggregation
//	strategy (aggregate.Strategy: FedAvg, Kron-exact, median, trimmed mean,
//	FedAdam; central DP as a wrapper), then the new global, the strategy's
//	state and the machine's state are persisted together, and published
//	  ─── RoundResult, next assignment ───────▶
//
// Files:
//
//	coordinator_state.go    State (what is persisted), the effects, refusals
//	coordinator_machine.go  CoordinatorMachine: joins, member failures, uploads,
//	                        ticks in; effects out. Ready/Advance/Rollback tell
//	                        the driver what to persist before acting.
//	policy.go               Policy and DPPolicy: how rounds run, checked up front
//	server.go               Server, the coordinator's driver: clock, lock, effects
//	server_upload.go        the upload path
//	server_publish.go       the publish path
//	server_secagg.go        SecAgg+ stages on the coordinator
//	client_machine.go       ClientMachine, the client's round logic
//	client.go, client_secagg.go   Client, its driver
//	payload.go              what travels: signing bytes, adapter and update files
//	rule.go                 aggregation rules by name → aggregate strategies
//	grpc.go, memory.go      transports: gRPC with mutual TLS, and in-process
//
// Refusals (Refusal, with a RefusalKind) are the machines' own; the Server
// maps them to gRPC statuses, which both transports carry to the client.
package fed
