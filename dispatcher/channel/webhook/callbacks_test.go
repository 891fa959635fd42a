package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

type hookPolicy struct{ cfg *bus.ChannelPolicyConfig }

func (p hookPolicy) ChannelPolicy(_ string, ch crmv1.Channel) *bus.ChannelPolicyConfig {
	if ch != crmv1.ChannelWebhook {
		return nil
	}
	return p.cfg
}

func TestCallbacksAreSignedRetriedAndDeadLettered(t *testing.T) {
	srv := bustest.Start(t, 4)
	_, js := srv.Connect(t)
	var mu sync.Mutex
	got := map[string][]webhook.Callback{}
	posts := map[string]int{}
	casino := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(ingest.SignatureHeader)
		ts := strings.TrimPrefix(strings.Split(sig, ",")[0], "t=")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if sig != ingest.SignatureFor([]byte("cb-key"), time.Unix(sec, 0), raw) {
			w.WriteHeader(401)
			return
		}
		var cb webhook.Callback
		_ = json.Unmarshal(raw, &cb)
		mu.Lock()
		defer mu.Unlock()
		posts[r.URL.Path]++
		switch {
		case r.URL.Path == "/failed" && posts[r.URL.Path] == 1:
			w.WriteHeader(503) // once down
			return
		case r.URL.Path == "/broken":
			w.WriteHeader(500)
			return
		}
		got[r.URL.Path] = append(got[r.URL.Path], cb)
	}))
	defer casino.Close()
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook, Callbacks: &crmv1.Callbacks{
		Sent: casino.URL + "/sent", Delivered: casino.URL + "/delivered", Failed: casino.URL + "/failed",
		BonusActivated: casino.URL + "/broken", RewardGranted: casino.URL + "/rewards", SecretRef: &crmv1.LocalObjectReference{Name: "cb"}}}}
	cbs := &webhook.Callbacks{JS: js, Policies: hookPolicy{cfg}, Secrets: channel.StaticSecrets{"baku/cb": {ingest.SecretHMACKey: []byte("cb-key")}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxDeliver: 3, Backoff: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cbs.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	bustest.Eventually(t, 5*time.Second, "the consumers", func() bool {
		_, e1 := js.Consumer(ctx, bus.StreamOutcomes, webhook.CallbacksOutcomes)
		_, e2 := js.Consumer(ctx, bus.StreamEvents, webhook.CallbacksEvents)
		_, e3 := js.Consumer(ctx, bus.StreamRewards, webhook.CallbacksRewards)
		return e1 == nil && e2 == nil && e3 == nil
	})
	publish := func(o bus.Outcome) {
		o.Brand, o.Player, o.Time = "baku", "p-1", time.Now()
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", bus.Partition("p-1", 4), "p-1"), b); err != nil {
			t.Fatal(err)
		}
	}
	publish(bus.Outcome{DecisionID: "d-1", Kind: bus.OutcomeDecision, Result: "send", Reason: string(route.ReasonSent), Campaign: "welcome"})
	publish(bus.Outcome{DecisionID: "d-1", Kind: bus.OutcomeAttempt, Result: channel.ResultSent, Channel: crmv1.ChannelEmail, Provider: "relay", Campaign: "welcome"})
	publish(bus.Outcome{DecisionID: "d-1", Kind: bus.OutcomeReport, Result: bus.ReportDelivered, Channel: crmv1.ChannelEmail, Provider: "sendgrid"})
	publish(bus.Outcome{DecisionID: "d-2", Kind: bus.OutcomeDecision, Result: "suppress", Reason: string(route.ReasonAllChannelsFailed), Detail: "push, inApp", Campaign: "cashback"})
	publish(bus.Outcome{DecisionID: "d-3", Kind: bus.OutcomeFailover, Result: "suppress", Reason: "MandatoryUndelivered", Detail: "undelivered: tried [sms] in 4 rounds", Campaign: "receipt"})
	ev := `{"specversion":"1.0","id":"b-1","source":"bonus-engine","type":"bonus.activated","subject":"p-1","data":{"bonusId":"fs-20","campaign":"daily-spins","value":"0","currency":"AZN"}}`
	if _, err := js.Publish(ctx, bus.EventSubject("baku", "p-1", "bonus.activated"), []byte(ev)); err != nil {
		t.Fatal(err)
	}
	grant := bus.RewardGrant{ID: "weekly-cashback.give.p-1.f1", Brand: "baku", Player: "p-1", Campaign: "weekly-cashback", Step: "give",
		Reward: crmv1.Reward{Name: "cashback", Cashback: &crmv1.CashbackReward{Percent: 10, Period: crmv1.PeriodWeek, Cap: crmv1.Money{Amount: "200.00", Currency: "AZN"}}},
		Value:  bus.MinorAmount{Minor: 2450, Currency: "AZN"}, Granted: time.Now().UTC()}
	gb, _ := bus.Encode(grant)
	if _, err := js.Publish(ctx, bus.RewardSubject("baku", "p-1"), gb); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "sent, delivered, the retried failed callback and the grant", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["/sent"]) == 1 && len(got["/delivered"]) == 1 && len(got["/failed"]) == 2 && len(got["/rewards"]) == 1
	})
	bustest.Eventually(t, 10*time.Second, "the undeliverable callback dead-lettered", func() bool {
		return len(bustest.ReadAll(t, js, bus.StreamDeadLetter, bus.DeadLetterSubject(bus.StreamEvents))) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if s := got["/sent"][0]; s.Type != webhook.CallbackSent || s.DecisionID != "d-1" || s.Channel != crmv1.ChannelEmail || s.Provider != "relay" || s.Player != "p-1" {
		t.Fatalf("sent callback %+v", s)
	}
	failed := map[string]webhook.Callback{}
	for _, f := range got["/failed"] {
		failed[f.DecisionID] = f
	}
	if f := failed["d-2"]; f.Type != webhook.CallbackFailed || f.Reason != "push, inApp" || posts["/failed"] != 3 {
		t.Fatalf("failed callback %+v after %d posts", f, posts["/failed"])
	}
	// A mandatory message given up at its deadline is a failure the casino hears of too.
	if f := failed["d-3"]; f.Type != webhook.CallbackFailed || f.Campaign != "receipt" {
		t.Fatalf("the undelivered mandatory message's callback %+v", f)
	}
	if r := got["/rewards"][0]; r.Type != webhook.CallbackRewardGranted || r.Bonus != grant.ID || r.Grant == nil ||
		r.Grant.Value != grant.Value || r.Grant.Reward.Cashback == nil || r.Player != "p-1" || r.Campaign != "weekly-cashback" {
		t.Fatalf("reward callback %+v", r)
	}
	if posts["/broken"] != 3 {
		t.Fatalf("the bonus callback was posted %d times, want MaxDeliver 3", posts["/broken"])
	}
}
