package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func putLedger(t *testing.T, ns, name string, led bus.BudgetLedger) {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bus.BucketBudget)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bus.Encode(led)
	if _, err := kv.Put(context.Background(), bus.BudgetKey(ns, name), b); err != nil {
		t.Fatal(err)
	}
}

// The dispatchers record a reached cap in croupier-budget: the Campaign shows
// Paused=True/BudgetExhausted with an Event and its spec untouched; raising the budget
// in the spec resumes it with a BudgetRestored Event. A per-day cap shows when it lifts.
func TestBudgetExhaustedPausesWithoutEditingSpec(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := validCampaign(ns, "spins-budget")
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	gen := c.Generation
	// A 10 AZN grant refused with 5 AZN left: the message says so, not "spent".
	putLedger(t, ns, c.Name, bus.BudgetLedger{UID: string(c.UID), Granted: 995_000_000,
		Exhausted: &bus.BudgetExhaustion{Scope: bus.BudgetTotal, Cap: 1000_000_000, At: time.Now(), Asked: 10_000_000, Granted: 995_000_000}})
	cond := waitCondition(t, c, crmv1.ConditionPaused, metav1.ConditionTrue, crmv1.ReasonBudgetExhausted)
	if !strings.Contains(cond.Message, "total budget of 1000.00 AZN cannot cover what the campaign needs next: 10.00 AZN asked, 995.00 AZN spent or held by the dispatchers, 5.00 AZN left") {
		t.Fatalf("message %q", cond.Message)
	}
	if c.Status.Phase != crmv1.PhasePaused || c.Generation != gen || c.Spec.Paused {
		t.Fatalf("phase %q generation %d (was %d) spec.paused %v", c.Status.Phase, c.Generation, gen, c.Spec.Paused)
	}
	eventually(t, 10*time.Second, "BudgetExhausted event", func() error { return findEvent(ctx, ns, c.Name, crmv1.ReasonBudgetExhausted) })

	// Raising the total lifts it: the cap the ledger found reached is below the new one.
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.Budget.Total.Amount = "1500.00"
	if err := k8s.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, crmv1.ConditionPaused, metav1.ConditionFalse, crmv1.ReasonActive)
	if c.Status.Phase == crmv1.PhasePaused {
		t.Fatalf("phase %q after the raise", c.Status.Phase)
	}
	eventually(t, 10*time.Second, "BudgetRestored event", func() error { return findEvent(ctx, ns, c.Name, crmv1.ReasonBudgetRestored) })

	// A per-day cap reached: paused until the end of the day.
	patch = client.MergeFrom(c.DeepCopy())
	c.Spec.Budget.PerPeriod = &crmv1.PeriodBudget{Period: crmv1.PeriodDay, Amount: crmv1.Money{Amount: "100.00", Currency: "AZN"}}
	if err := k8s.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	putLedger(t, ns, c.Name, bus.BudgetLedger{UID: string(c.UID), Granted: 300_000_000, PeriodGranted: 100_000_000,
		Exhausted: &bus.BudgetExhaustion{Scope: bus.BudgetPerPeriod, Cap: 100_000_000, Until: until, At: time.Now(), Granted: 100_000_000}})
	cond = waitCondition(t, c, crmv1.ConditionPaused, metav1.ConditionTrue, crmv1.ReasonBudgetExhausted)
	if !strings.Contains(cond.Message, "this day's budget of 100.00 AZN cannot cover what the campaign needs next: 100.00 AZN spent or held by the dispatchers, 0.00 AZN left; sending resumes at "+until.Format(time.RFC3339)) {
		t.Fatalf("message %q", cond.Message)
	}
	// A ledger of an older Campaign of the same name does not pause this one.
	putLedger(t, ns, c.Name, bus.BudgetLedger{UID: "another-uid", Exhausted: &bus.BudgetExhaustion{Scope: bus.BudgetTotal, Cap: 1500_000_000}})
	waitCondition(t, c, crmv1.ConditionPaused, metav1.ConditionFalse, crmv1.ReasonActive)
}

