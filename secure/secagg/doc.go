// Package secagg implements SecAgg+ secure aggregation (Bell, Bonawitz,
// Gascón, Lepoint, Raykova: "Secure Single-Server Aggregation with
// (Poly)Logarithmic Overhead", CCS 2020): the coordinator learns the sum of
// the cohort's quantized updates and nothing else about any one of them.
// With Neighbours = N−1 it is the original SecAgg of Bonawitz et al.
// (CCS 2017).
//
// The package is transport-free. [Client] and [Server] are deterministic
// state machines whose methods take and return plain message structs; every
// message has MarshalBinary/UnmarshalBinary (versioned, length-checked,
// fuzzed) so that package fed can carry it as bytes over its authenticated
// channel. Nothing here does I/O, keeps a clock or starts a goroutine.
//
// # Parameters
//
// A [Config] fixes, for one round: the cohort of n clients with ids 1..n; k
// neighbours per client on a random Harary graph derived from a public seed
// ([Graph]; default k = 2⌈log2 n⌉, see [DefaultNeighbours], or the paper's
// search [RecommendedParams] for a stated fraction of corrupt and dropped
// clients); the Shamir threshold t, 1 < t <= k (default ⌊k/2⌋ + 1 + ⌊k/8⌋,
// see [DefaultThreshold]); b value bits and the cohort's total integer weight
// W, which give the modulus 2^M with M = b + ⌈log2 W⌉ (the sum cannot wrap;
// proof at [Config.ModulusBits]); the vector length L; and the key agreement,
// [X25519] (default) or the hybrid post-quantum [XWing].
//
// Inputs are fixed-point integers on a grid every client shares (DESIGN
// §3): [Encode] maps a clipped float vector to b-bit levels by stochastic
// rounding and multiplies by the client's weight; [DecodeSum] turns the
// unmasked sum back into Σ w_i x_i, unbiased. Masked vectors travel packed
// at M bits a value ([Pack]): at b = 4 and 100 unit-weight clients that is
// 11 bits a value rather than 32.
//
// # Message flow
//
//	client i                                   server
//	── round 1 ───────────────────────────────────────────────────────────
//	AdvertiseKeys: share key, mask key,  ───▶  AddKeys
//	  commitment to self-mask seed b_i
//	                                     ◀───  KeyBundles: each client gets
//	                                           its neighbours' keys
//	── round 2 ───────────────────────────────────────────────────────────
//	ShareKeys: Shamir-share b_i and the  ───▶  AddShares
//	  mask-key seed among the neighbours
//	  with keys (threshold t), seal each
//	  pair of shares to its holder
//	                                     ◀───  ShareBundles: each client gets
//	                                           the shares sealed to it
//	── round 3 ───────────────────────────────────────────────────────────
//	MaskedInput: open the shares, send   ───▶  AddMaskedInput: add to the
//	  y_i packed at M bits                     running sum
//	                                     ◀───  UnmaskRequest: survivors U
//	                                           (inputs arrived), dropped D
//	                                           (shared, sent no input)
//	── round 4 ───────────────────────────────────────────────────────────
//	Unmask: per neighbour, the b-share   ───▶  AddUnmask
//	  if it is in U, the mask-key share
//	  if it is in D, never both; refuse
//	  inconsistent requests
//	                                           Result: reconstruct, strip
//	                                           masks, Σ_{i∈U} x_i mod 2^M
//
// A client that misses a round is simply absent from the next one: missing
// round 1 or 2 it is left out of everyone's masks; missing round 3 it is in
// D and its pairwise masks are reconstructed and removed; missing only round
// 4 its input still counts. The server needs t shares of each secret it
// reconstructs and at least t survivors; otherwise it reports why the round
// cannot be completed ("round abandoned: 3 survivors, threshold 4") and
// returns nothing partial.
//
// # Masking
//
// Client i, with neighbours S that completed round 2, sends
//
//	y_i = x_i + PRG(b_i) + Σ_{j∈S, j>i} PRG(s_ij) − Σ_{j∈S, j<i} PRG(s_ij)   (mod 2^M)
//
// where b_i is a fresh self-mask seed (a random scalar, 32 bytes) and s_ij
// the secret i and j agree on (X25519: Diffie-Hellman of their mask keys;
// X-Wing: the lower id encapsulates to the higher id's mask key,
// deterministically from its own mask seed so that a reconstructed seed can
// redo it, and the server relays the ciphertext). The pairwise terms
// cancel in the sum over survivors; the server removes the self masks of
// survivors and the pairwise masks between survivors and dropped clients.
// PRG(K) is AES-256-CTR keyed by
// HKDF-SHA256(K, salt = config digest, info = label ‖ round ‖ ids), read as
// 1/2/4/8-byte little-endian words reduced mod 2^M (uniform, since 2^M
// divides the word range). Every key derivation is domain-separated by
// label, round, configuration digest and the ids involved.
//
// Secrets are shared with Shamir's scheme from circl's secretsharing
// package over the scalar field of Ristretto255 (integers modulo the prime
// ℓ ≈ 2^252; constant-time arithmetic from go-ristretto), evaluated at the
// holder's id. The two shared seeds are therefore drawn as uniform scalars
// (≈ 252 bits of entropy) and a seed or a share is one scalar's canonical
// 32-byte encoding; a non-canonical share is an error naming its holder.
// Shares travel sealed with AES-256-GCM under a key from HKDF of the
// share-channel agreement (X25519 DH, or an X-Wing encapsulation to the
// receiver), with the configuration digest, round, sender and receiver as
// associated data; a share that fails to open is an error naming its
// sender. The server checks every reconstructed seed against the owner's
// commitment (self-mask seed) or advertised mask key (mask-key seed), so
// inconsistent shares make the round fail, never produce a wrong sum.
//
// # Threat model: what SecAgg+ guarantees
//
//   - Honest-but-curious server, colluding with a set C of clients: the
//     server and C learn nothing about the inputs of honest clients beyond
//     the sum over the survivors U (and the membership of U and D),
//     provided that (a) every honest client has fewer than t neighbours in C
//     and (b) the graph of honest survivors, with edges between neighbours,
//     is connected. Otherwise the server may learn separate sums of the
//     connected components, or, for a client with t corrupt neighbours, its
//     input. The Harary graph is k-connected, so (b) holds whenever fewer
//     than k clients are corrupt or dropped; for larger fractions it holds
//     with the probability [RecommendedParams] bounds (2^−40 for its
//     parameters, not for the defaults).
//   - Server that lies about dropouts (semi-malicious in the paper): each
//     honest client reveals, for each neighbour, at most one of its two
//     secrets, remembers what it revealed across requests, and refuses
//     requests that contradict what it saw ([Client.Unmask]). The server
//     then obtains both secrets of an honest client only with t shares of
//     each, which needs 2t <= k + c where c is the number of that client's
//     corrupt neighbours. The default threshold keeps 2t − k > c for
//     c <= 1 + 2⌊k/8⌋; use RecommendedParams(…, true) for a stated fraction.
//   - Secrets are information-theoretically hidden from fewer than t share
//     holders; masks are computationally hidden (AES, HKDF-SHA256,
//     X25519 or X-Wing). A single masked vector is uniformly distributed
//     mod 2^M (tested with a chi-square test).
//
// # What it does not guarantee
//
//   - No protection against a fully malicious server beyond the
//     both-secrets refusal. There is no consistency round (the signed
//     survivor lists of Bonawitz et al.'s malicious variant): the server may
//     show different clients different views of U and D, within the limit
//     above. Public keys are not authenticated by this package: a server
//     that substitutes a neighbour's keys in a KeyBundle learns the shares
//     and pairwise secret meant for that neighbour. The transport (package
//     fed) must bind AdvertiseKeys to the enrolled client, e.g. by signing it
//     with the client's certificate key and having neighbours verify it.
//   - No protection against malicious clients: a client can submit any
//     value mod 2^M (no range proofs, no robustness), or send bad shares so
//     that the round fails (detected, not silently wrong).
//   - No differential privacy by itself: the survivors' sum is exact. DP
//     noise must be added by clients before masking (distributed DP) or to
//     the unmasked sum (central DP, which trusts the server). The survivor
//     set, the cohort size and the number of values are public; a server
//     that controls cohorts across rounds can difference sums that differ
//     in one client, which only per-round DP or cohort rules prevent.
//   - The sum over few survivors says a lot about each: only |U| >= t is
//     enforced.
//   - With X25519, an adversary that records the round and later has a
//     quantum computer can recompute every shared key, open every share and
//     unmask every input ("harvest now, decrypt later"). XWing closes this
//     at the price of 1216-byte keys and 1120-byte ciphertexts.
//   - Weights: [DecodeSum] needs the survivors' total weight. If weights
//     must stay private, send each weight as one more coordinate (it fits
//     modulo 2^M, see [Config.ModulusBits]) and decode it from the sum.
//
// # Cost
//
// A client sends two public keys, k sealed share pairs (92 bytes each, plus
// 1120-byte encapsulations with X-Wing), ⌈L·M/8⌉ bytes of masked input and k
// revealed shares of 37 bytes. It computes k+1 mask streams of L values.
// The server computes |U| self-mask streams, one stream per (dropped
// client, surviving neighbour) edge, and n Shamir reconstructions of
// degree t−1. BenchmarkSecAgg reports the figures.
package secagg
