package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func putRecord(t testing.TB, js jetstream.JetStream, kind, name string, rec bus.ConfigRecord) {
	t.Helper()
	rec.Kind, rec.Brand, rec.Name = kind, "baku", name
	if rec.UID == "" {
		rec.UID = "uid-" + name
	}
	if rec.Generation == 0 {
		rec.Generation = 1
	}
	b, _ := bus.Encode(rec)
	if _, err := bustest.KV(t, js, bus.BucketConfig).Put(context.Background(), bus.ConfigKey("baku", kind, name), b); err != nil {
		t.Fatal(err)
	}
}

func putCampaign(t *testing.T, js jetstream.JetStream, name string, spec crmv1.CampaignSpec) {
	hashes := map[string]string{}
	for _, c := range spec.Contents {
		hashes[c.Name] = "hash-" + c.Name
	}
	putRecord(t, js, bus.KindCampaign, name, bus.ConfigRecord{Campaign: &bus.CampaignConfig{Spec: spec, ContentHashes: hashes}})
}

func putSegment(t *testing.T, js jetstream.JetStream, name, rule string, events ...crmv1.EventType) {
	spec := crmv1.SegmentSpec{Rule: rule}
	if len(events) > 0 {
		spec.Refresh = &crmv1.SegmentRefresh{Events: events}
	}
	putRecord(t, js, bus.KindSegment, name, bus.ConfigRecord{Segment: &bus.SegmentConfig{Spec: spec}})
}

func sms(name, body string) crmv1.Content {
	return crmv1.Content{Name: name, Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: body}}}
}

func dur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

// welcomeSeries is the welcome -> upsell / retention sample with a branch on "made a bet".
func welcomeSeries(delay time.Duration) crmv1.CampaignSpec {
	return crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered"}},
		Steps: []crmv1.Step{
			{Name: "welcome", Send: &crmv1.SendStep{Content: "welcome"}},
			{Name: "settle-in", Delay: &crmv1.DelayStep{Duration: dur(delay)}},
			{Name: "first-bet", WaitFor: &crmv1.WaitForStep{Event: "bet.placed", Timeout: dur(delay), OnTimeout: "made-a-bet"}},
			{Name: "made-a-bet", Branch: &crmv1.BranchStep{Cases: []crmv1.BranchCase{{When: "player.betCount > 0", Next: "upsell"}}, Otherwise: "retention"}},
			{Name: "upsell", Send: &crmv1.SendStep{Content: "upsell"}, Next: "done"},
			{Name: "retention", Send: &crmv1.SendStep{Content: "retention"}},
			{Name: "done", Exit: &crmv1.ExitStep{}},
		},
		Contents: []crmv1.Content{sms("welcome", "Xos gelmisiniz!"), sms("upsell", "Depozit bonusu sizi gozleyir"), sms("retention", "Sizin ucun 10 pulsuz firlanma")},
	}
}

func smsTexts(t *testing.T, js jetstream.JetStream, player string) []string {
	var out []string
	for _, j := range bustest.Jobs(t, js, bus.DeliveryFilter("sms")) {
		if j.Player == player {
			out = append(out, j.Text)
		}
	}
	return out
}

