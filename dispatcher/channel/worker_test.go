package channel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/freeport"
)

// endpoint is a webhook receiver whose answers a test scripts; it records every request.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []request
	answer func(n int, r *http.Request) (status int, header http.Header)
}

type request struct {
	at   time.Time
	key  string
	sig  string
	body webhook.Body
	raw  []byte
}

func newEndpoint(t *testing.T, answer func(n int, r *http.Request) (int, http.Header)) *endpoint {
	e := &endpoint{answer: answer}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var b webhook.Body
	_ = json.Unmarshal(raw, &b)
	e.mu.Lock()
	e.got = append(e.got, request{at: time.Now(), key: r.Header.Get(webhook.IdempotencyKeyHeader), sig: r.Header.Get(ingest.SignatureHeader), body: b, raw: raw})
	n := len(e.got)
	e.mu.Unlock()
	status, h := 200, http.Header(nil)
	if e.answer != nil {
		status, h = e.answer(n, r)
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (e *endpoint) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.got...)
}

func provider(name, url string, cost string) crmv1.Provider {
	p := crmv1.Provider{Name: name, Type: crmv1.ProviderWebhook, Endpoint: url, SecretRef: &crmv1.LocalObjectReference{Name: "hook"},
		Timeout: &metav1.Duration{Duration: 300 * time.Millisecond}}
	if cost != "" {
		p.Cost = &crmv1.Money{Amount: cost, Currency: "AZN"}
	}
	return p
}

func policy(attempts int32, providers ...crmv1.Provider) *bus.ChannelPolicyConfig {
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook, Providers: providers,
		Retry: &crmv1.RetryPolicy{MaxAttempts: attempts, InitialBackoff: &metav1.Duration{Duration: 20 * time.Millisecond},
			MaxBackoff: &metav1.Duration{Duration: 2 * time.Second}}}, ProviderCosts: map[string]bus.MicroAmount{}}
	for _, p := range providers {
		if p.Cost != nil {
			cfg.ProviderCosts[p.Name] = bus.MicroAmount{Micros: 5000, Currency: p.Cost.Currency}
		}
	}
	return cfg
}

var (
	webhookFactory = channel.Factory(webhook.New)
	hookSecrets    = channel.StaticSecrets{"baku/hook": {ingest.SecretHMACKey: []byte("hook-key")}}
)

// run starts a webhook worker for brand baku on cfg.
func run(t *testing.T, cfg *bus.ChannelPolicyConfig) *channeltest.Rig {
	return channeltest.Run(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderWebhook: webhookFactory}, hookSecrets)
}

func job(t *testing.T, r *channeltest.Rig, player, decision string) {
	r.Publish(t, bus.DeliveryJob{DecisionID: decision, Player: player, Campaign: "deposit-receipt", Step: "send",
		Locale: "az", TemplateID: "receipt/webhook/az", ContentHash: "h1", To: player, Text: "25.00 AZN depozit qəbul edildi"})
}

func TestTransientErrorsAreRetriedThenSentAndCostSettled(t *testing.T) {
	ep := newEndpoint(t, func(n int, _ *http.Request) (int, http.Header) {
		if n <= 2 {
			return 503, nil
		}
		return 202, http.Header{"X-Message-Id": {"hook-77"}}
	})
	r := run(t, policy(3, provider("primary", ep.srv.URL, "0.005")))
	job(t, r, "p-1", "d-1")
	bustest.Eventually(t, 10*time.Second, "the sent attempt", func() bool { return strings.Contains(channeltest.Results(r.Attempts(t, "p-1")), ":sent:") })
	r.Drained(t)
	oc := r.Attempts(t, "p-1")
	if got := channeltest.Results(oc); got != "primary:retry:1 primary:retry:2 primary:sent:3" {
		t.Fatalf("attempts %s", got)
	}
	sent := oc[2]
	if sent.Kind != bus.OutcomeAttempt || sent.ProviderID != "hook-77" || sent.ProviderCost == nil || sent.ProviderCost.Micros != 5000 ||
		sent.TemplateID != "receipt/webhook/az" || sent.Category != "service" {
		t.Fatalf("sent outcome %+v", sent)
	}
	got := ep.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests", len(got))
	}
	for _, q := range got {
		if q.key != "d-1.webhook" || q.body.DecisionID != "d-1" || q.body.Text != "25.00 AZN depozit qəbul edildi" {
			t.Fatalf("request %+v", q)
		}
		ts := strings.TrimPrefix(strings.Split(q.sig, ",")[0], "t=")
		if want := ingest.SignatureFor([]byte("hook-key"), unix(t, ts), q.raw); q.sig != want {
			t.Fatalf("signature %q, want %q", q.sig, want)
		}
	}
	costs := r.Events(t, "p-1", "cost.settled")
	if len(costs) != 1 || !strings.Contains(string(costs[0].Data), `"amount":"0.005"`) || costs[0].Source != ingest.SourceCroupier {
		t.Fatalf("cost.settled %+v", costs)
	}
	if _, err := ingest.Decode("baku", "p-1", "cost.settled", mustJSON(t, costs[0])); err != nil {
		t.Fatalf("the owner would refuse the cost report: %v", err)
	}
	for _, o := range oc {
		if strings.Contains(o.Detail, "depozit") {
			t.Fatalf("an outcome holds the message text: %+v", o)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	ep := newEndpoint(t, func(n int, _ *http.Request) (int, http.Header) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"1"}}
		}
		return 200, nil
	})
	r := run(t, policy(3, provider("primary", ep.srv.URL, "")))
	job(t, r, "p-2", "d-2")
	r.Drained(t)
	got := ep.requests()
	if len(got) != 2 || got[1].at.Sub(got[0].at) < 950*time.Millisecond {
		t.Fatalf("%d requests; the retry came %s after a 429 with Retry-After: 1", len(got), got[len(got)-1].at.Sub(got[0].at))
	}
}

