package flow_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// An experiment splits a campaign's players stickily into control (nothing sent) and two
// variants (the second with its own text); deposits within the goal window count as
// conversions and revenue per arm, including the control group's.
func TestExperimentArmsConversionAndRevenue(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	exp := &crmv1.Experiment{ControlPercent: 20, GoalEvent: "deposit.completed", GoalWindow: ptrTo(dur(time.Hour)),
		Variants: []crmv1.Variant{{Name: "a", Weight: 40}, {Name: "b", Weight: 40, Contents: []crmv1.ContentOverride{{Content: "hello", Use: "hello-b"}}}}}
	putCampaign(t, js, "welcome-ab", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:    crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered"}},
		Steps:      []crmv1.Step{{Name: "spins", Grant: &crmv1.GrantStep{Reward: "spins"}}, {Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
		Rewards:    []crmv1.Reward{{Name: "spins", FreeSpins: &crmv1.FreeSpinsReward{Game: "book-of-ra", Count: 5, SpinValue: crmv1.Money{Amount: "0.20", Currency: "AZN"}}}},
		Contents:   []crmv1.Content{sms("hello", "Salam A"), sms("hello-b", "Salam B")},
		Experiment: exp})
	s := newStack(t, srv, "a", &fakeClock{})
	s.owner.Rewards = reward.Engine{}
	s.start(t, 1)
	const n = 300
	arm := map[string]string{}
	count := map[string]int{}
	for i := range n {
		p := fmt.Sprintf("p-x%03d", i)
		arm[p] = flow.Variant("uid-welcome-ab", p, exp)
		count[arm[p]]++
		register(t, s.js, p, "Asia/Baku", time.Now(), nil)
	}
	for _, v := range []string{flow.Control, "a", "b"} {
		if share := float64(count[v]) / n; share < map[string]float64{flow.Control: 0.12, "a": 0.3, "b": 0.3}[v] || share > map[string]float64{flow.Control: 0.28, "a": 0.5, "b": 0.5}[v] {
			t.Fatalf("arm %s holds %d of %d", v, count[v], n)
		}
	}
	bustest.Eventually(t, 20*time.Second, "every arm counted", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "welcome-ab")
		return st[bus.VariantStat(flow.Control, bus.StatVariantPlayers)] == int64(count[flow.Control]) &&
			st[bus.VariantStat("a", bus.StatVariantPlayers)] == int64(count["a"]) && st[bus.VariantStat("b", bus.StatVariantPlayers)] == int64(count["b"])
	})
	bustest.Eventually(t, 10*time.Second, "grants and their cost per arm", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "welcome-ab")
		return st[bus.VariantStat("a", bus.StatRewardsGranted)] == int64(count["a"]) && st[bus.VariantStat("b", bus.StatRewardsGranted)] == int64(count["b"]) &&
			st[bus.VariantStat(flow.Control, bus.StatRewardsGranted)] == 0 && st[bus.VariantStat("a", bus.StatCostRewards)] == int64(count["a"])*1_000_000 &&
			st[bus.StatCostRewards] == int64(count["a"]+count["b"])*1_000_000
	})
	bustest.Eventually(t, 10*time.Second, "the messages", func() bool {
		return len(bustest.Jobs(t, js, bus.DeliveryFilter("sms"))) == count["a"]+count["b"]
	})
	for _, j := range bustest.Jobs(t, js, bus.DeliveryFilter("sms")) {
		want := map[string]string{"a": "Salam A", "b": "Salam B"}[arm[j.Player]]
		if j.Text != want {
			t.Fatalf("%s in arm %q got %q", j.Player, arm[j.Player], j.Text)
		}
	}
	// A control player's history says why nothing was sent, naming no missing step.
	for p, v := range arm {
		if v != flow.Control {
			continue
		}
		var ended []bus.Outcome
		for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", 0, p)) {
			if o.Reason == flow.ReasonControlGroup {
				ended = append(ended, o)
			}
		}
		if len(ended) != 1 || !strings.Contains(ended[0].Detail, "control group") || strings.HasSuffix(ended[0].Detail, "step ") {
			t.Fatalf("control player %s: %+v", p, ended)
		}
		break
	}
	// The first ten players of each arm deposit 20.00 and then 30.00 AZN.
	conv := map[string]int64{}
	var deposits int
	for i := range n {
		p := fmt.Sprintf("p-x%03d", i)
		if conv[arm[p]] == 10 {
			continue
		}
		conv[arm[p]]++
		for k, amount := range []string{"20.00", "30.00"} {
			publishEvent(t, s.js, p, "deposit.completed", fmt.Sprintf("dep-%s-%d", p, k), time.Now(), map[string]any{"amount": amount, "currency": "AZN", "method": "card", "depositId": fmt.Sprintf("d-%s-%d", p, k)})
			deposits++
		}
	}
	bustest.Eventually(t, 10*time.Second, "conversions and revenue per arm", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "welcome-ab")
		for _, v := range []string{flow.Control, "a", "b"} {
			// Ten players, each 50.00 AZN: sum 50,000 minor, squares 10 x 5,000^2.
			if st[bus.VariantStat(v, bus.StatVariantConverted)] != 10 || st[bus.VariantStat(v, bus.StatVariantRevenue)] != 50_000 ||
				st[bus.VariantStat(v, bus.StatVariantRevenueSq)] != 10*5000*5000 {
				return false
			}
		}
		return st[bus.StatConverted] == 30 && st[bus.StatRevenue] == 150_000
	})
	if deposits != 60 {
		t.Fatalf("%d deposits", deposits)
	}
	// Each converted player has one conversion record (the second deposit converts nothing
	// more), naming the goal event and the arm.
	for i := range 3 {
		p := fmt.Sprintf("p-x%03d", i)
		var convs []bus.Outcome
		for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", 0, p)) {
			if o.Kind == bus.OutcomeConversion {
				convs = append(convs, o)
			}
		}
		if len(convs) != 1 || convs[0].Campaign != "welcome-ab" || convs[0].Reason != "deposit.completed" || convs[0].Detail != arm[p] || convs[0].Result != "converted" {
			t.Fatalf("%s (arm %s): conversion records %+v", p, arm[p], convs)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// Entering an A/B campaign twice counts a player once in its arm, converting twice counts
// one converted player, and a deposit is one revenue sample of the player: a re-entry
// cannot move the arms' tests.
func TestExperimentCountsPlayersNotEntries(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	exp := &crmv1.Experiment{ControlPercent: 20, GoalEvent: "deposit.completed", GoalWindow: ptrTo(dur(time.Hour)),
		Variants: []crmv1.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50}}}
	putCampaign(t, js, "session-ab", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:    crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "session.started"}},
		Steps:      []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
		Contents:   []crmv1.Content{sms("hello", "Salam")},
		Experiment: exp})
	s := newStack(t, srv, "a", &fakeClock{})
	s.start(t, 1)
	const n = 40
	count := map[string]int64{}
	for i := range n {
		p := fmt.Sprintf("p-e%03d", i)
		count[flow.Variant("uid-session-ab", p, exp)]++
		register(t, s.js, p, "Asia/Baku", time.Now(), nil)
	}
	for round := range 2 {
		for i := range n {
			p := fmt.Sprintf("p-e%03d", i)
			publishEvent(t, s.js, p, "session.started", fmt.Sprintf("s-%d-%d", round, i), time.Now(), map[string]any{})
		}
	}
	for round := range 2 {
		for i := range n {
			p := fmt.Sprintf("p-e%03d", i)
			publishEvent(t, s.js, p, "deposit.completed", fmt.Sprintf("d-%d-%d", round, i), time.Now(),
				map[string]any{"amount": "10.00", "currency": "AZN", "method": "card", "depositId": fmt.Sprintf("d-%d-%d", round, i)})
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for statsOf(t, js, bus.KindCampaign, "session-ab")[bus.StatRevenue] != 2*n*1000 { // minor units
		if time.Now().After(deadline) {
			t.Fatalf("not every deposit counted: %v", statsOf(t, js, bus.KindCampaign, "session-ab"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := statsOf(t, js, bus.KindCampaign, "session-ab")
	for _, v := range []string{flow.Control, "a", "b"} {
		if got := st[bus.VariantStat(v, bus.StatVariantPlayers)]; got != count[v] {
			t.Errorf("arm %s counts %d players, %d are in it (each entered twice)", v, got, count[v])
		}
		if got := st[bus.VariantStat(v, bus.StatVariantConverted)]; got != count[v] {
			t.Errorf("arm %s counts %d converted, %d players converted (twice each)", v, got, count[v])
		}
		// Each player deposited 20.00 AZN in all (2,000 minor units): one sample of 2,000.
		if got, want := st[bus.VariantStat(v, bus.StatVariantRevenueSq)], count[v]*2000*2000; got != want {
			t.Errorf("arm %s: sum of squared player revenue %d, want %d", v, got, want)
		}
	}
}
