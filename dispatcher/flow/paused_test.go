package flow_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// A match bonus needs a deposit of 20 AZN or more. The grant step names onRefused: a
// smaller deposit is refused (DepositBelowMinimum), the announcement is skipped and the
// onRefused step tells the player what would qualify; a qualifying deposit gets the bonus
// and its announcement, and never the onRefused message.
func TestRefusedGrantRunsOnRefusedInstead(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "match", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
		Steps: []crmv1.Step{
			{Name: "bonus", Grant: &crmv1.GrantStep{Reward: "match", OnRefused: "tip"}},
			{Name: "tell", Send: &crmv1.SendStep{Content: "tell"}, Next: "done"},
			{Name: "tip", Send: &crmv1.SendStep{Content: "tip"}},
			{Name: "done", Exit: &crmv1.ExitStep{}},
		},
		Contents: []crmv1.Content{sms("tell", "50% bonus credited"), sms("tip", "Deposit 20 AZN for a 50% bonus")},
		Rewards: []crmv1.Reward{{Name: "match", MatchDeposit: &crmv1.MatchDepositReward{Percent: 50,
			Cap: crmv1.Money{Amount: "100.00", Currency: "AZN"}, MinDeposit: &crmv1.Money{Amount: "20.00", Currency: "AZN"}}}},
	})
	s := newStack(t, srv, "a", &fakeClock{})
	s.owner.Rewards = reward.Engine{}
	s.start(t, 1)
	for _, c := range []struct{ player, amount, want string }{
		{"p-r1", "10.00", "Deposit 20 AZN for a 50% bonus"},
		{"p-r2", "40.00", "50% bonus credited"},
	} {
		register(t, s.js, c.player, "Asia/Baku", time.Now(), nil)
		waitPlayer(t, s, c.player)
		publishEvent(t, s.js, c.player, "deposit.completed", "dep-"+c.player, time.Now(), map[string]any{"amount": c.amount, "currency": "AZN", "method": "card", "depositId": "d-" + c.player})
		bustest.Eventually(t, 10*time.Second, c.player+"'s message", func() bool { return len(smsTexts(t, s.js, c.player)) == 1 })
		time.Sleep(300 * time.Millisecond) // nothing more may follow
		if got := smsTexts(t, s.js, c.player); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s deposited %s and got %q, want %q", c.player, c.amount, got, c.want)
		}
	}
	refused := false
	for _, o := range outcomesOf(t, s.js, "p-r1") {
		if o.Kind == flow.OutcomeFlow && o.Step == "bonus" && o.Result == "refused" && o.Reason == reward.ReasonDepositBelowMinimum {
			refused = true
		}
		if o.Reason == flow.ReasonGrantRefused {
			t.Errorf("the flow ended at the refused grant although it names onRefused: %+v", o)
		}
	}
	if !refused {
		t.Error("p-r1's history does not show the refused grant")
	}
}

