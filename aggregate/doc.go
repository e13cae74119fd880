// Package aggregate combines clients' adapters into a new global adapter:
// weighted FedAvg of the factors (the common practice, biased for products of
// factors), a Kron-aware exact rule that sums the clients' ΔW in factored form
// and re-fits one Kron-LoRA to it, and coordinate-wise robust rules. Pure
// functions over adapter Sets: no network, no disk.
package aggregate