// A drip chain parks at a delay; the dispatcher and the NATS server restart; the delay's
// durable schedule fires, the wait times out, and the branch sends the retention offer. A
// player who bets during the wait gets the upsell at once.
func TestDripChainSurvivesRestartMidDelay(t *testing.T) {
	dir := t.TempDir()
	srv := bustest.StartIn(t, dir, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "welcome-series", welcomeSeries(2*time.Second))
	clk := &fakeClock{} // real time: the server fires the schedules
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	now := time.Now()
	register(t, s.js, "p-d1", "Asia/Baku", now, nil)
	bustest.Eventually(t, 10*time.Second, "the welcome", func() bool { return len(smsTexts(t, s.js, "p-d1")) == 1 })
	// The flow is parked at the delay and persisted.
	state := bustest.KV(t, s.js, bus.BucketState)
	bustest.Eventually(t, 5*time.Second, "the parked flow", func() bool {
		e, err := state.Get(context.Background(), bus.PlayerKey("baku", 0, "p-d1"))
		return err == nil && strings.Contains(string(e.Value()), `"step":"settle-in","wait":"delay"`)
	})
	s.runner.Callbacks().Released(0)
	srv.Shutdown()
	srv.WaitForShutdown()

	srv2 := bustest.StartIn(t, dir, 1)
	s2 := newStack(t, srv2, "b", clk)
	s2.start(t, 2)
	var texts []string
	bustest.Eventually(t, 20*time.Second, "the retention offer after the restart", func() bool {
		texts = smsTexts(t, s2.js, "p-d1")
		return len(texts) == 2
	})
	if texts[0] != "Xos gelmisiniz!" || texts[1] != "Sizin ucun 10 pulsuz firlanma" {
		t.Fatalf("messages %q", texts)
	}
	// The flow ended: nothing parked, one finished flow remembered.
	e, err := bustest.KV(t, s2.js, bus.BucketState).Get(context.Background(), bus.PlayerKey("baku", 0, "p-d1"))
	if err != nil || strings.Contains(string(e.Value()), `"flows"`) || !strings.Contains(string(e.Value()), `"done"`) {
		t.Fatalf("state after the flow: %s (%v)", e.Value(), err)
	}

	// A second player bets while the flow waits: the upsell goes out before the timeout.
	register(t, s2.js, "p-d2", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "the second welcome", func() bool { return len(smsTexts(t, s2.js, "p-d2")) == 1 })
	bustest.Eventually(t, 10*time.Second, "the wait for a bet", func() bool {
		e, err := bustest.KV(t, s2.js, bus.BucketState).Get(context.Background(), bus.PlayerKey("baku", 0, "p-d2"))
		return err == nil && strings.Contains(string(e.Value()), `"step":"first-bet","wait":"event"`)
	})
	publishEvent(t, s2.js, "p-d2", "bet.placed", "bet-1", time.Now(), map[string]any{"amount": "1.00", "currency": "AZN", "game": "book-of-ra", "gameCategory": "slots", "roundId": "r1"})
	bustest.Eventually(t, 5*time.Second, "the upsell", func() bool { return len(smsTexts(t, s2.js, "p-d2")) == 2 })
	if got := smsTexts(t, s2.js, "p-d2"); got[1] != "Depozit bonusu sizi gozleyir" {
		t.Fatalf("messages %q", got)
	}
	// The stale timeout fires later and changes nothing.
	time.Sleep(2500 * time.Millisecond)
	if got := smsTexts(t, s2.js, "p-d2"); len(got) != 2 {
		t.Fatalf("messages after the stale timeout %q", got)
	}
}

func statsOf(t *testing.T, js jetstream.JetStream, kind, name string) map[string]int64 {
	e, err := bustest.KV(t, js, bus.BucketStats).Get(context.Background(), bus.StatsKey("baku", kind, name, 0))
	if err != nil {
		return nil
	}
	st, err := bus.Decode[bus.PartitionStats](e.Value())
	if err != nil {
		t.Fatal(err)
	}
	return st.Counters
}