func TestFailoverToTheNextProviderAndPermanentErrors(t *testing.T) {
	down := newEndpoint(t, func(int, *http.Request) (int, http.Header) { return 500, nil })
	badKey := newEndpoint(t, func(int, *http.Request) (int, http.Header) { return 401, nil })
	slow := newEndpoint(t, func(int, *http.Request) (int, http.Header) { time.Sleep(time.Second); return 200, nil })
	up := newEndpoint(t, func(_ int, r *http.Request) (int, http.Header) {
		if strings.Contains(r.Header.Get(webhook.IdempotencyKeyHeader), "reject") {
			return 422, nil
		}
		return 200, nil
	})
	r := run(t, policy(2, provider("down", down.srv.URL, ""), provider("bad-key", badKey.srv.URL, ""), provider("slow", slow.srv.URL, ""), provider("up", up.srv.URL, "")))
	job(t, r, "p-3", "d-3")
	job(t, r, "p-4", "reject-4")
	r.Drained(t)
	// 5xx retried then failed over; 401 failed over at once; a timeout retried; then sent.
	if got := channeltest.Results(r.Attempts(t, "p-3")); got != "down:retry:1 down:failover:2 bad-key:failover:1 slow:retry:1 slow:failover:2 up:sent:1" {
		t.Fatalf("attempts %s", got)
	}
	if len(badKey.requests()) < 1 || len(down.requests()) < 2 {
		t.Fatalf("requests: down %d, bad key %d", len(down.requests()), len(badKey.requests()))
	}
	if fails := r.Events(t, "p-3", "delivery.failed"); len(fails) != 0 {
		t.Fatalf("a sent message reported failed: %+v", fails)
	}
	// 422 rejects the message: no other provider is tried, the owner is told.
	oc := r.Attempts(t, "p-4")
	if got := channeltest.Results(oc); !strings.HasSuffix(got, "up:failed:1") || strings.Count(got, "up:") != 1 {
		t.Fatalf("attempts of a rejected message %s", got)
	}
	fails := r.Events(t, "p-4", "delivery.failed")
	if len(fails) != 1 || !strings.Contains(string(fails[0].Data), `"decisionId":"reject-4"`) || !strings.Contains(string(fails[0].Data), `"channel":"webhook"`) {
		t.Fatalf("delivery.failed %+v", fails)
	}
	if _, err := ingest.Decode("baku", "p-4", "delivery.failed", mustJSON(t, fails[0])); err != nil {
		t.Fatalf("the owner would refuse the report: %v", err)
	}
}

