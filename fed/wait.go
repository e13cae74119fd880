package fed

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with jitter: the n-th wait (from 0) is
// drawn uniformly from [d/2, d] with d = min(Base·Factor^n, Max), so that
// many clients started together (a fleet rebooting, a coordinator
// restarting) do not knock in step.
type Backoff struct {
	Base, Max time.Duration
	Factor    float64
	Rand      *rand.Rand // nil: a generator seeded at random
}

// DefaultBackoff starts at half a second and grows to 15 s.
func DefaultBackoff() Backoff {
	return Backoff{Base: 500 * time.Millisecond, Max: 15 * time.Second, Factor: 2}
}

// Delay is the wait before retry n (n ≥ 0).
func (b *Backoff) Delay(n int) time.Duration {
	if b.Rand == nil {
		b.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	d := float64(b.Base)
	for i := 0; i < n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	d = min(d, float64(b.Max))
	return time.Duration(d/2 + b.Rand.Float64()*d/2)
}

// WaitForCoordinator probes addr (ProbeTLS) until a coordinator answers
// the TLS handshake, retrying with backoff for up to wait, and reports every
// failed try to onRetry (the error, the delay before the next, the time
// waited so far). A coordinator that refuses this client's certificate, or
// that this client does not trust, ends the wait at once: retrying cannot
// fix either.
func WaitForCoordinator(ctx context.Context, addr string, tlsConf *tls.Config, wait time.Duration, b Backoff,
	onRetry func(err error, next, waited time.Duration)) error {
	start := time.Now()
	for n := 0; ; n++ {
		err := ProbeTLS(ctx, addr, tlsConf)
		if err == nil || errors.Is(err, ErrCertificateRefused) || errors.Is(err, ErrUntrustedCoordinator) {
			return err
		}
		waited := time.Since(start)
		next := b.Delay(n)
		if waited+next > wait {
			return &WaitError{Addr: addr, Waited: waited, Err: err}
		}
		if onRetry != nil {
			onRetry(err, next, waited)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(next):
		}
	}
}

// WaitError says no coordinator answered at Addr within the wait.
type WaitError struct {
	Addr   string
	Waited time.Duration
	Err    error
}

func (e *WaitError) Error() string {
	return "no coordinator answered at " + e.Addr + " within " + e.Waited.Round(time.Second).String() + " (raise --wait to wait longer): " + e.Err.Error()
}

func (e *WaitError) Unwrap() error { return e.Err }
