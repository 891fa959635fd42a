package flow_test

import (
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// A test send to a seed player previews the message now: a paused campaign, quiet hours,
// the frequency cap (2 a day) and the dedup window do not hold it; it is marked test in
// the outcomes and counts toward nothing the player's real messages are held by (a real
// message later is neither capped nor deduplicated by it). A responsible-gaming block
// still stops it.
func TestTestSendBypassesPauseCapsAndDedupNotBlocks(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	spec := crmv1.CampaignSpec{Category: crmv1.CategoryMarketing, Priority: 50, Paused: true,
		Trigger:  crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}},
		Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "main"}}},
		Contents: []crmv1.Content{{Name: "main", Messages: []crmv1.Message{{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Pulsuz", Body: "20 pulsuz fırlanma!"}}}}}
	putCampaign(t, js, "daily-spins", spec)
	clk := &fakeClock{}
	late := time.Date(2026, 11, 22, 19, 30, 0, 0, time.UTC) // 23:30 in Baku: quiet hours
	clk.set(late)
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	register(t, s.js, "p-t1", "Asia/Baku", late.Add(-time.Hour), nil)
	register(t, s.js, "p-t2", "Asia/Baku", late.Add(-time.Hour), nil)
	waitPlayer(t, s, "p-t1")
	publishEvent(t, s.js, "p-t2", "coolingoff.started", "cool-p-t2", late.Add(-time.Minute), map[string]any{"until": late.Add(72 * time.Hour).Format(time.RFC3339)})
	bustest.Eventually(t, 10*time.Second, "p-t2 cooling off", func() bool {
		for _, pt := range s.owner.Keeper.Partitions() {
			if p, ok := pt.Get("baku", "p-t2"); ok && p.CoolingOffUntil > 0 {
				return true
			}
		}
		return false
	})
	test := func(id, player string) bus.Intent {
		it := spins(id, player, late)
		it.Test = true
		return it
	}
	for i, id := range []string{"test-1", "test-2", "test-3"} {
		publishIntent(t, s.js, test(id, "p-t1"))
		bustest.Eventually(t, 10*time.Second, "test send "+id, func() bool { return len(bustest.Jobs(t, s.js, allJobs)) == i+1 })
	}
	publishIntent(t, s.js, test("test-4", "p-t2"))
	bustest.Eventually(t, 10*time.Second, "the blocked player's test send decided", func() bool { return len(outcomesOf(t, s.js, "p-t2")) > 0 })
	for _, o := range outcomesOf(t, s.js, "p-t1") {
		if o.Kind == bus.OutcomeDecision && (o.Reason != string(route.ReasonTestSend) || !o.Test || o.Result != string(route.Send)) {
			t.Errorf("test send outcome %+v: want send, TestSend, marked test", o)
		}
	}
	if got := outcomesOf(t, s.js, "p-t2"); got[0].Result == string(route.Send) {
		t.Errorf("a test send to a cooling-off player was sent: %+v", got[0])
	}
	for _, j := range bustest.Jobs(t, s.js, allJobs) {
		if !j.Test {
			t.Errorf("job %s not marked test", j.DecisionID)
		}
	}
	// Resumed, at noon: the player's real message is neither capped nor deduplicated by
	// the three tests.
	spec.Paused = false
	putCampaign(t, js, "daily-spins", spec)
	bustest.Eventually(t, 5*time.Second, "the campaign resumed", func() bool {
		b := s.owner.Catalog.Brand("baku")
		return b != nil && b.Campaigns["daily-spins"] != nil && !b.Campaigns["daily-spins"].Spec().Paused
	})
	noon := late.Add(12 * time.Hour)
	clk.set(noon)
	publishIntent(t, s.js, spins("real-1", "p-t1", noon))
	bustest.Eventually(t, 10*time.Second, "the real message decided", func() bool {
		for _, o := range outcomesOf(t, s.js, "p-t1") {
			if o.IntentID == "real-1" {
				if o.Result != string(route.Send) || o.Test {
					t.Fatalf("the real message after three test sends: %+v", o)
				}
				return true
			}
		}
		return false
	})
}