func TestAProviderDownThenBackLosesNothing(t *testing.T) {
	// The port is reserved, closed (connection refused), then served again.
	addr := freeport.Addr(t)
	var flaky atomic.Int64
	ep := &endpoint{answer: func(int, *http.Request) (int, http.Header) {
		if flaky.Add(1)%3 == 0 {
			return 503, nil
		}
		return 200, nil
	}}
	cfg := policy(30, provider("only", "http://"+addr, ""))
	cfg.Spec.Retry.MaxBackoff = &metav1.Duration{Duration: 200 * time.Millisecond}
	r := run(t, cfg)
	const n = 200
	for i := range n {
		job(t, r, fmt.Sprintf("p-%d", i%20), fmt.Sprintf("d-%d", i))
	}
	time.Sleep(300 * time.Millisecond)
	var l2 net.Listener
	bustest.Eventually(t, 5*time.Second, "the port again", func() bool {
		var err error
		l2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := &http.Server{Handler: http.HandlerFunc(ep.serve)}
	go func() { _ = srv.Serve(l2) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.Drained(t)
	sent := map[string]int{}
	for i := range 20 {
		for _, o := range r.Attempts(t, fmt.Sprintf("p-%d", i)) {
			if o.Result == channel.ResultSent {
				sent[o.DecisionID]++
			}
		}
	}
	if len(sent) != n {
		t.Fatalf("%d of %d messages sent", len(sent), n)
	}
	received := map[string]bool{}
	for _, q := range ep.requests() {
		received[q.body.DecisionID] = true
	}
	if len(received) != n {
		t.Fatalf("the provider received %d of %d messages", len(received), n)
	}
}

// A job redelivered after its send was recorded (a crash, a lost acknowledgement) is not
// sent again; its cost report is repeated and deduplicated.
func TestARedeliveredJobThatWasSentIsNotSentAgain(t *testing.T) {
	ep := newEndpoint(t, nil)
	r := channeltest.New(t, crmv1.ChannelWebhook)
	job(t, r, "p-7", "d-7")
	job(t, r, "p-8", "d-8")
	ctx := context.Background()
	// A worker took both jobs, recorded d-7 as sent, and stopped before acknowledging.
	cons, err := r.JS.CreateOrUpdateConsumer(ctx, bus.StreamDeliveries, jetstream.ConsumerConfig{Durable: channel.ConsumerName(crmv1.ChannelWebhook),
		FilterSubject: bus.DeliveryFilter("webhook"), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	var taken []jetstream.Msg
	for m := range batch.Messages() {
		taken = append(taken, m)
	}
	if len(taken) != 2 {
		t.Fatalf("took %d jobs", len(taken))
	}
	sent, _ := bus.Encode(bus.Outcome{Time: time.Now(), DecisionID: "d-7", Brand: "baku", Player: "p-7", Kind: bus.OutcomeAttempt, Result: channel.ResultSent,
		Channel: crmv1.ChannelWebhook, Provider: "primary", Attempt: 1, ProviderCost: &bus.MicroAmount{Micros: 5000, Currency: "AZN"}})
	if _, err := r.JS.Publish(ctx, bus.OutcomeSubject("baku", bus.Partition("p-7", channeltest.Partitions), "p-7"), sent); err != nil {
		t.Fatal(err)
	}
	for _, m := range taken {
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	r.Start(t, policy(3, provider("primary", ep.srv.URL, "0.005")), map[crmv1.ProviderType]channel.Factory{crmv1.ProviderWebhook: webhook.New},
		channel.StaticSecrets{"baku/hook": {ingest.SecretHMACKey: []byte("hook-key")}})
	r.Drained(t)
	got := ep.requests()
	if len(got) != 1 || got[0].body.DecisionID != "d-8" {
		t.Fatalf("the provider got %d requests; only d-8 was never sent", len(got))
	}
	if c := r.Events(t, "p-7", "cost.settled"); len(c) != 1 {
		t.Fatalf("%d cost reports for d-7", len(c))
	}
}

func TestABadJobIsDeadLettered(t *testing.T) {
	r := run(t, policy(1, provider("only", "http://127.0.0.1:1", "")))
	if _, err := r.JS.Publish(context.Background(), bus.DeliverySubject("webhook", "baku", 0, "p-9"), []byte(`{"brand":"baku"}`)); err != nil {
		t.Fatal(err)
	}
	r.Drained(t)
	dl := bustest.Collect[bus.DeadLetter](t, r.JS, bus.StreamDeadLetter, bus.DeadLetterSubject(bus.StreamDeliveries))
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "not a delivery job") {
		t.Fatalf("dead letters %+v", dl)
	}
}

func unix(t *testing.T, s string) time.Time {
	var sec int64
	if _, err := fmt.Sscan(s, &sec); err != nil {
		t.Fatal(err)
	}
	return time.Unix(sec, 0)
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
