package fed

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the coordinator's Prometheus series.
type Metrics struct {
	Rounds          *prometheus.CounterVec   // by outcome: published, abandoned
	Uploads         *prometheus.CounterVec   // by result (accepted, refused) and reason
	WireBytes       prometheus.Counter       // ciphertext bytes of accepted uploads
	RawBytes        prometheus.Counter       // the same updates as float32
	UploadSeconds   prometheus.Histogram     // receive → durable acknowledgement
	AggregateSecond prometheus.Histogram     // decrypt + decode + aggregate + persist
	RoundSeconds    *prometheus.HistogramVec // round start → close, by outcome
	Members         prometheus.Gauge         // live joined clients
	Round           prometheus.Gauge         // current round number
	GlobalVersion   prometheus.Gauge
	AggregationErr  prometheus.Gauge // last exact rule's re-fit error
	Epsilon         prometheus.Gauge // privacy spent (DP)
	// SecAggSurvivors is how many masked inputs the last secure
	// aggregation summed (0 without secure aggregation).
	SecAggSurvivors prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered anywhere, for tests and simulations).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "kronfed"
	m := &Metrics{
		Rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rounds_total",
			Help: "Rounds closed, by outcome."}, []string{"outcome"}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "uploads_total",
			Help: "Uploads received, by result and refusal reason."}, []string{"result", "reason"}),
		WireBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "upload_wire_bytes_total",
			Help: "Encrypted bytes of accepted uploads."}),
		RawBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "upload_raw_bytes_total",
			Help: "The same accepted updates' size as float32 factors."}),
		UploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "upload_seconds",
			Help: "Time from an upload's last byte to its durable acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		AggregateSecond: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "aggregate_seconds",
			Help: "Time to decrypt, decode, aggregate and persist a round.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		RoundSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "round_seconds",
			Help: "Round duration from start to publication or abandonment.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 18)}, []string{"outcome"}),
		Members: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "members",
			Help: "Joined clients currently live."}),
		Round: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "round",
			Help: "Current round number."}),
		GlobalVersion: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "global_version",
			Help: "Published global adapter version."}),
		AggregationErr: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "aggregation_relative_error",
			Help: "Largest per-module relative error of the last exact rule's re-fit (kron-exact, lora-exact, hetero-exact)."}),
		Epsilon: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "privacy_epsilon",
			Help: "Differential privacy spent so far (ε at the federation's δ; 0 without DP)."}),
		SecAggSurvivors: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "secagg_survivors",
			Help: "Masked inputs in the last secure-aggregation sum (0 without secure aggregation)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Rounds, m.Uploads, m.WireBytes, m.RawBytes, m.UploadSeconds, m.AggregateSecond,
			m.RoundSeconds, m.Members, m.Round, m.GlobalVersion, m.AggregationErr, m.Epsilon, m.SecAggSurvivors)
	}
	return m
}
