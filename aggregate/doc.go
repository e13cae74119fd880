// Package aggregate combines clients' adapters into a new global adapter:
// weighted FedAvg of the factors (the common practice, biased for products of
// factors), a Kron-aware exact rule that sums the clients' ΔW in factored form
// and re-fits one Kron-LoRA to it, and coordinate-wise robust rules; and
// client-level differential privacy for DP-FedAvg (dp.go: whole-update L2
// clipping, Gaussian noise on the clipped sum with a fixed denominator,
// adaptive clipping to a quantile of the update norms, local noise). Pure
// functions over adapter Sets: no network, no disk.
package aggregate
