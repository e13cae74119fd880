// Package secure holds kronfed's cryptographic material and operations: the
// federation's certificate authority and TLS configurations, payload
// encryption with age, and signatures.
//
// # Trust model
//
// One coordinator runs a federation and is its root of trust. [InitDir]
// creates, in a private folder, a certificate authority (an Ed25519 key and a
// self-signed X.509 certificate), the coordinator's TLS certificate, an age
// identity that uploads are encrypted to, a signing key for the coordinator's
// broadcasts and a gossip keyring secret. [Coordinator.Enroll] issues each
// client a [Bundle]: a client certificate and its key, the CA certificate,
// the coordinator's age recipient and verification key, and the gossip
// secret. Bundles are handed to clients out of band; they are the only
// thing a client needs, so no other key distribution exists.
//
// Three layers protect a round, each for a different reason:
//
//   - The channel is mutually authenticated TLS 1.3 ([ServerTLS],
//     [ClientTLS]). Both ends trust only the federation's CA (never the
//     system roots), so a client is whoever holds a certificate the
//     coordinator issued, and its name is that certificate's CN
//     ([ClientName]). Go's default curve preferences are kept on purpose: TLS
//     1.3 then negotiates the hybrid post-quantum key exchange
//     X25519MLKEM768, so recorded traffic stays confidential even against a
//     future quantum computer ("harvest now, decrypt later").
//
//   - Uploads are additionally encrypted to the coordinator's age recipient
//     ([Encrypt], [Decrypt]); the default recipient is hybrid
//     (ML-KEM-768 + X25519), post-quantum like the channel. TLS ends at the
//     first hop, so this keeps client updates confidential through relays,
//     load balancers and proxies, and the coordinator can persist the
//     ciphertext as received, so its disk and backups hold only ciphertext
//     until an aggregation decrypts it in memory.
//
//   - Uploads are signed with the client's TLS key ([SignWithKey]); the
//     coordinator verifies them with the public key of the client's
//     CA-issued certificate ([VerifyWithCert], [VerifyClientCert]). The
//     signature survives the channel: a stored or relayed upload can still be
//     attributed to the enrolled client that made it, and no extra key has
//     to be distributed. Broadcasts from the coordinator (round assignments,
//     global adapters) are signed with the coordinator's signing key
//     ([Signer]; Ed25519 by default, ML-DSA-65 or the hybrid
//     Ed25519-Dilithium2 for post-quantum signatures), which every bundle
//     carries as a [Verifier], so clients can check them however they got
//     them.
//
// Everything that parses input from files or the network returns an error
// that names what was wrong and never panics; the parsers are fuzzed.
package secure
