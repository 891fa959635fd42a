package route_test

import (
	"strconv"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// BenchmarkDecide is one routing decision for a marketing message of a Baku player with a
// realistic history (sends counted by two caps, a dedup check), through all ten steps.
func BenchmarkDecide(b *testing.B) {
	pol := bustest.SamplePolicy(b, "baku")
	now := at("2026-11-22T08:00:00Z")
	p := bakuPlayer(now)
	h := &route.History{}
	for i := range 4 {
		h.Record(crmv1.CategoryMarketing, crmv1.ChannelPush, uint64(i), now.Add(-time.Duration(30+i)*time.Hour))
	}
	intents := make([]bus.Intent, 1024)
	for i := range intents {
		intents[i] = bus.Intent{ID: "run-1/p-1/" + strconv.Itoa(i), Brand: "baku", Player: "p-1", Campaign: "daily-spins",
			Step: "send", FlowInstance: "f-" + strconv.Itoa(i), Category: crmv1.CategoryMarketing, Content: "spins"}
	}
	in := route.Input{Player: p, Policy: pol, Offered: all, Configured: all, History: h, Budget: route.Unlimited{}, Now: now}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		in.Intent = &intents[i%len(intents)]
		if d := route.Decide(&in); d.Result != route.Send {
			b.Fatal(d)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