func TestCampaignSpend(t *testing.T) {
	c := validCampaign("ns", "c")
	s := campaignSpend(c, map[string]int64{bus.StatCostRewards: 12_500_000, bus.StatCostMessages: 35_000})
	if s.Spent.Amount != "12.535" || s.Spent.Currency != "AZN" || s.Remaining.Amount != "987.465" {
		t.Fatalf("spend %+v %+v", s.Spent, s.Remaining)
	}
	// The budget-near-the-cap alert reads this gauge.
	if got := testutil.ToFloat64(budgetUsed.WithLabelValues("ns", "c")); got < 0.012534 || got > 0.012536 {
		t.Fatalf("croupier_campaign_budget_used_ratio = %v", got)
	}
	c.Spec.Budget = nil
	if s := campaignSpend(c, nil); s != nil {
		t.Fatalf("no budget: %+v", s)
	}
}

// A multi-use coupon's shared code is written to croupier-coupons when the Campaign is
// published, keeps its redemptions when the spec changes, and cannot be taken by another
// Campaign of the brand.
func TestSharedCouponCodes(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	maxUses := int32(100)
	c := validCampaign(ns, "welcome-code")
	c.Spec.Rewards = append(c.Spec.Rewards, crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "welcome", Code: "WELCOME50", MultiUse: true,
		MaxUses: &maxUses, Value: crmv1.Money{Amount: "50.00", Currency: "AZN"}}})
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	kv, err := js.KeyValue(ctx, bus.BucketCoupons)
	if err != nil {
		t.Fatal(err)
	}
	read := func() bus.Coupon {
		e, err := kv.Get(ctx, bus.CouponKey(ns, "WELCOME50"))
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := bus.Decode[bus.Coupon](e.Value())
		return cp
	}
	if cp := read(); cp.Campaign != "welcome-code" || cp.MaxUses != 100 || cp.Value.Minor != 5000 || cp.PerPlayer != 1 {
		t.Fatalf("record %+v", cp)
	}
	// Three redemptions happened; the spec raises maxUses.
	cp := read()
	cp.Uses = 3
	b, _ := bus.Encode(&cp)
	if _, err := kv.Put(ctx, bus.CouponKey(ns, "WELCOME50"), b); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	*c.Spec.Rewards[1].Coupon.MaxUses = 200
	if err := k8s.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "maxUses 200 with the uses kept", func() error {
		if cp := read(); cp.MaxUses != 200 || cp.Uses != 3 {
			return fmt.Errorf("record %+v", cp)
		}
		return nil
	})
	other := validCampaign(ns, "copycat")
	other.Spec.Rewards = append(other.Spec.Rewards, *c.Spec.Rewards[1].DeepCopy())
	if err := k8s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	cond := waitCondition(t, other, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonInvalidSpec)
	if !strings.Contains(cond.Message, `spec.rewards[code].coupon.code: WELCOME50 is already the code of Campaign "welcome-code"`) {
		t.Fatalf("message %q", cond.Message)
	}
}

func TestTournamentStatus(t *testing.T) {
	boards := map[int]bus.Leaderboard{
		0: {UID: "u1", Final: true, Scores: []bus.ScoreEntry{{Player: "p-2", Score: 50}, {Player: "p-4", Score: 10}}},
		1: {UID: "u1", Final: false, Scores: []bus.ScoreEntry{{Player: "p-1", Score: 50}, {Player: "p-3", Score: 30}}},
		2: {UID: "old", Final: true, Scores: []bus.ScoreEntry{{Player: "p-9", Score: 999}}},
	}
	ts := tournamentStatus("u1", boards, map[string]int64{bus.StatPrizesGranted: 2})
	if ts.Participants != 4 || ts.Final || ts.PrizesGranted != 2 || len(ts.Leaders) != 4 {
		t.Fatalf("status %+v", ts)
	}
	// Ties by player id; an older Campaign's board is ignored.
	if l := ts.Leaders; l[0].Player != "p-1" || l[1].Player != "p-2" || l[1].Rank != 2 || l[3].Player != "p-4" {
		t.Fatalf("leaders %+v", l)
	}
	b1 := boards[1]
	b1.Final = true
	boards[1] = b1
	if ts := tournamentStatus("u1", boards, nil); !ts.Final {
		t.Fatal("every board closed: final")
	}
	if tournamentStatus("u2", boards, nil) != nil {
		t.Fatal("no board of this Campaign")
	}
}
