package flow_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/budget"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func grantsOf(t *testing.T, s *stack) []bus.RewardGrant {
	return bustest.Collect[bus.RewardGrant](t, s.js, bus.StreamRewards, "croupier.rewards.>")
}

// A campaign with a 3.01 AZN budget grants a 1.00 AZN bonus and then announces it (upper
// bound 0.002 AZN) per deposit: three grants fit; the fourth is refused with
// BudgetExhausted and its announcement is not sent (the grant step names no onRefused);
// from then on the campaign is paused by its budget and starts nothing, saying so in each
// player's history; real costs below the reservation give budget back without lifting
// the pause; raising the budget lets grants and their announcements through again.
func TestBudgetCapStopsGrantsAndSettlesCosts(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	spec := func(total string) crmv1.CampaignSpec {
		return crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
			Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Steps:    []crmv1.Step{{Name: "bonus", Grant: &crmv1.GrantStep{Reward: "spins"}}, {Name: "tell", Send: &crmv1.SendStep{Content: "tell"}}},
			Contents: []crmv1.Content{sms("tell", "Bonus")},
			Rewards:  []crmv1.Reward{{Name: "spins", FreeSpins: &crmv1.FreeSpinsReward{Game: "book-of-ra", Count: 10, SpinValue: crmv1.Money{Amount: "0.10", Currency: "AZN"}}}},
			Budget:   &crmv1.Budget{Total: &crmv1.Money{Amount: total, Currency: "AZN"}},
		}
	}
	put := func(totalMinor int64, total string) {
		putRecord(t, js, bus.KindCampaign, "deposit-bonus", bus.ConfigRecord{Campaign: &bus.CampaignConfig{Spec: spec(total),
			ContentHashes: map[string]string{"tell": "hash-tell"},
			BudgetTotal:   &bus.MinorAmount{Minor: totalMinor, Currency: "AZN"},
			RewardValues:  map[string]bus.MinorAmount{"spins": {Minor: 100, Currency: "AZN"}}}})
	}
	put(301, "3.01")
	s := newStack(t, srv, "a", &fakeClock{})
	leases := &budget.Leases{KV: bustest.KV(t, js, bus.BucketBudget), Caps: s.owner.Catalog.Caps, Log: quiet}
	s.owner.Budget, s.owner.Rewards = leases, reward.Engine{}
	s.start(t, 1)
	deposit := func(p string) {
		publishEvent(t, s.js, p, "deposit.completed", "dep-"+p, time.Now(), map[string]any{"amount": "20.00", "currency": "AZN", "method": "card", "depositId": "d-" + p})
	}
	// For each player: the grant refused, the flow ended at it, the campaign found paused
	// by its budget at the trigger, and the sends decided.
	type trace struct{ refused, ended, paused, sends int }
	traceOf := func(p string) (tr trace) {
		for _, o := range outcomesOf(t, s.js, p) {
			switch {
			case o.Kind == flow.OutcomeFlow && o.Result == "refused" && o.Reason == string(route.ReasonBudgetExhausted):
				tr.refused++
			case o.Kind == flow.OutcomeFlow && o.Reason == flow.ReasonGrantRefused:
				tr.ended++
				if !strings.Contains(o.Detail, "onRefused") {
					t.Errorf("%s: the end of the flow does not say why: %q", p, o.Detail)
				}
			case o.Kind == flow.OutcomeFlow && o.Result == string(route.Suppress) && o.Reason == string(route.ReasonBudgetExhausted):
				tr.paused++
				if !strings.Contains(o.Detail, "budget") {
					t.Errorf("%s: the paused line does not say why: %q", p, o.Detail)
				}
			case o.Kind == bus.OutcomeDecision:
				tr.sends++
			}
		}
		return
	}
	players := []string{"p-b1", "p-b2", "p-b3", "p-b4", "p-b5", "p-b6"}
	want := []trace{{sends: 1}, {sends: 1}, {sends: 1}, {refused: 1, ended: 1}, {paused: 1}, {paused: 1}}
	for i, p := range players {
		register(t, s.js, p, "Asia/Baku", time.Now(), nil)
		waitPlayer(t, s, p)
		deposit(p)
		n := 2
		if want[i].paused > 0 {
			n = 1
		}
		bustest.Eventually(t, 5*time.Second, "the flow of "+p, func() bool { return len(outcomesOf(t, s.js, p)) == n })
	}
	grants := grantsOf(t, s)
	if len(grants) != 3 {
		t.Fatalf("%d grants, want 3", len(grants))
	}
	// The refused grant is the campaign's one cancelled reward; the paused campaign
	// launched nothing for the last two deposits.
	bustest.Eventually(t, 10*time.Second, "the cancelled reward counted", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "deposit-bonus")
		return st[bus.StatRewardsCancelled] == 1 && st[bus.StatRewardsGranted] == 3 && st[bus.StatLaunched] == 4
	})
	if g := grants[0]; g.Value.Minor != 100 || g.Value.Currency != "AZN" || g.Reward.FreeSpins == nil || g.Player != "p-b1" ||
		g.ID != bus.RewardGrantID("deposit-bonus", "bonus", "p-b1", g.ID[strings.LastIndexByte(g.ID, '.')+1:]) {
		t.Fatalf("grant %+v", g)
	}
	for i, p := range players {
		if got := traceOf(p); got != want[i] {
			t.Errorf("%s: %+v, want %+v", p, got, want[i])
		}
	}
	for i, p := range players {
		if texts := smsTexts(t, s.js, p); len(texts) != want[i].sends {
			t.Errorf("%s got %q, want %d announcements", p, texts, want[i].sends)
		}
	}
	bustest.Eventually(t, 5*time.Second, "the reward cost counted", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "deposit-bonus")
		return st[bus.StatCostRewards] == 3_000_000 && st[bus.StatSuppressedPrefix+string(route.ReasonBudgetExhausted)] == 3
	})
	if !leases.Exhausted("baku", "deposit-bonus") {
		t.Fatal("the budget is not known exhausted")
	}

	// Two messages cost 0.0005 AZN each: 0.003 goes back, enough for one more send.
	for _, p := range players[:2] {
		for _, o := range outcomesOf(t, s.js, p) {
			if o.Kind == bus.OutcomeDecision && o.Result == string(route.Send) {
				raw, _ := json.Marshal(map[string]any{"decisionId": o.DecisionID, "amount": "0.0005", "currency": "AZN"})
				b, _ := json.Marshal(bus.CloudEvent{SpecVersion: "1.0", ID: "cost-" + p, Source: "croupier", Type: "cost.settled", Subject: p, Time: time.Now(), Data: raw})
				if _, err := s.js.Publish(context.Background(), bus.EventSubject("baku", p, "cost.settled"), b); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	bustest.Eventually(t, 5*time.Second, "the settled costs", func() bool {
		return statsOf(t, js, bus.KindCampaign, "deposit-bonus")[bus.StatCostMessages] == 1000
	})
	register(t, s.js, "p-b7", "Asia/Baku", time.Now(), nil)
	waitPlayer(t, s, "p-b7")
	deposit("p-b7")
	bustest.Eventually(t, 5*time.Second, "p-b7's paused line", func() bool { return len(outcomesOf(t, s.js, "p-b7")) == 1 })
	if got := traceOf("p-b7"); got != (trace{paused: 1}) {
		t.Fatalf("after settlement: %+v; the budget pause holds until the cap is raised", got)
	}

	// Raised to 5.00 AZN: grants go through again.
	put(500, "5.00")
	bustest.Eventually(t, 5*time.Second, "the raised budget", func() bool {
		c := s.owner.Catalog.Caps("baku", "deposit-bonus")
		return c != nil && c.Total == 5_000_000
	})
	register(t, s.js, "p-b8", "Asia/Baku", time.Now(), nil)
	waitPlayer(t, s, "p-b8")
	deposit("p-b8")
	bustest.Eventually(t, 5*time.Second, "p-b8's grant", func() bool { return len(grantsOf(t, s)) == 4 })
	bustest.Eventually(t, 5*time.Second, "p-b8's announcement", func() bool { return len(smsTexts(t, s.js, "p-b8")) == 1 })

	// The bonus engine reports the bonus taken: the loop closes in the counters.
	publishEvent(t, s.js, "p-b8", "bonus.activated", "act-p-b8", time.Now(), map[string]any{"bonusId": grantsOf(t, s)[3].ID, "campaign": "deposit-bonus"})
	bustest.Eventually(t, 5*time.Second, "the activation counted", func() bool {
		return statsOf(t, js, bus.KindCampaign, "deposit-bonus")[bus.StatBonusesActivated] == 1
	})
}
