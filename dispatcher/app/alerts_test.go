package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/teststorage"
	"sigs.k8s.io/yaml"

	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/freeport"
)

type alertRule struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
}

// alertRules reads config/prometheus/croupier-alerts.yaml.
func alertRules(t *testing.T) map[string]string {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "croupier-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Spec struct {
			Groups []struct {
				Rules []alertRule `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range doc.Spec.Groups {
		for _, r := range g.Rules {
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// scrapes holds samples scraped from a running dispatcher, stored with their scrape times
// in a Prometheus test storage, where the alert rules' expressions are evaluated.
type scrapes struct {
	t      *testing.T
	url    string
	st     *teststorage.TestStorage
	engine *promql.Engine
	last   time.Time
}

func newScrapes(t *testing.T, url string) *scrapes {
	return &scrapes{t: t, url: url, st: teststorage.New(t),
		engine: promql.NewEngine(promql.EngineOpts{MaxSamples: 1 << 20, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})}
}

// scrape reads /metrics once and appends every counter, gauge and histogram sample.
func (s *scrapes) scrape() {
	s.t.Helper()
	resp, err := http.Get(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now()
	ts := now.UnixMilli()
	ap := s.st.Appender(context.Background())
	add := func(name string, m *dto.Metric, v float64, extra ...string) {
		b := labels.NewBuilder(labels.EmptyLabels()).Set(labels.MetricName, name)
		for _, lp := range m.GetLabel() {
			b.Set(lp.GetName(), lp.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			b.Set(extra[i], extra[i+1])
		}
		if _, err := ap.Append(0, b.Labels(), ts, v); err != nil {
			s.t.Fatal(err)
		}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", m, float64(b.GetCumulativeCount()), "le", fmt.Sprint(b.GetUpperBound()))
				}
				add(name+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				add(name+"_sum", m, h.GetSampleSum())
				add(name+"_count", m, float64(h.GetSampleCount()))
			}
		}
	}
	if err := ap.Commit(); err != nil {
		s.t.Fatal(err)
	}
	s.last = now
}

// eval evaluates expr at the last scrape and returns the series it yields.
func (s *scrapes) eval(expr string) promql.Vector {
	s.t.Helper()
	q, err := s.engine.NewInstantQuery(context.Background(), s.st, nil, expr, s.last)
	if err != nil {
		s.t.Fatalf("%s: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		s.t.Fatalf("%s: %v", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		s.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// measure is the figure a rule compares: its expression without the final "> N".
var threshold = regexp.MustCompile(`(?s)^(.*?)\s*>\s*[0-9.]+\s*$`)

func measure(t *testing.T, expr string) string {
	m := threshold.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		t.Fatalf("alert expression %q does not end in a threshold", expr)
	}
	return m[1]
}

func healthAddr(t *testing.T) string { return freeport.Addr(t) }

func readyz(t *testing.T, addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A running dispatcher with a partition that cannot make progress (its events consumer
// paused on the server while events wait): /readyz fails naming it, the scraped figures
// make the stall alerts of config/prometheus fire (evaluated by the Prometheus engine) and
// not while healthy, the supervisor keeps counting its restarts; once the consumer runs
// again the partition heals and readiness returns.
func TestStalledPartitionFiresTheAlerts(t *testing.T) {
	rules := alertRules(t)
	for _, name := range []string{"CroupierPartitionStalled", "CroupierPartitionIdleWithWork", "CroupierPartitionRestarting", "CroupierPartitionsUnowned"} {
		if rules[name] == "" {
			t.Fatalf("config/prometheus has no alert %s", name)
		}
	}
	srv := bustest.Start(t, 2)
	_, js := srv.Connect(t)
	addr := healthAddr(t)
	stop := startWith(t, srv, app.Options{Partitions: 2, HealthAddr: addr, StallAfter: 2 * time.Second})
	t.Cleanup(func() { _ = stop() })
	bustest.Eventually(t, 30*time.Second, "ready", func() bool { st, _ := readyz(t, addr); return st == http.StatusOK })

	ctx := context.Background()
	var inZero []string
	for i := 0; len(inZero) < 20; i++ {
		if p := fmt.Sprintf("p-%d", i); bus.Partition(p, 2) == 0 {
			inZero = append(inZero, p)
		}
	}
	publish := func(tag string) {
		for _, p := range inZero {
			body := fmt.Sprintf(`{"specversion":"1.0","id":"%s-%s","source":"pam","type":"session.started","subject":%q,"data":{}}`, tag, p, p)
			if _, err := js.Publish(ctx, bus.EventSubject("baku", p, "session.started"), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("before")
	bustest.Eventually(t, 30*time.Second, "partition 0 consuming", func() bool {
		c, err := js.Consumer(ctx, bus.StreamEvents, "events-0")
		return err == nil && c.CachedInfo().NumPending == 0 && c.CachedInfo().AckFloor.Stream > 0
	})

	healthy := newScrapes(t, "http://"+addr+"/metrics")
	healthy.scrape()
	time.Sleep(time.Second)
	healthy.scrape()
	for name, expr := range rules {
		if strings.HasPrefix(name, "CroupierPartition") {
			if v := healthy.eval(expr); len(v) > 0 {
				t.Errorf("healthy dispatcher: alert %s fires: %v", name, v)
			}
		}
	}

	// The stall: the consumer is paused on the server, events wait in it.
	if _, err := js.PauseConsumer(ctx, bus.StreamEvents, "events-0", time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	publish("during")
	bustest.Eventually(t, time.Minute, "readyz failing for partition 0", func() bool {
		st, body := readyz(t, addr)
		return st == http.StatusServiceUnavailable && strings.Contains(body, "partitions [0]")
	})
	stalled := newScrapes(t, "http://"+addr+"/metrics")
	for range 4 {
		stalled.scrape()
		time.Sleep(2 * time.Second)
	}
	stalled.scrape()
	if v := stalled.eval(rules["CroupierPartitionStalled"]); len(v) != 1 || v[0].Metric.Get("partition") != "0" {
		t.Errorf("CroupierPartitionStalled: %v, want partition 0 alone", v)
	}
	idle := map[string]float64{}
	for _, s := range stalled.eval(measure(t, rules["CroupierPartitionIdleWithWork"])) {
		idle[s.Metric.Get("partition")] = s.F
	}
	if idle["0"] < 2 || idle["1"] != 0 {
		t.Errorf("idle seconds by partition: %v, want partition 0 at 2 s or more and partition 1 at 0", idle)
	}
	if v := stalled.eval(measure(t, rules["CroupierPartitionRestarting"])); len(v) == 0 {
		t.Error("no restarts counted while partition 0 was stalled")
	} else {
		for _, s := range v {
			if s.Metric.Get("reason") == "stalled" && s.F <= 0 {
				t.Errorf("restarts for reason stalled: %v", s)
			}
		}
	}
	if v := stalled.eval(rules["CroupierPartitionsUnowned"]); len(v) != 0 {
		t.Errorf("CroupierPartitionsUnowned fires while both partitions are held: %v", v)
	}

	// Healed: the consumer resumes, the partition drains, readiness returns.
	if _, err := js.ResumeConsumer(ctx, bus.StreamEvents, "events-0"); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, time.Minute, "ready again", func() bool { st, _ := readyz(t, addr); return st == http.StatusOK })
}

// A dispatcher exporting into a directory it cannot write: the batches fail, are retried,
// and CroupierExportFailing's expression holds (evaluated by the Prometheus engine); once
// the directory can be written every record arrives, the rows are counted, nothing is
// pending, and neither export alert holds.
func TestExportFailingFiresTheAlert(t *testing.T) {
	rules := alertRules(t)
	for _, name := range []string{"CroupierExportFailing", "CroupierExportBehind"} {
		if rules[name] == "" {
			t.Fatalf("config/prometheus has no alert %s", name)
		}
	}
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "export")
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := healthAddr(t)
	stop := startWith(t, srv, app.Options{HealthAddr: addr, ExportDir: dir, ExportKey: []byte("export-secret-0123456789")})
	t.Cleanup(func() { _ = stop() })
	const n = 25
	for i := range n {
		o := bus.Outcome{Time: time.Now().UTC(), DecisionID: fmt.Sprintf("d-%d", i), Brand: "baku", Player: fmt.Sprintf("p-%d", i),
			Kind: bus.OutcomeDecision, Result: "suppress", Reason: "quiet-hours"}
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, o.Player), b); err != nil {
			t.Fatal(err)
		}
	}
	failing := newScrapes(t, "http://"+addr+"/metrics")
	bustest.Eventually(t, time.Minute, "failed export batches counted", func() bool {
		failing.scrape()
		v := failing.eval(`croupier_export_batches_total{result="failed"}`)
		return len(v) == 1 && v[0].F >= 2
	})
	if v := failing.eval(rules["CroupierExportFailing"]); len(v) != 1 {
		t.Errorf("CroupierExportFailing while every batch fails: %v", v)
	}
	if v := failing.eval(`croupier_export_rows_total{table="outcomes"}`); len(v) != 1 || v[0].F != 0 {
		t.Errorf("rows counted while nothing could be written: %v", v)
	}
	// The directory becomes writable: the retried batch goes out.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	healed := newScrapes(t, "http://"+addr+"/metrics")
	bustest.Eventually(t, time.Minute, "every outcome exported and counted", func() bool {
		healed.scrape()
		v := healed.eval(`croupier_export_rows_total{table="outcomes"}`)
		return len(v) == 1 && v[0].F == n
	})
	files, _ := filepath.Glob(filepath.Join(dir, "brand=baku", "date=*", "outcomes-*.parquet"))
	if len(files) == 0 {
		t.Fatal("no outcomes file in the export directory")
	}
	for _, name := range []string{"CroupierExportFailing", "CroupierExportBehind"} {
		if v := healed.eval(rules[name]); len(v) != 0 {
			t.Errorf("%s holds once the export writes: %v", name, v)
		}
	}
	if v := healed.eval(`croupier_export_pending{table="outcomes"}`); len(v) != 1 || v[0].F != 0 {
		t.Errorf("outcomes pending after every one was exported: %v", v)
	}
	// What CroupierExportBehind compares: the backlog by table (named in its summary).
	behind := map[string]float64{}
	for _, v := range healed.eval(measure(t, rules["CroupierExportBehind"])) {
		behind[v.Metric.Get("table")] = v.F
	}
	if len(behind) != 2 || behind["outcomes"] != 0 || behind["rewards"] != 0 {
		t.Errorf("the export's backlog by table: %v", behind)
	}
	if v := healed.eval(`time() - croupier_export_last_written_timestamp_seconds`); len(v) != 1 || v[0].F > 300 {
		t.Errorf("the last written time: %v", v)
	}
}
