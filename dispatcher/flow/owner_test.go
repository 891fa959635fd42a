package flow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time {
	if n := c.ns.Load(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return time.Now()
}

func channelRecord(ch crmv1.Channel) []byte {
	b, _ := bus.Encode(bus.ConfigRecord{Kind: "ChannelPolicy", Brand: "baku", Name: string(ch), UID: "cp-" + string(ch),
		ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: ch},
			ProviderCosts: map[string]bus.MicroAmount{"p": {Micros: 2000, Currency: "AZN"}}}})
	return b
}

func campaignRecord(name string, cat crmv1.Category, trigger string, msgs ...crmv1.Message) []byte {
	spec := crmv1.CampaignSpec{Category: cat, Priority: 50,
		Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "main"}}},
		Contents: []crmv1.Content{{Name: "main", Messages: msgs}}}
	if trigger != "" {
		spec.Trigger.Event = &crmv1.EventTrigger{Type: crmv1.EventType(trigger)}
	} else {
		spec.Trigger.Schedule = &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}
	}
	b, _ := bus.Encode(bus.ConfigRecord{Kind: "Campaign", Brand: "baku", Name: name, UID: "uid-" + name, Generation: 1,
		Campaign: &bus.CampaignConfig{Spec: spec, ContentHashes: map[string]string{"main": "hash-" + name}}})
	return b
}

// stack is one dispatcher's partition owner on one partition, without leases.
type stack struct {
	srv    *bustest.Server
	js     jetstream.JetStream
	owner  *flow.Owner
	runner *partition.Runner
	clock  *fakeClock
}

