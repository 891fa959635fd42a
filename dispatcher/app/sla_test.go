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

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// TestMandatorySLAMetricsBackTheAlertRules runs a dispatcher that sends deposit receipts
// (a mandatory service SMS): one on time and one whose intent is ten minutes old. The
// metrics show both dispatches and one breach, and every metric the alert rules in
// config/prometheus use is exported.
func TestMandatorySLAMetricsBackTheAlertRules(t *testing.T) {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	ctx := context.Background()
	configureReceipts(t, js)
	stop := start(t, srv, parts, 100, "127.0.0.1:18092")
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	publish := func(subject, body string) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish(bus.EventSubject("baku", "p-1", "player.registered"),
		`{"specversion":"1.0","id":"reg-1","source":"pam.baku","type":"player.registered","subject":"p-1","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","phone":"+994501234567"}}`)
	publish(bus.EventSubject("baku", "p-1", "deposit.completed"),
		`{"specversion":"1.0","id":"dep-1","source":"pam.baku","type":"deposit.completed","subject":"p-1","data":{"amount":"25.00","currency":"AZN","method":"card","depositId":"dep-1"}}`)
	jobs := func() uint64 {
		st, err := js.Stream(ctx, bus.StreamDeliveries)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	bustest.Eventually(t, 10*time.Second, "the receipt's job", func() bool { return jobs() == 1 })
	// A receipt intent created ten minutes ago (a backlog, an outage) misses the 5m SLA.
	late := bus.Intent{ID: "late-1", Brand: "baku", Player: "p-1", Campaign: "deposit-receipt", Step: "send", FlowInstance: "late-1",
		Category: crmv1.CategoryService, Content: "receipt", Created: time.Now().Add(-10 * time.Minute)}
	raw, _ := bus.Encode(late)
	publish(bus.IntentSubject("baku", bus.Partition("p-1", parts), "p-1"), string(raw))
	bustest.Eventually(t, 10*time.Second, "the late receipt's job", func() bool { return jobs() == 2 })

	var metrics string
	bustest.Eventually(t, 5*time.Second, "the dispatch metrics", func() bool {
		resp, err := http.Get("http://127.0.0.1:18092/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		return strings.Contains(metrics, `croupier_mandatory_dispatch_seconds_count{category="service"} 2`)
	})
	for _, want := range []string{
		`croupier_sla_breaches_total{category="service"} 1`,
		`croupier_sla_breaches_total{category="responsibleGaming"} 0`,
		`croupier_mandatory_dispatch_seconds_bucket{category="service",le="0.25"} 1`,
		`croupier_mandatory_dispatch_seconds_bucket{category="service",le="300"} 1`,
		`croupier_mandatory_dispatch_seconds_bucket{category="service",le="+Inf"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	sends := regexp.MustCompile(`croupier_decisions_total\{category="service",reason="(Routed|MandatoryBypassQuietHours)",result="send"\} (\d+)`).FindAllStringSubmatch(metrics, -1)
	total := 0
	for _, m := range sends {
		var n int
		fmt.Sscan(m[2], &n)
		total += n
	}
	if total != 2 {
		t.Errorf("%d service sends counted, want 2: %v", total, sends)
	}

	rules, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "croupier-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`croupier_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 3 {
		t.Fatalf("the alert rules name %d metrics", len(used))
	}
	// Series that exist only after their first sample here, or come from the manager.
	elsewhere := map[string]string{
		"croupier_delivery_attempts_total":    "a counter per channel and provider, from the first delivery attempt",
		"croupier_campaign_budget_used_ratio": "the manager's (controllers/metrics.go)",
		// Checked where they run: TestExportFailingFiresTheAlert, reports' TestRunsCounted.
		"croupier_export_failing_batches": "only with the export configured (--export-dir)",
		"croupier_export_pending":         "only with the export configured (--export-dir)",
		"croupier_report_runs_total":      "a counter per brand and result, from the first report run",
	}
	for _, name := range used {
		name = strings.TrimSuffix(name, "_bucket")
		if _, ok := elsewhere[name]; ok {
			continue
		}
		if !strings.Contains(metrics, "# TYPE "+name+" ") {
			t.Errorf("an alert rule uses %s, which the dispatcher does not export", name)
		}
	}
}