// A scheduled run to 10,000 Segment members makes exactly one intent and one decision per
// member, paced by the rollout rate, even when the partition changes hands mid-expansion
// and the run is published again; the counters reach croupier-stats.
func TestRunToTenThousandPlayersMakesOneIntentEach(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putSegment(t, js, "depositors", "player.depositCount >= 1", "deposit.completed")
	putCampaign(t, js, "daily-spins", crmv1.CampaignSpec{Category: crmv1.CategoryMarketing, Priority: 50,
		Audience: &crmv1.Audience{SegmentRef: &crmv1.LocalObjectReference{Name: "depositors"}},
		Trigger:  crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *", TimeZone: "Asia/Baku"}},
		Rollout:  &crmv1.Rollout{MaxPerMinute: 6000},
		Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "main"}}},
		Contents: []crmv1.Content{{Name: "main", Messages: []crmv1.Message{{Channel: crmv1.ChannelInApp, Locale: "az", Body: "20 pulsuz firlanma"}}}}})
	clk := &fakeClock{}
	noon := time.Date(2026, 11, 22, 6, 0, 5, 0, time.UTC) // 10:00:05 in Baku
	clk.set(noon)
	a := newStack(t, srv, "a", clk)
	a.owner.RunBatch = 700
	a.start(t, 1)
	const members, others = 10000, 500
	ctx := context.Background()
	for i := range members + others {
		p := fmt.Sprintf("p-%05d", i)
		b, _ := bus.Encode(bus.CloudEvent{SpecVersion: "1.0", ID: "reg-" + p, Source: "pam.baku", Type: "player.registered", Subject: p, Time: noon,
			Data: []byte(`{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}`)})
		if _, err := js.PublishAsync(bus.EventSubject("baku", p, "player.registered"), b, jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if i < members {
			b, _ := bus.Encode(bus.CloudEvent{SpecVersion: "1.0", ID: "dep-" + p, Source: "pam.baku", Type: "deposit.completed", Subject: p, Time: noon,
				Data: []byte(`{"amount":"20.00","currency":"AZN","method":"card","depositId":"d-` + p + `"}`)})
			if _, err := js.PublishAsync(bus.EventSubject("baku", p, "deposit.completed"), b, jetstream.WithStallWait(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-js.PublishAsyncComplete()
	bustest.Eventually(t, 60*time.Second, "the Segment's members counted", func() bool {
		return statsOf(t, js, bus.KindSegment, "depositors")[bus.StatMembers] == members
	})
	scheduled := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	req := bus.RunRequest{RunID: bus.RunID("uid-daily-spins", scheduled), Brand: "baku", Campaign: "daily-spins", CampaignUID: "uid-daily-spins", Generation: 1, ScheduledTime: scheduled}
	raw, _ := bus.Encode(req)
	if _, err := js.Publish(ctx, bus.RunSubject("baku", "daily-spins"), raw, jetstream.WithMsgID(req.RunID)); err != nil {
		t.Fatal(err)
	}
	intentsOf := func() int {
		info, err := js.Stream(ctx, bus.StreamIntents)
		if err != nil {
			t.Fatal(err)
		}
		return int(info.CachedInfo().State.Msgs)
	}
	// 6,000 a minute: one at once, 3,001 after 30 seconds.
	bustest.Eventually(t, 10*time.Second, "the first intent", func() bool { return intentsOf() == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := intentsOf(); n != 1 {
		t.Fatalf("%d intents before the clock moved", n)
	}
	clk.set(noon.Add(30 * time.Second))
	bustest.Eventually(t, 10*time.Second, "half a minute's share", func() bool { return intentsOf() == 3001 })
	// Hand the partition over mid-expansion, then let the rest go.
	a.runner.Callbacks().Released(0)
	b := newStack(t, srv, "b", clk)
	b.owner.RunBatch = 700
	b.start(t, 2)
	// The same run again, past the de-duplication window (no message id): a no-op.
	if _, err := js.Publish(ctx, bus.RunSubject("baku", "daily-spins"), raw); err != nil {
		t.Fatal(err)
	}
	clk.set(noon.Add(2 * time.Minute))
	bustest.Eventually(t, 60*time.Second, "every member targeted", func() bool {
		return statsOf(t, js, bus.KindCampaign, "daily-spins")[bus.StatTargeted] >= members
	})
	time.Sleep(500 * time.Millisecond)
	intents := bustest.Collect[bus.Intent](t, js, bus.StreamIntents, bus.Root+".intents.>")
	seen := map[string]int{}
	for _, it := range intents {
		if it.Flow != bus.FlowStart || it.Run != req.RunID {
			t.Fatalf("unexpected intent %+v", it)
		}
		seen[it.Player]++
	}
	if len(seen) != members || len(intents) != members {
		t.Fatalf("%d intents for %d players, want %d each once", len(intents), len(seen), members)
	}
	for p := range seen {
		if p >= fmt.Sprintf("p-%05d", members) {
			t.Fatalf("player %s is not a member", p)
		}
	}
	decisions := map[string]int{}
	for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.Root+".outcomes.>") {
		if o.Kind == bus.OutcomeDecision && o.Campaign == "daily-spins" {
			decisions[o.Player]++
		}
	}
	for p, n := range decisions {
		if n != 1 {
			t.Fatalf("player %s has %d decisions", p, n)
		}
	}
	if len(decisions) != members {
		t.Fatalf("%d players decided, want %d", len(decisions), members)
	}
	if st := statsOf(t, js, bus.KindCampaign, "daily-spins"); st[bus.StatTargeted] != members {
		t.Fatalf("counters %v", st)
	}
}

// A deposit moves a player into a Segment that lists deposit.completed at once, without
// waiting for the refresh interval.
func TestDepositMovesAPlayerIntoDepositors(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putSegment(t, js, "depositors", "player.depositCount >= 1", "deposit.completed")
	clk := &fakeClock{}
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	register(t, s.js, "p-s1", "Asia/Baku", time.Now(), nil)
	register(t, s.js, "p-s2", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "the first evaluation", func() bool {
		st := statsOf(t, js, bus.KindSegment, "depositors")
		_, ok := st[bus.StatMembers]
		return ok && st[bus.StatMembers] == 0 && has(s.owner, "p-s2")
	})
	publishEvent(t, s.js, "p-s1", "deposit.completed", "dep-1", time.Now(), map[string]any{"amount": "50.00", "currency": "AZN", "method": "card", "depositId": "d1"})
	bustest.Eventually(t, 5*time.Second, "one member", func() bool {
		return statsOf(t, js, bus.KindSegment, "depositors")[bus.StatMembers] == 1
	})
}

// Editing a running campaign: a player parked at a step that still exists continues under
// the new spec (the new text); a player parked at a step the edit removed leaves the flow
// with StepRemoved and is sent nothing more.
func TestEditingARunningCampaign(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	series := func(delayStep, second string) crmv1.CampaignSpec {
		return crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
			Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed"}},
			Steps: []crmv1.Step{
				{Name: "first", Send: &crmv1.SendStep{Content: "first"}},
				{Name: delayStep, Delay: &crmv1.DelayStep{Duration: dur(2 * time.Second)}},
				{Name: "second", Send: &crmv1.SendStep{Content: "second"}},
			},
			Contents: []crmv1.Content{sms("first", "Bir"), sms("second", second)}}
	}
	putCampaign(t, js, "kept", series("wait", "Iki"))
	putCampaign(t, js, "renamed", series("wait", "Uc"))
	s := newStack(t, srv, "a", &fakeClock{})
	s.start(t, 1)
	register(t, s.js, "p-e1", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "the player", func() bool { return has(s.owner, "p-e1") })
	publishEvent(t, s.js, "p-e1", "kyc.passed", "kyc-1", time.Now(), map[string]any{})
	bustest.Eventually(t, 10*time.Second, "both first messages", func() bool { return len(smsTexts(t, s.js, "p-e1")) == 2 })
	putCampaign(t, js, "kept", series("wait", "Iki (yeni)"))
	putCampaign(t, js, "renamed", series("pause", "Uc"))
	bustest.Eventually(t, 10*time.Second, "the edited second message", func() bool { return len(smsTexts(t, s.js, "p-e1")) == 3 })
	time.Sleep(500 * time.Millisecond)
	got := smsTexts(t, s.js, "p-e1")
	if len(got) != 3 || got[2] != "Iki (yeni)" {
		t.Fatalf("messages %q", got)
	}
	var ended bool
	for _, o := range outcomesOf(t, s.js, "p-e1") {
		if o.Kind == flow.OutcomeFlow && o.Campaign == "renamed" && o.Reason == flow.ReasonStepRemoved && o.Step == "wait" {
			ended = true
		}
	}
	if !ended {
		t.Fatal("no StepRemoved outcome for the flow parked at the removed step")
	}
}

// "Wagering reached" enters a player once: every later bet still meets the condition but
// is refused with EntryLimitReached; the Campaign created again counts afresh.
func TestWageringReachedEntersOncePerPlayer(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	once := int32(1)
	spec := crmv1.CampaignSpec{Category: crmv1.CategoryMarketing, Priority: 40,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "bet.placed", Condition: "player.wagered >= 100.0", MaxEntriesPerPlayer: &once}},
		Steps:    []crmv1.Step{{Name: "congrats", Send: &crmv1.SendStep{Content: "congrats"}}},
		Contents: []crmv1.Content{sms("congrats", "100 AZN merc etdiniz: 10 pulsuz firlanma")}}
	putCampaign(t, js, "wagering-100", spec)
	s := newStack(t, srv, "a", &fakeClock{})
	s.start(t, 1)
	register(t, s.js, "p-w1", "Asia/Baku", time.Now(), nil)
	bet := func(id, amount string) {
		publishEvent(t, s.js, "p-w1", "bet.placed", id, time.Now(), map[string]any{"amount": amount, "currency": "AZN",
			"game": "book-of-ra", "gameCategory": "slots", "roundId": id})
	}
	// The player gave no marketing consent: each entry ends in one routing decision.
	reasons := func() (n int) {
		for _, o := range outcomesOf(t, s.js, "p-w1") {
			if o.Reason == flow.ReasonEntryLimit && o.Campaign == "wagering-100" {
				n++
			}
		}
		return n
	}
	decisions := func() (n int) {
		for _, o := range outcomesOf(t, s.js, "p-w1") {
			if o.Kind == bus.OutcomeDecision && o.Campaign == "wagering-100" {
				n++
			}
		}
		return n
	}
	bet("b1", "60.00")
	bet("b2", "50.00") // 110 wagered: the flow starts
	bet("b3", "70.00") // 180: refused
	bet("b4", "10.00") // 190: refused
	bustest.Eventually(t, 10*time.Second, "two refused entries", func() bool { return reasons() == 2 })
	if got := decisions(); got != 1 {
		t.Fatalf("%d decisions, want one", got)
	}
	bustest.Eventually(t, 5*time.Second, "the counters", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "wagering-100")
		return st[bus.StatTargeted] == 1 && st[bus.StatSuppressedPrefix+flow.ReasonEntryLimit] == 2
	})

	// Deleted and created again (a new UID): the player may enter once more.
	putRecord(t, js, bus.KindCampaign, "wagering-100", bus.ConfigRecord{UID: "uid-wagering-100-b",
		Campaign: &bus.CampaignConfig{Spec: spec, ContentHashes: map[string]string{"congrats": "hash-congrats"}}})
	bustest.Eventually(t, 5*time.Second, "the new campaign", func() bool {
		b := s.owner.Catalog.Brand("baku")
		return b != nil && b.Campaigns["wagering-100"] != nil && b.Campaigns["wagering-100"].UID == "uid-wagering-100-b"
	})
	bet("b5", "1.00")
	bet("b6", "1.00")
	bustest.Eventually(t, 10*time.Second, "a second decision and a third refusal", func() bool {
		return decisions() == 2 && reasons() == 3
	})
}