// A campaign paused by a person holds what it has under way: a flow parked at a delay stays
// parked while paused and goes on when the campaign resumes; a run's message arriving
// while paused is deferred (CampaignPaused, with the time it is looked at again) and
// sent after the resume; a flow whose campaign window ended while paused is dropped
// with CampaignEnded in the player's history.
func TestPausedCampaignHoldsFlowsAndMessages(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	spec := welcomeSeries(2 * time.Second)
	putCampaign(t, js, "welcome-series", spec)
	s := newStack(t, srv, "a", &fakeClock{}) // real time: the server fires the schedules
	s.owner.PausedRecheck = time.Second
	s.start(t, 1)
	parked := func(player, step string) func() bool {
		return func() bool {
			e, err := bustest.KV(t, s.js, bus.BucketState).Get(context.Background(), bus.PlayerKey("baku", 0, player))
			return err == nil && strings.Contains(string(e.Value()), `"step":"`+step+`"`)
		}
	}
	pause := func(paused bool, end *metav1.Time) {
		sp := spec
		sp.Paused, sp.Window = paused, nil
		if end != nil {
			sp.Window = &crmv1.TimeWindow{End: end}
		}
		putCampaign(t, js, "welcome-series", sp)
		bustest.Eventually(t, 5*time.Second, "the campaign's new spec", func() bool {
			b := s.owner.Catalog.Brand("baku")
			return b != nil && b.Campaigns["welcome-series"] != nil && b.Campaigns["welcome-series"].Spec().Paused == paused
		})
	}

	register(t, s.js, "p-h1", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "the welcome", func() bool { return len(smsTexts(t, s.js, "p-h1")) == 1 })
	bustest.Eventually(t, 5*time.Second, "the flow parked at the delay", parked("p-h1", "settle-in"))
	pause(true, nil)
	// A run's message while paused.
	it := bus.Intent{ID: "run-1/p-h1/upsell", Brand: "baku", Player: "p-h1", Campaign: "welcome-series", Step: "upsell",
		Category: crmv1.CategoryService, Content: "upsell", Created: time.Now()}
	raw, _ := bus.Encode(&it)
	if _, err := s.js.Publish(context.Background(), bus.IntentSubject("baku", 0, "p-h1"), raw); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "the run's message held", func() bool {
		for _, o := range outcomesOf(t, s.js, "p-h1") {
			if o.IntentID == it.ID && o.Result == string(route.Defer) && o.Reason == string(route.ReasonCampaignPaused) && !o.SendAt.IsZero() {
				return true
			}
		}
		return false
	})
	// The delay (2 s) ends and several rechecks pass: nothing moves while paused.
	time.Sleep(5 * time.Second)
	if got := smsTexts(t, s.js, "p-h1"); len(got) != 1 {
		t.Fatalf("a paused campaign sent %q", got)
	}
	if !parked("p-h1", "settle-in")() {
		t.Fatal("the parked flow moved while the campaign was paused")
	}
	pause(false, nil)
	// Resumed: the held message goes out, and the flow goes on to its wait (2 s) and the
	// retention offer.
	var got []string
	bustest.Eventually(t, 20*time.Second, "the held message and the retention offer", func() bool {
		got = smsTexts(t, s.js, "p-h1")
		return len(got) == 3
	})
	if !slices.Contains(got, "Depozit bonusu sizi gozleyir") || !slices.Contains(got, "Sizin ucun 10 pulsuz firlanma") {
		t.Fatalf("after the resume: %q", got)
	}

	// Paused, and the window ends before the delay does: the flow is dropped, recorded.
	register(t, s.js, "p-h2", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "p-h2's welcome", func() bool { return len(smsTexts(t, s.js, "p-h2")) == 1 })
	bustest.Eventually(t, 5*time.Second, "p-h2's flow parked", parked("p-h2", "settle-in"))
	end := metav1.NewTime(time.Now().Add(500 * time.Millisecond))
	pause(true, &end)
	bustest.Eventually(t, 15*time.Second, "the flow dropped past the window", func() bool {
		for _, o := range outcomesOf(t, s.js, "p-h2") {
			if o.Kind == flow.OutcomeFlow && o.Reason == flow.ReasonCampaignEnded && strings.Contains(o.Detail, "settle-in") {
				return true
			}
		}
		return false
	})
	if got := smsTexts(t, s.js, "p-h2"); len(got) != 1 {
		t.Fatalf("p-h2 got %q after the window ended", got)
	}
}

