package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// receiver is a webhook provider on loopback that answers 503 while down and records the
// decisions it took (first time each) while up.
type receiver struct {
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	took map[string]time.Time
	// refused counts the posts answered 503.
	refused atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{took: map[string]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			r.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var b webhook.Body
		if json.Unmarshal(raw, &b) != nil || b.DecisionID == "" {
			http.Error(w, "not a webhook body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		if _, ok := r.took[b.DecisionID]; !ok {
			r.took[b.DecisionID] = time.Now()
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.took)
}

// mandatoryBrand publishes a brand whose service receipts go by webhook to endpoint, with
// the given retryFor, and registers n players.
func mandatoryBrand(t *testing.T, js jetstreamPublisher, brand, endpoint string, retryFor time.Duration, n int) {
	t.Helper()
	webhookOnly := []crmv1.CategoryChannel{{Channel: crmv1.ChannelWebhook, Default: crmv1.OptedIn}}
	records := []bus.ConfigRecord{
		{Kind: "PreferencePolicy", Brand: brand, Name: brand, UID: "pp-" + brand, Generation: 1,
			PreferencePolicy: &bus.PreferencePolicyConfig{Spec: crmv1.PreferencePolicySpec{DefaultTimeZone: "Asia/Baku", DefaultLanguage: "az", Languages: []string{"az"},
				Categories: []crmv1.CategoryPolicy{{Category: crmv1.CategoryService, Channels: webhookOnly, RetryFor: &metav1.Duration{Duration: retryFor}}}},
				Mandatory: map[crmv1.Category]bool{crmv1.CategoryService: true}}},
		{Kind: "ChannelPolicy", Brand: brand, Name: "webhook", UID: "cp-" + brand, Generation: 1,
			ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook,
				Providers: []crmv1.Provider{{Name: "hook", Type: crmv1.ProviderWebhook, Endpoint: endpoint, Timeout: &metav1.Duration{Duration: 2 * time.Second}}},
				Retry:     &crmv1.RetryPolicy{MaxAttempts: 2, InitialBackoff: &metav1.Duration{Duration: 50 * time.Millisecond}, MaxBackoff: &metav1.Duration{Duration: 100 * time.Millisecond}}}}},
		{Kind: "Campaign", Brand: brand, Name: "receipt", UID: "uid-receipt-" + brand, Generation: 1,
			Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{Category: crmv1.CategoryService,
				Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
				Steps:   []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "receipt"}}},
				Contents: []crmv1.Content{{Name: "receipt", Messages: []crmv1.Message{{Channel: crmv1.ChannelWebhook, Locale: "az",
					Body: "{{ .Event.depositId }}: depozit qəbul edildi."}}}}}}},
	}
	putConfig(t, bustest.KV(t, js.js, bus.BucketConfig), brand, records...)
	for i := range n {
		p := fmt.Sprintf("p-%d", i)
		js.publish(t, brand, p, "player.registered", "reg-"+p, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}`)
	}
}

// A mandatory receipt survives a provider outage shorter than its retryFor: the chain is
// tried again round after round and every receipt arrives once the provider is back, none
// recorded failed. One whose provider stays down past its retryFor is given up exactly
// once at the deadline: one MandatoryUndelivered outcome (what history and explain show),
// one dead letter, counted in croupier_mandatory_undelivered_total, which makes the
// CroupierMandatoryUndelivered alert fire; nothing of it is sent after. (make reliability
// runs the full-size outage in e2e/faults.)
func TestMandatoryMessagesRetriedUntilTheirDeadline(t *testing.T) {
	rules := alertRules(t)
	if rules["CroupierMandatoryUndelivered"] == "" {
		t.Fatal("config/prometheus has no alert CroupierMandatoryUndelivered")
	}
	const n = 12
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	pub := jetstreamPublisher{js: js}
	kept, lost := newReceiver(t), newReceiver(t)
	kept.down.Store(true)
	lost.down.Store(true)
	mandatoryBrand(t, pub, "kept", kept.srv.URL, 40*time.Second, n)
	mandatoryBrand(t, pub, "lost", lost.srv.URL, 10*time.Second, n)
	addr := healthAddr(t)
	stop := startWith(t, srv, app.Options{HealthAddr: addr, RetryBackoff: 500 * time.Millisecond})
	t.Cleanup(func() { _ = stop() })

	for _, brand := range []string{"kept", "lost"} {
		for i := range n {
			p := fmt.Sprintf("p-%d", i)
			pub.publish(t, brand, p, "deposit.completed", "dep-"+p, fmt.Sprintf(`{"amount":"20.00","currency":"AZN","method":"card","depositId":"d-%d"}`, i))
		}
	}
	scrapes := newScrapes(t, "http://"+addr+"/metrics")
	// Both providers refuse until every receipt has gone round its chain at least twice.
	bustest.Eventually(t, time.Minute, "every receipt of both brands in a second round", func() bool {
		return len(outcomesWith(t, js, "kept", n, flow.ReasonRetry)) >= n && len(outcomesWith(t, js, "lost", n, flow.ReasonRetry)) >= n
	})
	scrapes.scrape()
	kept.down.Store(false)
	upAt := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("kept", bus.Partition("p-0", parts), "p-0")) {
				t.Logf("kept p-0: %s %s %s %s %s %s", o.Time.Format("15:04:05.000"), o.Kind, o.Channel, o.Result, o.Reason, o.Detail)
			}
		}
	})
	waitGrowing(t, "every receipt of the kept brand after its provider is back", func() int { return kept.count() }, n)
	// The lost brand reaches its deadline: each receipt given up once.
	waitGrowing(t, "every receipt of the lost brand given up", func() int { return len(outcomesWith(t, js, "lost", n, flow.ReasonMandatoryUndelivered)) }, n)
	lostAt := time.Now()

	if got := outcomesWith(t, js, "kept", n, flow.ReasonMandatoryUndelivered, string(route.ReasonAllChannelsFailed)); len(got) > 0 {
		t.Errorf("the kept brand recorded %d receipts failed or undelivered, want none: %v", len(got), got[0].Detail)
	}
	if sched := outcomesWith(t, js, "kept", n, flow.ReasonRetryScheduled); len(sched) < n {
		t.Errorf("the kept brand scheduled %d retry rounds, want at least one per receipt", len(sched))
	}
	kept.mu.Lock()
	for did, at := range kept.took {
		if at.Before(upAt) {
			t.Errorf("receipt %s taken before the provider was back", did)
		}
	}
	kept.mu.Unlock()

	undelivered := outcomesWith(t, js, "lost", n, flow.ReasonMandatoryUndelivered)
	per := map[string]int{}
	for _, o := range undelivered {
		per[o.DecisionID]++
		if o.Result != "suppress" || !strings.Contains(o.Detail, "retryFor") || !strings.Contains(o.Detail, "dead-lettered") {
			t.Errorf("undelivered outcome %+v: want suppress naming the retryFor and the dead letter", o)
		}
	}
	for did, c := range per {
		if c != 1 {
			t.Errorf("decision %s recorded undelivered %d times, want once", did, c)
		}
	}
	if len(per) != n {
		t.Errorf("%d distinct receipts undelivered, want %d", len(per), n)
	}
	dead := 0
	for _, dl := range bustest.Collect[bus.DeadLetter](t, js, bus.StreamDeadLetter, bus.DeadLetterSubject(bus.StreamIntents)) {
		if strings.HasPrefix(dl.Reason, flow.ReasonMandatoryUndelivered) && strings.Contains(dl.Subject, ".lost.") {
			dead++
		}
	}
	if dead != n {
		t.Errorf("%d dead letters for the lost brand, want %d (one per receipt)", dead, n)
	}
	scrapes.scrape()
	v := scrapes.eval(rules["CroupierMandatoryUndelivered"])
	if len(v) != 1 || v[0].Metric.Get("brand") != "lost" || v[0].Metric.Get("category") != "service" || v[0].F < n {
		t.Errorf("CroupierMandatoryUndelivered: %v, want the lost brand's service category at %d", v, n)
	}
	// Nothing of the lost brand goes out after its deadline, even with the provider back.
	lost.down.Store(false)
	time.Sleep(3 * time.Second)
	if c := lost.count(); c != 0 {
		t.Errorf("%d receipts of the lost brand sent after they were given up at %s", c, lostAt.Format(time.RFC3339))
	}
	t.Logf("kept: %d receipts after %d refusals; lost: %d undelivered, %d dead letters, %d refusals", kept.count(), kept.refused.Load(), len(per), dead, lost.refused.Load())
}

// jetstreamPublisher publishes CloudEvents for a test.
type jetstreamPublisher struct{ js jetstream.JetStream }

func (p jetstreamPublisher) publish(t *testing.T, brand, player, typ, id, data string) {
	t.Helper()
	ev := `{"specversion":"1.0","id":"` + id + `","source":"pam","type":"` + typ + `","subject":"` + player + `","data":` + data + `}`
	if _, err := p.js.Publish(context.Background(), bus.EventSubject(brand, player, typ), []byte(ev)); err != nil {
		t.Fatal(err)
	}
}

// outcomesWith are the brand's players' outcomes with one of the reasons.
func outcomesWith(t *testing.T, js jetstream.JetStream, brand string, players int, reasons ...string) []bus.Outcome {
	t.Helper()
	var out []bus.Outcome
	for i := range players {
		p := fmt.Sprintf("p-%d", i)
		for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject(brand, bus.Partition(p, parts), p)) {
			for _, r := range reasons {
				if o.Reason == r {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// waitGrowing waits while f grows toward want, failing after 60 s without progress.
func waitGrowing(t *testing.T, what string, f func() int, want int) {
	t.Helper()
	last, since := -1, time.Now()
	for {
		got := f()
		if got >= want {
			return
		}
		if got != last {
			last, since = got, time.Now()
		}
		if time.Since(since) > time.Minute {
			t.Fatalf("%s: %d of %d and no progress for 60 s", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
