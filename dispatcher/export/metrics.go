package export

import "github.com/prometheus/client_golang/prometheus"

// Tables, the label values of the export's metrics (and its files' name prefixes).
const (
	TableOutcomes = "outcomes"
	TableRewards  = "rewards"
	TablePlayers  = "players"
	TableErasures = "erasures"
)

// Batch results, the label values of croupier_export_batches_total.
const (
	BatchWritten = "written"
	BatchFailed  = "failed"
)

// Metrics are the export's Prometheus figures; the alerts of config/prometheus read them
// (CroupierExportFailing, CroupierExportBehind).
type Metrics struct {
	// Rows counts the rows written, by table.
	Rows *prometheus.CounterVec
	// Batches counts batches written and failed (a failed batch is delivered again).
	Batches *prometheus.CounterVec
	// Failing is the batches failed in a row since the last one written.
	Failing prometheus.Gauge
	// LastWritten is when a batch was last written (Unix seconds).
	LastWritten prometheus.Gauge
	// Pending is what OUTCOMES and REWARDS hold that the export has not read yet, as of
	// its last batch.
	Pending *prometheus.GaugeVec
}

// NewMetrics makes the export's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_export_rows_total",
			Help: "Rows the warehouse export wrote, by table (outcomes, rewards, players, erasures); a batch written again after a crash counts again."},
			[]string{"table"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_export_batches_total",
			Help: "Warehouse export batches by result: written, or failed (its messages are delivered again and the batch retried)."},
			[]string{"result"}),
		Failing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "croupier_export_failing_batches",
			Help: "Warehouse export batches failed in a row since the last one written (0: writing)."}),
		LastWritten: prometheus.NewGauge(prometheus.GaugeOpts{Name: "croupier_export_last_written_timestamp_seconds",
			Help: "When the warehouse export last wrote a batch."}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_export_pending",
			Help: "Records of OUTCOMES and REWARDS the warehouse export has not read yet, as of its last batch, by table."},
			[]string{"table"}),
	}
	for _, t := range []string{TableOutcomes, TableRewards, TablePlayers, TableErasures} {
		m.Rows.WithLabelValues(t)
	}
	for _, r := range []string{BatchWritten, BatchFailed} {
		m.Batches.WithLabelValues(r)
	}
	for _, t := range []string{TableOutcomes, TableRewards} {
		m.Pending.WithLabelValues(t)
	}
	reg.MustRegister(m.Rows, m.Batches, m.Failing, m.LastWritten, m.Pending)
	return m
}

// idle zeroes what describes a running export (failing, pending) when this replica stops
// exporting: another replica's figures are the export's now, and a stale value here would
// keep an alert firing.
func (m *Metrics) idle() {
	if m == nil {
		return
	}
	m.Failing.Set(0)
	for _, t := range []string{TableOutcomes, TableRewards} {
		m.Pending.WithLabelValues(t).Set(0)
	}
}
