package flow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// TestChannelCountersAndLastTouch: what the providers and players report about a
// campaign's messages is counted per channel, a provider's report that names only the
// decision included; a conversion and its deposit go to the channel of the player's last
// message a provider took, and a player the campaign never reached converts for the
// campaign but for no channel. Hand-computed:
//
//	p-c0: sent, delivered (the provider names the decision only), clicked; deposits 20.00
//	p-c1: sent, undelivered later
//	p-c2: sent, hard bounce
//	p-c3: no send; deposits 10.00
//	=> sms: sent 3, delivered 1, clicked 1, undelivered 1, bounced 1, converted 1, revenue 2000
//	   campaign: sent 3, delivered 1, converted 2, revenue 3000
func TestChannelCountersAndLastTouch(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	// A campaign without an experiment counts its goal (spec.goal).
	putCampaign(t, js, "welcome-ch", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered"}},
		Steps:    []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
		Contents: []crmv1.Content{sms("hello", "Salam")},
		Goal:     &crmv1.Goal{Event: "deposit.completed", Window: ptrTo(dur(30 * 24 * time.Hour))}})
	clk := &fakeClock{}
	s := newStack(t, srv, "a", clk)
	s.start(t, 1)
	start := time.Now()
	players := []string{"p-c0", "p-c1", "p-c2", "p-c3"}
	for _, p := range players {
		register(t, s.js, p, "Asia/Baku", time.Now(), nil)
	}
	decision := map[string]string{}
	bustest.Eventually(t, 20*time.Second, "four receipts", func() bool {
		for _, j := range bustest.Jobs(t, js, bus.DeliveryFilter("sms")) {
			decision[j.Player] = j.DecisionID
		}
		return len(decision) == 4
	})
	ctx := context.Background()
	put := func(o bus.Outcome) {
		t.Helper()
		o.Time, o.Brand = time.Now().UTC(), "baku"
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, o.Player), b); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range players[:3] {
		put(bus.Outcome{DecisionID: decision[p], Player: p, Campaign: "welcome-ch", Kind: bus.OutcomeAttempt, Result: "sent", Channel: crmv1.ChannelSMS})
	}
	// As the SMS aggregator's delivery report arrives: the decision only.
	put(bus.Outcome{DecisionID: decision["p-c0"], Player: "p-c0", Kind: bus.OutcomeReport, Result: bus.ReportDelivered})
	put(bus.Outcome{DecisionID: decision["p-c0"], Player: "p-c0", Campaign: "welcome-ch", Kind: bus.OutcomeReport, Result: bus.ReportClicked, Channel: crmv1.ChannelSMS})
	put(bus.Outcome{DecisionID: decision["p-c1"], Player: "p-c1", Kind: bus.OutcomeReport, Result: bus.ReportUndelivered})
	put(bus.Outcome{DecisionID: decision["p-c2"], Player: "p-c2", Kind: bus.OutcomeReport, Result: bus.ReportHard})
	// As the one-click unsubscribe of p-c2's message reports it.
	put(bus.Outcome{DecisionID: decision["p-c2"], Player: "p-c2", Campaign: "welcome-ch", Kind: bus.OutcomeReport, Result: bus.ReportUnsubscribed, Channel: crmv1.ChannelSMS})
	ch := func(name string) string { return bus.ChannelStat(crmv1.ChannelSMS, name) }
	bustest.Eventually(t, 10*time.Second, "the reports counted per channel", func() bool {
		st := statsOf(t, js, bus.KindCampaign, "welcome-ch")
		return st[ch(bus.StatSent)] == 3 && st[ch(bus.StatDelivered)] == 1 && st[ch(bus.StatClicked)] == 1 &&
			st[ch(bus.StatUndelivered)] == 1 && st[ch(bus.StatBounced)] == 1 && st[ch(bus.StatUnsubscribes)] == 1 && st[bus.StatSent] == 3 && st[bus.StatDelivered] == 1
	})
	// p-c0's is a first deposit (a lead); p-c3's is not marked first.
	for p, amount := range map[string]string{"p-c0": "20.00", "p-c3": "10.00"} {
		publishEvent(t, s.js, p, "deposit.completed", "dep-"+p, time.Now(), map[string]any{"amount": amount, "currency": "AZN", "method": "card", "depositId": "d-" + p, "first": p == "p-c0"})
	}
	var st map[string]int64
	bustest.Eventually(t, 10*time.Second, "the conversions attributed", func() bool {
		st = statsOf(t, js, bus.KindCampaign, "welcome-ch")
		return st[bus.StatConverted] == 2 && st[bus.StatRevenue] == 3000
	})
	if st[ch(bus.StatConverted)] != 1 || st[ch(bus.StatRevenue)] != 2000 {
		t.Errorf("sms converted %d, revenue %d; want 1 and 2000 (p-c0's deposit; p-c3 was never reached)", st[ch(bus.StatConverted)], st[ch(bus.StatRevenue)])
	}
	// By dimension: the four registered in Azerbaijan (register's country) at VIP level 0:
	// 4 targeted, 3 sent, 2 converted.
	for _, d := range []struct{ dim, value string }{{bus.DimCountry, "AZ"}, {bus.DimVIP, "0"}} {
		if st[bus.SegmentStat(d.dim, d.value, bus.StatTargeted)] != 4 || st[bus.SegmentStat(d.dim, d.value, bus.StatSent)] != 3 ||
			st[bus.SegmentStat(d.dim, d.value, bus.StatConverted)] != 2 {
			t.Errorf("by %s %s: targeted %d, sent %d, converted %d; want 4, 3, 2", d.dim, d.value, st[bus.SegmentStat(d.dim, d.value, bus.StatTargeted)],
				st[bus.SegmentStat(d.dim, d.value, bus.StatSent)], st[bus.SegmentStat(d.dim, d.value, bus.StatConverted)])
		}
	}
	if st[bus.StatLeads] != 1 || st[ch(bus.StatLeads)] != 1 || st[bus.StatLaunched] != 4 || st[bus.StatTargeted] != 4 {
		t.Errorf("leads %d (sms %d), launched %d, targeted %d; want 1, 1, 4, 4 (p-c0's first deposit; four registrations)",
			st[bus.StatLeads], st[ch(bus.StatLeads)], st[bus.StatLaunched], st[bus.StatTargeted])
	}
	// The same counters on the brand's day (Baku, as the test's policy says or the default).
	baku, _ := time.LoadLocation("Asia/Baku")
	days := map[string]bool{start.In(baku).Format(time.DateOnly): true, time.Now().In(baku).Format(time.DateOnly): true}
	var daySent, dayConverted int64
	for d := range days {
		daySent += st[bus.DayStat(d, crmv1.ChannelSMS, bus.StatSent)]
		dayConverted += st[bus.DayStat(d, crmv1.ChannelSMS, bus.StatConverted)]
	}
	if daySent != 3 || dayConverted != 1 {
		t.Errorf("sms on the day: sent %d, converted %d; want 3 and 1 (%v)", daySent, dayConverted, st)
	}
	// Past the brand's attribution window (7 days by default): p-c1, last reached by SMS,
	// deposits 8 days later, within the goal's 30 days: a conversion of the campaign, of no
	// channel.
	clk.set(time.Now().Add(8 * 24 * time.Hour))
	publishEvent(t, s.js, "p-c1", "deposit.completed", "dep-late", clk.now(), map[string]any{"amount": "5.00", "currency": "AZN", "method": "card", "depositId": "d-late"})
	bustest.Eventually(t, 10*time.Second, "the late conversion", func() bool {
		st = statsOf(t, js, bus.KindCampaign, "welcome-ch")
		return st[bus.StatConverted] == 3 && st[bus.StatRevenue] == 3500
	})
	if st[ch(bus.StatConverted)] != 1 || st[ch(bus.StatRevenue)] != 2000 {
		t.Errorf("after a conversion past the attribution window: sms converted %d, revenue %d; want still 1 and 2000", st[ch(bus.StatConverted)], st[ch(bus.StatRevenue)])
	}
	for k, v := range st {
		if _, _, _, ok := bus.ParseDayStat(k); ok {
			continue
		}
		if strings.HasPrefix(k, bus.ChannelStatPrefix) && !strings.HasPrefix(k, ch("")) {
			t.Errorf("a counter of another channel: %s = %d", k, v)
		}
	}
}
