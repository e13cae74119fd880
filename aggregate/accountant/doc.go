// Package accountant is the Rényi-DP privacy accountant for client-level
// DP-FedAvg: it says how much (ε, δ) differential privacy a training run has
// spent, decides whether one more round fits in a budget, and calibrates the
// noise for a target ε.
//
// # What is accounted
//
// The protected unit is a client: two populations are neighbours when they
// differ in one client's entire data (client-level DP, McMahan et al. 2018,
// "Learning Differentially Private Recurrent Language Models"). One federated
// round is one step of the subsampled Gaussian mechanism:
//
//   - the coordinator samples a cohort, each client with probability q
//     (Poisson: q = expected cohort / population) or exactly m of n
//     (WithoutReplacement: q = m/n);
//   - each sampled client's update (local − global factors) is clipped to L2
//     norm C;
//   - Gaussian noise N(0, (z·C)² I) is added once to the sum of the clipped
//     updates; z is the noise multiplier;
//   - the noisy sum, divided by a data-independent constant (e.g. the expected
//     cohort size q·n, not the number of clients that actually reported), is
//     released as the new global adapter. Everything computed from it later
//     is post-processing and free.
//
// Accountant.Compose(z, q, 1) records one round; rounds compose by adding RDP
// at every order α. Epsilon(δ) converts the total to (ε, δ). The guarantee
// covers every global adapter released by the accounted rounds together.
//
// # The bounds
//
// Poisson sampling uses the RDP of the Poisson-subsampled Gaussian mechanism
// (Mironov, Talwar, Zhang 2019), exact at integer orders (binomial expansion)
// and at fractional orders (their two-series formula, signed terms), see
// PoissonRDP. Fixed-size sampling uses the upper bound of Wang, Balle,
// Kasiviswanathan 2019, Theorem 27, as dp_accounting evaluates it (with its
// forward differences computed accurately also for large noise), see
// WithoutReplacementRDP. Conversion to (ε, δ) uses Balle et al. 2020, Prop. 12
// (never worse than the classic ε = rdp + log(1/δ)/(α−1)), minimized over the
// order: first on SearchOrders (dp_accounting's DEFAULT_RDP_ORDERS and
// Opacus's DEFAULT_ALPHAS together), then by a golden-section search at
// fractional orders between the best point's neighbours, evaluated from the
// composed rounds directly (OptimalEpsilon; the Accountant keeps them). So ε
// is never above either library's figure for the same bound: z = 1.5,
// q = 0.04, 2250 steps, δ = 1e-5 gives 7.32835 where Opacus's grid gives
// 7.32911 and dp_accounting's 7.32988.
//
// # Assumptions, and the factor 2
//
// Poisson sampling is analysed under add/remove-one adjacency: a client is
// present or absent, the population size is not public, and adding or removing one
// client changes the sum by at most C, so the Gaussian's noise multiplier is z.
// This is the setting of McMahan et al. 2018 and of dp_accounting's
// PoissonSampledDpEvent. It assumes the sampling is truly Poisson (independent
// coins, kept secret). Sampled clients that drop out only lower the effective
// rate, so accounting with q stays valid provided dropping out does not depend
// on their data; topping a cohort up with replacement clients is not covered.
//
// Fixed-size sampling is analysed under replace-one adjacency: the population
// size n is public, neighbours swap one client for another. Replacing one
// client's clipped update u by u' changes the sum by u − u', of norm up to 2C,
// so with noise std z·C the Gaussian's noise multiplier relative to the
// sensitivity is z/2. Accountant.Compose takes the same z (noise std / C) for
// both samplings and halves it for WithoutReplacement itself; the low-level
// WithoutReplacementRDP (like dp_accounting's SampledWithoutReplacementDpEvent)
// takes the multiplier relative to the replace-one sensitivity, so pass z/2
// there. Forgetting the factor (using z where z/2 belongs) credits twice the
// noise actually effective and understates ε by about a factor of 2 (RDP
// scales like 1/z²). A replace-one ε is not directly comparable with an
// add/remove ε: one replacement is a removal plus an addition, so by group
// privacy an add/remove-(ε, δ) guarantee implies replace-one-(2ε, (1+e^ε)δ),
// not (ε, δ).
//
// Fractional orders under fixed-size sampling interpolate the cumulant
// between the neighbouring integers (as dp_accounting does); for α ∈ (1, 2)
// that gives RDP(α) = RDP(2).
//
// # Reading ε
//
// (ε, δ) client-level DP means: for any set S of possible sequences of
// released global adapters, and any two populations differing in one client,
// P[release ∈ S] ≤ e^ε · P'[release ∈ S] + δ. In particular any test, by an
// adversary who sees everything released and knows every other client's data,
// of whether a given client took part has true- and false-positive rates with
// TPR ≤ e^ε·FPR + δ. Choose δ well below 1/population (at δ ≈ 1/population a
// mechanism that publishes one random client's data outright qualifies).
// ε ≤ 1 is a strong guarantee; ε of a few units is common in reported
// federated deployments; large ε (≳ 10) bounds an attacker's advantage only
// weakly, even where attacks remain hard in practice. The guarantee is about the released models only: the coordinator sees
// individual updates unless secure aggregation hides them (central DP trusts
// the coordinator to add the noise), and it says nothing about clients' own
// devices.
//
// The accounting is only as good as its inputs: z must be the noise actually
// added relative to the clipping norm actually enforced, q the sampling rate
// actually used, and every released round must be composed, including rounds
// whose results were later discarded.
package accountant