// The sweep emits player.anniversary on the registration's anniversary day in the player's
// time zone, and an anniversary campaign greets the player once.
func TestAnniversaryCampaign(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	// Service, so the test player needs no marketing consent to be sent the greeting.
	putCampaign(t, js, "anniversary", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 40,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.anniversary", Condition: "event.data.years >= 1"}},
		Steps:    []crmv1.Step{{Name: "greet", Send: &crmv1.SendStep{Content: "greet"}}},
		Contents: []crmv1.Content{sms("greet", "{{ .Event.years }} il birlikde!")}})
	s := newStack(t, srv, "a", &fakeClock{})
	s.runner.TickEvery = 50 * time.Millisecond
	s.start(t, 1)
	register(t, s.js, "p-a1", "Asia/Baku", time.Now().AddDate(-2, 0, 0), nil)
	register(t, s.js, "p-a2", "Asia/Baku", time.Now().AddDate(-2, 0, 5), nil) // in five days
	bustest.Eventually(t, 10*time.Second, "the greeting", func() bool { return len(smsTexts(t, s.js, "p-a1")) == 1 })
	time.Sleep(300 * time.Millisecond) // several more sweeps
	if got := smsTexts(t, s.js, "p-a1"); len(got) != 1 || got[0] != "2 il birlikde!" {
		t.Fatalf("messages %q", got)
	}
	if got := smsTexts(t, s.js, "p-a2"); len(got) != 0 {
		t.Fatalf("a player whose anniversary is in five days got %q", got)
	}
}