func configure(t *testing.T, srv *bustest.Server) {
	_, js := srv.Connect(t)
	kv := bustest.KV(t, js, bus.BucketConfig)
	ctx := context.Background()
	put := func(k string, v []byte) {
		if _, err := kv.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	put(bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku-casino"), bustest.SamplePolicyRecord(t, "baku"))
	for _, ch := range []crmv1.Channel{crmv1.ChannelSMS, crmv1.ChannelEmail, crmv1.ChannelPush} {
		put(bus.ConfigKey("baku", bus.KindChannelPolicy, string(ch)), channelRecord(ch))
	}
	put(bus.ConfigKey("baku", bus.KindCampaign, "withdrawal-notice"), campaignRecord("withdrawal-notice", crmv1.CategoryService, "withdrawal.completed",
		crmv1.Message{Channel: crmv1.ChannelSMS, Locale: "az", Body: "BakuCasino: {{ .Event.amount }} {{ .Event.currency }} cixarish tamamlandi."},
		crmv1.Message{Channel: crmv1.ChannelSMS, Locale: "ru", Body: "BakuCasino: вывод {{ .Event.amount }} {{ .Event.currency }} выполнен."},
		crmv1.Message{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Çıxarış", Body: "{{ .Event.amount }}"}))
	put(bus.ConfigKey("baku", bus.KindCampaign, "daily-spins"), campaignRecord("daily-spins", crmv1.CategoryMarketing, "",
		crmv1.Message{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Pulsuz fırlanmalar", Body: "Salam {{ .Player.FirstName | default \"dost\" }}, 20 pulsuz fırlanma!"},
		crmv1.Message{Channel: crmv1.ChannelInApp, Locale: "az", Body: "20 pulsuz fırlanma"}))
	// Another offer (its own content hash), for tests that send a player two messages.
	put(bus.ConfigKey("baku", bus.KindCampaign, "weekly-cashback"), campaignRecord("weekly-cashback", crmv1.CategoryMarketing, "",
		crmv1.Message{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Keşbek", Body: "Həftəlik keşbek hesabınızdadır"}))
}

func newStack(t testing.TB, srv *bustest.Server, replica string, clk *fakeClock) *stack {
	t.Helper()
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	catalog := &flow.Catalog{Log: quiet}
	cache := prefs.NewCache()
	r1, r2 := make(chan struct{}), make(chan struct{})
	go func() { _ = catalog.Run(ctx, bustest.KV(t, js, bus.BucketConfig), r1) }()
	go func() { _ = cache.Run(ctx, bustest.KV(t, js, bus.BucketPrefs), r2) }()
	<-r1
	<-r2
	c := clock.Func(clk.now)
	keeper := &players.Keeper{JS: js, Players: bustest.KV(t, js, bus.BucketPlayers), Log: quiet, Clock: c}
	owner := &flow.Owner{Keeper: keeper, JS: js, State: bustest.KV(t, js, bus.BucketState), Stats: bustest.KV(t, js, bus.BucketStats),
		StatsEvery: 100 * time.Millisecond, Catalog: catalog, Prefs: cache, Log: quiet, Clock: c, Partitions: srv.Partitions}
	runner := &partition.Runner{JS: js, Handler: owner, Log: quiet, Linger: 5 * time.Millisecond, PumpEvery: 50 * time.Millisecond,
		Sources: []partition.Source{partition.Events, partition.Intents, partition.Runs, partition.Outcomes}}
	return &stack{srv: srv, js: js, owner: owner, runner: runner, clock: clk}
}

func (s *stack) start(t *testing.T, epoch uint64) {
	cb := s.runner.Callbacks()
	cb.Acquired(context.Background(), 0, epoch)
	t.Cleanup(func() { cb.Released(0) })
}

func publishEvent(t *testing.T, js jetstream.JetStream, player, typ, id string, at time.Time, data any) {
	t.Helper()
	raw, _ := json.Marshal(data)
	ev := bus.CloudEvent{SpecVersion: "1.0", ID: id, Source: "pam.baku", Type: typ, Subject: player, Time: at, Data: raw}
	b, _ := json.Marshal(ev)
	if _, err := js.Publish(context.Background(), bus.EventSubject("baku", player, typ), b); err != nil {
		t.Fatal(err)
	}
}

func register(t *testing.T, js jetstream.JetStream, player, tz string, at time.Time, extra map[string]any) {
	data := map[string]any{"country": "AZ", "language": "az", "timeZone": tz, "currency": "AZN", "phone": "+994501234567",
		"email": player + "@example.az", "attrs": map[string]any{"firstName": "Leyla"}}
	publishEvent(t, js, player, "player.registered", "reg-"+player, at, data)
	prof := map[string]any{"kycStatus": "passed", "ageVerified": true, "pushTokens": []map[string]string{{"platform": "android", "token": "tok-" + player}}}
	for k, v := range extra {
		prof[k] = v
	}
	publishEvent(t, js, player, "player.profile.updated", "prof-"+player, at, prof)
}

// collect reads every message of a stream on a filter.
func outcomesOf(t *testing.T, js jetstream.JetStream, player string) []bus.Outcome {
	return bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", 0, player))
}

func TestPaymentSMSAtNightIsSentWithItsReason(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	clk := &fakeClock{}
	night := time.Date(2026, 11, 22, 22, 14, 0, 0, time.UTC) // 02:14 in Baku
	clk.set(night)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	register(t, s.js, "p-1", "Asia/Baku", night.Add(-time.Hour), nil)
	publishEvent(t, s.js, "p-1", "withdrawal.completed", "w-1", night, map[string]any{"amount": "150.00", "currency": "AZN", "withdrawalId": "w-1"})

	var jobs []bus.DeliveryJob
	bustest.Eventually(t, 10*time.Second, "the SMS job", func() bool {
		jobs = bustest.Jobs(t, s.js, bus.DeliveryFilter("sms"))
		return len(jobs) == 1
	})
	j := jobs[0]
	if j.Text != "BakuCasino: 150.00 AZN cixarish tamamlandi." || j.To != "+994501234567" || j.Locale != "az" || j.Player != "p-1" {
		t.Fatalf("job %+v", j)
	}
	if j.DecisionID != route.DecisionID("uid-withdrawal-notice/pam.baku/w-1/send") {
		t.Fatalf("decision id %s", j.DecisionID)
	}
	if len(j.Fallbacks) != 1 || j.Fallbacks[0] != crmv1.ChannelEmail { // the content has no push message
		t.Fatalf("fallbacks %v", j.Fallbacks)
	}
	oc := outcomesOf(t, s.js, "p-1")
	if len(oc) != 1 || oc[0].Reason != string(route.ReasonMandatoryBypass) || oc[0].Channel != crmv1.ChannelSMS ||
		!strings.Contains(oc[0].Detail, "local 02:14") || oc[0].DecisionID != j.DecisionID {
		t.Fatalf("outcomes %+v", oc)
	}
	raw, _ := json.Marshal(oc[0])
	if bytes.Contains(raw, []byte("994501234567")) || bytes.Contains(raw, []byte("150.00")) {
		t.Fatalf("an outcome holds contact data or the body: %s", raw)
	}
	// A redelivered event does not send again.
	publishEvent(t, s.js, "p-1", "withdrawal.completed", "w-1", night, map[string]any{"amount": "150.00", "currency": "AZN", "withdrawalId": "w-1"})
	time.Sleep(300 * time.Millisecond)
	if n := len(bustest.Jobs(t, s.js, bus.DeliveryFilter("sms"))); n != 1 {
		t.Fatalf("%d jobs after a duplicate event", n)
	}
}

func publishIntent(t *testing.T, js jetstream.JetStream, it bus.Intent) {
	t.Helper()
	b, _ := bus.Encode(it)
	if _, err := js.Publish(context.Background(), bus.IntentSubject(it.Brand, 0, it.Player), b); err != nil {
		t.Fatal(err)
	}
}

func spins(id, player string, created time.Time) bus.Intent {
	return bus.Intent{ID: id, Brand: "baku", Player: player, Campaign: "daily-spins", Step: "send", FlowInstance: strings.ReplaceAll(id, ".", "-"),
		Category: crmv1.CategoryMarketing, Content: "main", Created: created}
}

func TestQuietHoursDeferAMarketingPushTo0800Baku(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	clk := &fakeClock{}
	late := time.Date(2026, 11, 22, 19, 30, 0, 0, time.UTC) // 23:30 in Baku
	clk.set(late)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	register(t, s.js, "p-2", "Asia/Baku", late.Add(-time.Hour), nil)
	waitPlayer(t, s, "p-2")
	publishIntent(t, s.js, spins("run-1", "p-2", late))
	var oc []bus.Outcome
	bustest.Eventually(t, 10*time.Second, "the deferral", func() bool { oc = outcomesOf(t, s.js, "p-2"); return len(oc) == 1 })
	want := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	if oc[0].Result != "defer" || oc[0].Reason != string(route.ReasonQuietHours) || !oc[0].SendAt.Equal(want) {
		t.Fatalf("outcome %+v", oc[0])
	}
	msgs := bustest.ReadAll(t, s.js, bus.StreamIntents, bus.PlayerSchedulesFilter("baku", 0, "p-2"))
	if len(msgs) != 1 {
		t.Fatalf("%d schedules", len(msgs))
	}
	h := msgs[0].Header
	if h.Get("Nats-Schedule") != "@at 2026-11-23T04:00:00Z" || h.Get("Nats-Schedule-Target") != bus.IntentSubject("baku", 0, "p-2") {
		t.Fatalf("schedule headers %v", h)
	}
	it, _ := bus.Decode[bus.Intent](msgs[0].Data)
	if !it.Due.Equal(want) || it.ID != "run-1" {
		t.Fatalf("scheduled intent %+v", it)
	}
	if n := len(bustest.Jobs(t, s.js, allJobs)); n != 0 {
		t.Fatalf("%d jobs during quiet hours", n)
	}
}

// zoneAt is a fixed-offset zone in which it is about hour o'clock at t.
func zoneAt(t time.Time, hour int) string {
	off := ((hour-t.UTC().Hour())%24 + 24) % 24
	if off > 14 {
		off -= 24
	}
	switch {
	case off > 0:
		return "Etc/GMT-" + strconv.Itoa(off) // POSIX signs: Etc/GMT-4 is UTC+4
	case off < 0:
		return "Etc/GMT+" + strconv.Itoa(-off)
	}
	return "Etc/GMT"
}

// An intent that comes back before it is due (a schedule firing early) is deferred
// again to its due time by a durable schedule that survives a server restart; released in
// the player's day it is sent, released in the player's night it is deferred again to the
// end of quiet hours, a second decision recorded beside the first.
func TestEarlyIntentIsRescheduledAndSurvivesRestart(t *testing.T) {
	for _, c := range []struct {
		name       string
		hour       int
		wantResult string
		wantReason string
	}{
		{"day", 13, "send", ""},
		{"night", 2, "defer", string(route.ReasonQuietHours)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := bustest.StartIn(t, dir, 1)
			configure(t, srv)
			clk := &fakeClock{} // real time: the server fires the schedule
			s := newStack(t, srv, "a", clk)
			s.start(t, 1)
			now := time.Now()
			register(t, s.js, "p-3", zoneAt(now, c.hour), now.Add(-time.Hour), nil)
			due := now.Add(2 * time.Second)
			it := spins("run-2", "p-3", now)
			it.Due = due
			bustest.Eventually(t, 10*time.Second, "the player", func() bool {
				return has(s.owner, "p-3")
			})
			publishIntent(t, s.js, it)
			bustest.Eventually(t, 10*time.Second, "the early arrival's outcome", func() bool {
				oc := outcomesOf(t, s.js, "p-3")
				return len(oc) == 1 && oc[0].Reason == string(route.ReasonArrivedEarly)
			})
			s.runner.Callbacks().Released(0)
			srv.Shutdown()
			srv.WaitForShutdown()

			srv2 := bustest.StartIn(t, dir, 1)
			s2 := newStack(t, srv2, "b", clk)
			s2.start(t, 2)
			var oc []bus.Outcome
			bustest.Eventually(t, 15*time.Second, "the release after the restart", func() bool {
				oc = outcomesOf(t, s2.js, "p-3")
				return len(oc) == 2
			})
			last := oc[1]
			if last.Time.Before(due.Add(-time.Second)) {
				t.Fatalf("released at %s, due %s", last.Time, due)
			}
			if last.Result != c.wantResult || (c.wantReason != "" && last.Reason != c.wantReason) {
				t.Fatalf("re-entry outcome %+v", last)
			}
		})
	}
}

func TestFailoverIssuesTheNextCandidate(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	clk := &fakeClock{}
	noon := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clk.set(noon)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	register(t, s.js, "p-4", "Asia/Baku", noon.Add(-time.Hour), nil)
	waitPlayer(t, s, "p-4")
	publishIntent(t, s.js, spins("run-3", "p-4", noon))
	var push []bus.DeliveryJob
	bustest.Eventually(t, 10*time.Second, "the push job", func() bool {
		push = bustest.Jobs(t, s.js, bus.DeliveryFilter("push"))
		return len(push) == 1
	})
	if push[0].Text != "Salam Leyla, 20 pulsuz fırlanma!" || push[0].Subject != "Pulsuz fırlanmalar" || push[0].To != "tok-p-4" {
		t.Fatalf("push job %+v", push[0])
	}
	did := push[0].DecisionID
	fail := func(id string, ch crmv1.Channel) {
		b, _ := json.Marshal(bus.CloudEvent{SpecVersion: "1.0", ID: id, Source: "croupier", Type: "delivery.failed", Subject: "p-4", Time: noon,
			Data: json.RawMessage(`{"decisionId":"` + did + `","channel":"` + string(ch) + `","reason":"provider refused"}`)})
		if _, err := s.js.Publish(context.Background(), bus.EventSubject("baku", "p-4", "delivery.failed"), b); err != nil {
			t.Fatal(err)
		}
	}
	fail("f-1", crmv1.ChannelPush)
	var inApp []bus.DeliveryJob
	bustest.Eventually(t, 10*time.Second, "the in-app job", func() bool {
		inApp = bustest.Jobs(t, s.js, bus.DeliveryFilter("inApp"))
		return len(inApp) == 1
	})
	if inApp[0].DecisionID != did || inApp[0].Text != "20 pulsuz fırlanma" || inApp[0].To != "p-4" {
		t.Fatalf("in-app job %+v", inApp[0])
	}
	fail("f-2", crmv1.ChannelInApp)
	bustest.Eventually(t, 10*time.Second, "all channels failed", func() bool {
		oc := outcomesOf(t, s.js, "p-4")
		return len(oc) == 3 && oc[1].Reason == flow.ReasonFailover && oc[2].Reason == string(route.ReasonAllChannelsFailed)
	})
}

// Two replicas contending for one partition never exceed a cap or lose a message: the
// owner that opened the partition last raises the fence, the one it replaced publishes
// nothing (its batch stays unacknowledged), and the next owner decides that batch again
// from the stored state.
func TestCapHoldsAcrossContendingOwners(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	clk := &fakeClock{}
	noon := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clk.set(noon)
	a := newStack(t, srv, "a", clk)
	a.start(t, 1)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []string{"p-5", "p-6"} {
				for _, o := range outcomesOf(t, a.js, p) {
					t.Logf("outcome %+v", o)
				}
			}
		}
	})
	register(t, a.js, "p-5", "Asia/Baku", noon.Add(-time.Hour), nil)
	register(t, a.js, "p-6", "Asia/Baku", noon.Add(-time.Hour), nil)
	stored := bustest.KV(t, a.js, bus.BucketPlayers)
	bustest.Eventually(t, 10*time.Second, "the players stored, their push tokens sealed", func() bool {
		e, err := stored.Get(context.Background(), bus.PlayerKey("baku", 0, "p-6"))
		c, cerr := stored.Get(context.Background(), players.ContactKey("baku", 0, "p-6"))
		return err == nil && cerr == nil && len(c.Value()) > 0 && !strings.Contains(string(e.Value()), "tok-p-6") &&
			!strings.Contains(string(c.Value()), "tok-p-6")
	})
	// A sends the two marketing messages (two offers) the 24h cap allows p-5.
	publishIntent(t, a.js, spins("c-1", "p-5", noon))
	second := spins("c-2", "p-5", noon)
	second.Campaign = "weekly-cashback"
	publishIntent(t, a.js, second)
	bustest.Eventually(t, 10*time.Second, "two jobs", func() bool {
		return len(bustest.Jobs(t, a.js, allJobs)) == 2
	})
	// B opens the partition with a newer epoch while A still runs (A's lease expired
	// under a long pause, say): A is stale from now on.
	b := newStack(t, srv, "b", clk)
	bState, err := b.owner.Open(context.Background(), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	bState.Close()
	// An owner of an older epoch cannot open it any more.
	if _, err := newStack(t, srv, "old", clk).owner.Open(context.Background(), 0, 1); !errors.Is(err, partition.ErrSuperseded) {
		t.Fatalf("opening with an older epoch than the fence's: %v", err)
	}
	// A, stale, decides a send for p-6: the fence refuses its batch, nothing is published.
	publishIntent(t, a.js, spins("c-3", "p-5", noon))
	publishIntent(t, a.js, spins("c-4", "p-6", noon))
	time.Sleep(500 * time.Millisecond)
	if n := len(bustest.Jobs(t, a.js, allJobs)); n != 2 {
		t.Fatalf("%d jobs: the stale owner published", n)
	}
	// The next owner decides the unacknowledged batch again: p-5 is capped, p-6 gets its
	// message once.
	c := newStack(t, srv, "c", clk)
	c.start(t, 3)
	bustest.Eventually(t, 10*time.Second, "the capped decision and p-6's send", func() bool {
		capped, sent := false, false
		for _, o := range outcomesOf(t, c.js, "p-5") {
			capped = capped || (o.IntentID == "c-3" && o.Reason == string(route.ReasonFrequencyCap))
		}
		for _, o := range outcomesOf(t, c.js, "p-6") {
			sent = sent || (o.IntentID == "c-4" && o.Result == "send")
		}
		return capped && sent
	})
	time.Sleep(300 * time.Millisecond)
	jobs := bustest.Jobs(t, a.js, allJobs)
	per := map[string]int{}
	for _, j := range jobs {
		per[j.Player]++
	}
	if len(jobs) != 3 || per["p-5"] != 2 || per["p-6"] != 1 {
		t.Fatalf("jobs after the handoff: %v", per)
	}
}

// fakeMsg is an intent handed to a partition state directly (the stale owner has no
// consumer); only Subject and Data are read for intents.
type fakeMsg struct {
	jetstream.Msg
	subject string
	data    []byte
}

func (m *fakeMsg) Subject() string      { return m.subject }
func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Headers() nats.Header { return nil }

// waitPlayer waits until the owner holds the player's profile with its push token (events
// and intents are separate streams, consumed side by side).
func waitPlayer(t *testing.T, s *stack, player string) {
	bustest.Eventually(t, 10*time.Second, "the player's profile", func() bool {
		for _, p := range s.owner.Keeper.Partitions() {
			if pl, ok := p.Get("baku", player); ok && len(pl.PushTokens) > 0 {
				return true
			}
		}
		return false
	})
}

const allJobs = bus.Root + ".deliveries.>"

func has(o *flow.Owner, player string) bool {
	for _, p := range o.Keeper.Partitions() {
		if _, ok := p.Get("baku", player); ok {
			return true
		}
	}
	return false
}
