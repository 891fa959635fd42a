package flow_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/report"
)

// A player's deposits and gaming result in the three days before the start are the
// "before"; a deposit, a stake and a win within three days after it are the "after"
// (with the sum of squared differences moving by 2dx + x^2); activity on day 1 marks the
// cohort's day-1 retention once; a deposit after the window counts for nothing.
func TestEffectBeforeAfterAndRetention(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "kyc-thanks", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed"}},
		Goal:     &crmv1.Goal{Event: "deposit.completed", Window: &metav1.Duration{Duration: 72 * time.Hour}},
		Steps:    []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
		Contents: []crmv1.Content{sms("hello", "Təşəkkürlər")}})
	clk := &fakeClock{}
	start := time.Now().UTC().Truncate(time.Hour)
	clk.set(start)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	const p = "p-effect"
	register(t, s.js, p, "Asia/Baku", start.AddDate(0, 0, -10), nil)
	deposit := func(id string, at time.Time, amount string) {
		publishEvent(t, s.js, p, "deposit.completed", id, at, map[string]any{"amount": amount, "currency": "AZN", "method": "card", "depositId": id})
	}
	bet := func(id string, at time.Time, amount, win string) {
		publishEvent(t, s.js, p, "bet.placed", id+"-p", at, map[string]any{"amount": amount, "currency": "AZN", "game": "book-of-ra", "gameCategory": "slots", "roundId": id})
		publishEvent(t, s.js, p, "bet.settled", id+"-s", at, map[string]any{"amount": amount, "win": win, "currency": "AZN", "game": "book-of-ra", "gameCategory": "slots", "roundId": id})
	}
	deposit("d-old", start.AddDate(0, 0, -5), "99.00") // before the three days: not counted
	deposit("d-2", start.AddDate(0, 0, -2), "10.00")
	deposit("d-1", start.AddDate(0, 0, -1), "5.00")
	bet("r-1", start.AddDate(0, 0, -1), "3.00", "1.00") // NGR +2.00
	publishEvent(t, s.js, p, "kyc.passed", "kyc-1", start, map[string]any{})
	stat := func(name string) int64 {
		return statsOf(t, js, bus.KindCampaign, "kyc-thanks")[bus.EffectStat(bus.EffectAll, name)]
	}
	bustest.Eventually(t, 20*time.Second, "the player measured at the start", func() bool { return stat(bus.EffectPlayers) == 1 })
	if dep, ngr, sq := stat(bus.EffectDepBefore), stat(bus.EffectNGRBefore), stat(bus.EffectDepDiffSq); dep != 1500 || ngr != 200 || sq != 1500*1500 {
		t.Fatalf("before: deposits %d, NGR %d, squares %d; want 1500, 200, 2250000", dep, ngr, sq)
	}
	clk.set(start.Add(2 * time.Hour))
	deposit("d-a1", start.Add(2*time.Hour), "20.00")
	bet("r-2", start.Add(2*time.Hour), "4.00", "10.00") // NGR -6.00
	bustest.Eventually(t, 20*time.Second, "the after", func() bool { return stat(bus.EffectDepAfter) == 2000 && stat(bus.EffectNGRAfter) == -600 })
	// (2000 - 1500)^2 and (-600 - 200)^2.
	if sq, nsq := stat(bus.EffectDepDiffSq), stat(bus.EffectNGRDiffSq); sq != 500*500 || nsq != 800*800 {
		t.Fatalf("squared differences %d %d, want %d %d", sq, nsq, 500*500, 800*800)
	}
	// Day 1 after the start: a session marks the cohort once.
	clk.set(start.Add(26 * time.Hour))
	cohort := start.Format(time.DateOnly)
	for _, id := range []string{"s-1", "s-2"} {
		publishEvent(t, s.js, p, "session.started", id, start.Add(26*time.Hour), map[string]any{})
	}
	cohortStat := func(name string) int64 {
		return statsOf(t, js, bus.KindCampaign, "kyc-thanks")[bus.EffectCohortStat(bus.EffectAll, cohort, name)]
	}
	bustest.Eventually(t, 20*time.Second, "day-1 retention", func() bool { return cohortStat(bus.EffectD1) == 1 })
	// After the three days: a deposit moves nothing; day 7 is not reached yet.
	clk.set(start.Add(80 * time.Hour))
	deposit("d-late", start.Add(80*time.Hour), "50.00")
	publishEvent(t, s.js, p, "session.started", "s-3", start.Add(80*time.Hour), map[string]any{})
	clk.set(start.Add(7*24*time.Hour + time.Hour))
	publishEvent(t, s.js, p, "session.started", "s-7", start.Add(7*24*time.Hour+time.Hour), map[string]any{})
	bustest.Eventually(t, 20*time.Second, "day-7 retention", func() bool { return cohortStat(bus.EffectD7) == 1 })
	if dep, d1, n := stat(bus.EffectDepAfter), cohortStat(bus.EffectD1), cohortStat(bus.EffectStarted); dep != 2000 || d1 != 1 || n != 1 {
		t.Fatalf("after the window: deposits after %d, day 1 %d, started %d; want 2000, 1, 1", dep, d1, n)
	}
}

// The report's N and the player record's trailing days are one number.
func TestEffectDaysFitThePlayerRecord(t *testing.T) {
	if players.TrailingDays != report.EffectTrailingDays {
		t.Fatalf("players keep %d trailing days, the report assumes %d", players.TrailingDays, report.EffectTrailingDays)
	}
}