// A run the owner receives later than its missed-run policy reaches (the dispatcher was
// down) is recorded and not expanded; one within reach goes out.
func TestLateRunIsNotExpanded(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	deadline := dur(30 * time.Minute)
	putCampaign(t, js, "morning-spins", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:  crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *", TimeZone: "Asia/Baku", StartingDeadline: &deadline}},
		Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "main"}}},
		Contents: []crmv1.Content{sms("main", "Sabahiniz xeyir")}})
	clk := &fakeClock{}
	day1 := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC) // 10:00 in Baku
	clk.set(day1.Add(45 * time.Minute))
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	for _, p := range []string{"p-l1", "p-l2", "p-l3"} {
		register(t, s.js, p, "Asia/Baku", day1.Add(-time.Hour), nil)
		waitPlayer(t, s, p)
	}
	run := func(scheduled time.Time) {
		req := bus.RunRequest{RunID: bus.RunID("uid-morning-spins", scheduled), Brand: "baku", Campaign: "morning-spins",
			CampaignUID: "uid-morning-spins", Generation: 1, ScheduledTime: scheduled}
		raw, _ := bus.Encode(req)
		if _, err := js.Publish(context.Background(), bus.RunSubject("baku", "morning-spins"), raw, jetstream.WithMsgID(req.RunID)); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() (out []flow.RunProgress) {
		e, err := bustest.KV(t, js, bus.BucketState).Get(context.Background(), bus.RunsKey("baku", 0))
		if err != nil {
			return nil
		}
		var doc struct{ Runs []flow.RunProgress }
		if err := json.Unmarshal(e.Value(), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Runs
	}
	run(day1) // 45 minutes late, beyond 30 minutes + the margin
	bustest.Eventually(t, 10*time.Second, "the late run recorded", func() bool {
		r := runs()
		return len(r) == 1 && r[0].Done
	})
	if r := runs()[0]; r.Emitted != 0 || !strings.Contains(r.Note, "beyond the 31m0s its missed-run policy allows") {
		t.Fatalf("late run %+v", r)
	}
	day2 := day1.Add(24 * time.Hour)
	clk.set(day2.Add(20 * time.Minute))
	run(day2) // 20 minutes late: within reach
	bustest.Eventually(t, 10*time.Second, "the second run's messages", func() bool {
		n := 0
		for _, p := range []string{"p-l1", "p-l2", "p-l3"} {
			n += len(smsTexts(t, s.js, p))
		}
		return n == 3
	})
	if r := runs(); len(r) != 2 || !r[1].Done || r[1].Emitted != 3 {
		t.Fatalf("runs %+v", r)
	}
}

// An event for a paused Campaign starts nothing and leaves a CampaignPaused line in the
// player's history (once per event, a redelivery adds none); resumed, the next event
// starts the flow.
func TestPausedCampaignLeavesATrace(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	spec := crmv1.CampaignSpec{Category: crmv1.CategoryMarketing, Priority: 40, Paused: true,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "bet.placed"}},
		Steps:    []crmv1.Step{{Name: "thanks", Send: &crmv1.SendStep{Content: "thanks"}}},
		Contents: []crmv1.Content{sms("thanks", "Təşəkkürlər")}}
	putCampaign(t, js, "bet-thanks", spec)
	s := newStack(t, srv, "a", &fakeClock{})
	s.start(t, 1)
	register(t, s.js, "p-z1", "Asia/Baku", time.Now(), nil)
	bet := func(id string) {
		publishEvent(t, s.js, "p-z1", "bet.placed", id, time.Now(), map[string]any{"amount": "1.00", "currency": "AZN",
			"game": "book-of-ra", "gameCategory": "slots", "roundId": id})
	}
	count := func(reason string, kind string) (n int) {
		for _, o := range outcomesOf(t, s.js, "p-z1") {
			if o.Campaign == "bet-thanks" && o.Reason == reason && o.Kind == kind {
				n++
			}
		}
		return n
	}
	bet("z1")
	bet("z1") // the platform's retry: same source and id
	bustest.Eventually(t, 10*time.Second, "a CampaignPaused line", func() bool { return count(string(route.ReasonCampaignPaused), flow.OutcomeFlow) == 1 })
	for _, o := range outcomesOf(t, s.js, "p-z1") {
		if o.Campaign == "bet-thanks" && o.Kind == bus.OutcomeDecision {
			t.Fatalf("a paused campaign decided a send: %+v", o)
		}
		if o.Reason == string(route.ReasonCampaignPaused) && !strings.Contains(o.Detail, "paused") {
			t.Errorf("detail %q does not say why", o.Detail)
		}
	}
	spec.Paused = false
	putRecord(t, js, bus.KindCampaign, "bet-thanks", bus.ConfigRecord{UID: "uid-bet-thanks",
		Campaign: &bus.CampaignConfig{Spec: spec, ContentHashes: map[string]string{"thanks": "hash-thanks"}}})
	bustest.Eventually(t, 5*time.Second, "the resumed campaign", func() bool {
		b := s.owner.Catalog.Brand("baku")
		return b != nil && b.Campaigns["bet-thanks"] != nil && !b.Campaigns["bet-thanks"].Spec().Paused
	})
	bet("z2")
	bustest.Eventually(t, 10*time.Second, "a decision after the resume", func() bool {
		n := 0
		for _, o := range outcomesOf(t, s.js, "p-z1") {
			if o.Campaign == "bet-thanks" && o.Kind == bus.OutcomeDecision {
				n++
			}
		}
		return n == 1
	})
	if n := count(string(route.ReasonCampaignPaused), flow.OutcomeFlow); n != 1 {
		t.Errorf("%d CampaignPaused lines, want 1", n)
	}
}