// One offer reaches a player once within the brand's dedup window, whichever campaign or
// flow instance carries it: two campaigns with the same content, each started twice by two
// deposits, send one push; two campaigns that word one offer differently under one
// dedupKey send one; two withdrawal notices (service, mandatory) in the window both go out.
func TestOneOfferOncePerDedupWindow(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	push := func(name, body, key string) crmv1.Content {
		return crmv1.Content{Name: name, DedupKey: key, Messages: []crmv1.Message{{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Bonus", Body: body}}}
	}
	offer := func(trigger string, content crmv1.Content) crmv1.CampaignSpec {
		return crmv1.CampaignSpec{Category: crmv1.CategoryMarketing, Priority: 40,
			Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: crmv1.EventType(trigger)}},
			Steps:    []crmv1.Step{{Name: "offer", Send: &crmv1.SendStep{Content: content.Name}}},
			Contents: []crmv1.Content{content}}
	}
	// The same content in two campaigns (putCampaign hashes it by name, as the manager does
	// by its messages): one offer.
	putCampaign(t, js, "spins-a", offer("deposit.completed", push("spins", "20 pulsuz fırlanma!", "")))
	putCampaign(t, js, "spins-b", offer("deposit.completed", push("spins", "20 pulsuz fırlanma!", "")))
	putCampaign(t, js, "vip-x", offer("bet.placed", push("vip-x", "VIP: 20 fırlanma sizindir", "spins-20")))
	putCampaign(t, js, "vip-y", offer("bet.placed", push("vip-y", "Sizə 20 pulsuz fırlanma", "spins-20")))
	clk := &fakeClock{}
	noon := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clk.set(noon)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	for _, p := range []string{"p-o1", "p-o2", "p-o3"} {
		register(t, s.js, p, "Asia/Baku", noon.Add(-time.Hour), nil)
		waitPlayer(t, s, p)
	}
	dep := func(id string) map[string]any {
		return map[string]any{"amount": "20.00", "currency": "AZN", "method": "card", "depositId": id}
	}
	publishEvent(t, s.js, "p-o1", "deposit.completed", "d-1", noon, dep("d-1"))
	publishEvent(t, s.js, "p-o1", "deposit.completed", "d-2", noon, dep("d-2")) // another deposit a moment later
	publishEvent(t, s.js, "p-o2", "bet.placed", "b-1", noon, map[string]any{"amount": "1.00", "currency": "AZN", "game": "book-of-ra", "gameCategory": "slots", "roundId": "b-1"})
	publishEvent(t, s.js, "p-o3", "withdrawal.completed", "w-1", noon, map[string]any{"amount": "50.00", "currency": "AZN", "withdrawalId": "w-1"})
	publishEvent(t, s.js, "p-o3", "withdrawal.completed", "w-2", noon, map[string]any{"amount": "70.00", "currency": "AZN", "withdrawalId": "w-2"})

	decided := func(p string) (sent, dup int) {
		for _, o := range outcomesOf(t, s.js, p) {
			if o.Kind != bus.OutcomeDecision {
				continue
			}
			switch {
			case o.Result == string(route.Send):
				sent++
			case o.Reason == string(route.ReasonDuplicateContent):
				dup++
			default:
				t.Errorf("%s: unexpected decision %+v", p, o)
			}
		}
		return
	}
	for _, c := range []struct {
		player    string
		sent, dup int
	}{{"p-o1", 1, 3}, {"p-o2", 1, 1}, {"p-o3", 2, 0}} {
		bustest.Eventually(t, 10*time.Second, c.player+"'s decisions", func() bool {
			sent, dup := decided(c.player)
			return sent+dup == c.sent+c.dup
		})
		if sent, dup := decided(c.player); sent != c.sent || dup != c.dup {
			t.Errorf("%s: %d sent and %d suppressed as DuplicateContent, want %d and %d", c.player, sent, dup, c.sent, c.dup)
		}
	}
	if n := len(bustest.Jobs(t, s.js, bus.DeliveryFilter("sms"))); n != 2 {
		t.Errorf("%d withdrawal notices, want both", n)
	}
}

// A flow whose delay ends while its campaign is paused is held, with a line in the
// player's history saying so, and goes on as soon as the campaign resumes, not at its next
// look (here ten minutes later).
func TestHeldFlowGoesOnWhenTheCampaignResumes(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	spec := welcomeSeries(time.Second)
	putCampaign(t, js, "welcome-series", spec)
	s := newStack(t, srv, "a", &fakeClock{})
	s.owner.PausedRecheck = 10 * time.Minute
	s.start(t, 1)
	setPaused := func(paused bool) {
		sp := spec
		sp.Paused = paused
		putCampaign(t, js, "welcome-series", sp)
		bustest.Eventually(t, 5*time.Second, "the campaign's new spec", func() bool {
			b := s.owner.Catalog.Brand("baku")
			return b != nil && b.Campaigns["welcome-series"] != nil && b.Campaigns["welcome-series"].Spec().Paused == paused
		})
	}
	register(t, s.js, "p-w1", "Asia/Baku", time.Now(), nil)
	bustest.Eventually(t, 10*time.Second, "the welcome", func() bool { return len(smsTexts(t, s.js, "p-w1")) == 1 })
	setPaused(true)
	bustest.Eventually(t, 15*time.Second, "the held flow's history line", func() bool {
		for _, o := range outcomesOf(t, s.js, "p-w1") {
			if o.Kind == flow.OutcomeFlow && o.Result == "held" && o.Reason == string(route.ReasonCampaignPaused) && strings.Contains(o.Detail, "settle-in") {
				return true
			}
		}
		return false
	})
	setPaused(false)
	// The wait (1 s) and then the retention offer: seconds, not the ten-minute look.
	bustest.Eventually(t, 20*time.Second, "the retention offer after the resume", func() bool { return len(smsTexts(t, s.js, "p-w1")) == 2 })
	held := 0
	for _, o := range outcomesOf(t, s.js, "p-w1") {
		if o.Result == "held" {
			held++
		}
	}
	if held != 1 {
		t.Errorf("%d held lines, want one", held)
	}
}
