package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/live"
	"github.com/croupier-crm/croupier/internal/clock"
)

// BenchmarkDashboard200Campaigns: a brand with 200 campaigns (each with counters, spend,
// suppression reasons and three channels in its status). Reports the time the dashboard's
// list takes through the console (as the analyst, median of b.N loads), the time to the
// live stream's first snapshot, and what one round of live updates costs the console: every
// campaign's status changes once (what the manager writes in one stats interval, 10 s)
// while a dashboard is open, as CPU time of the console's process per 10 s, in % of a core.
// The manager and the dispatcher do no work for the console: the stream is a watch on the
// API server. Run with -benchtime 20x.
func BenchmarkDashboard200Campaigns(b *testing.B) {
	ctx := context.Background()
	const n = 200
	objs := make([]*crmv1.Campaign, 0, n)
	for i := range n {
		name := fmt.Sprintf("bench-%03d", i)
		var cp crmv1.Campaign
		if fx.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cp) != nil { // the first call of the benchmark creates them
			sampleCampaign(b, name)
			if err := fx.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cp); err != nil {
				b.Fatal(err)
			}
		}
		objs = append(objs, &cp)
	}
	round := int64(0)
	bump := func() {
		round++
		for _, cp := range objs {
			cp.Status.Counters = &crmv1.CampaignCounters{Targeted: 1000 + round, Sent: 990 + round, Delivered: 900 + round, Converted: 40,
				Suppressed: map[string]int64{"QuietHours": 3, "FrequencyCap": 5}}
			cp.Status.Spend = &crmv1.SpendStatus{Spent: &crmv1.Money{Amount: "120.50", Currency: "AZN"}}
			cp.Status.Channels = []crmv1.ChannelReport{{Channel: crmv1.ChannelSMS, Sent: 500 + round}, {Channel: crmv1.ChannelEmail, Sent: 400},
				{Channel: crmv1.ChannelPush, Sent: 90}}
			if err := fx.admin.Status().Update(ctx, cp); err != nil {
				b.Fatal(err)
			}
		}
	}
	bump()
	analyst := signIn(b, "analyst").c
	var loads []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		resp, err := analyst.Get(fx.url + "/api/brands/" + ns + "/campaigns")
		if err != nil {
			b.Fatal(err)
		}
		var rows []live.Row
		if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil || len(rows) < n {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
		resp.Body.Close()
		loads = append(loads, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(loads, func(i, j int) bool { return loads[i] < loads[j] })
	b.ReportMetric(float64(loads[len(loads)/2].Microseconds())/1000, "ms/list")
	// The reference: the same list straight from the API server (what kubectl get does).
	var direct []time.Duration
	for range b.N {
		start := time.Now()
		var list crmv1.CampaignList
		if err := fx.admin.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) < n {
			b.Fatalf("%d campaigns, %v", len(list.Items), err)
		}
		direct = append(direct, time.Since(start))
	}
	sort.Slice(direct, func(i, j int) bool { return direct[i] < direct[j] })
	b.ReportMetric(float64(direct[len(direct)/2].Microseconds())/1000, "ms/api-list")

	// The live stream: its first snapshot, then one round of updates.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", fx.url+"/api/brands/"+ns+"/live", nil)
	start := time.Now()
	resp, err := analyst.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 8<<20)
	next := func() live.Event {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev live.Event
				if err := json.Unmarshal([]byte(d), &ev); err != nil {
					b.Fatal(err)
				}
				return ev
			}
		}
		b.Fatal("the stream ended")
		return live.Event{}
	}
	if ev := next(); ev.Kind != "snapshot" || len(ev.Rows) < n {
		b.Fatalf("first event %s with %d rows", ev.Kind, len(ev.Rows))
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/snapshot")
	done := make(chan time.Duration)
	target := 1000 + round + 1 // the next round's
	go func() {
		cpu0 := clock.ProcessCPU()
		seen := 0
		for seen < n {
			if ev := next(); ev.Kind == "upsert" && ev.Rows[0].Status.Counters != nil && ev.Rows[0].Status.Counters.Targeted == target {
				seen++
			}
		}
		done <- clock.ProcessCPU() - cpu0
	}()
	// The CPU time below is the whole test process's: the console, its API clients, and
	// this benchmark's own status writes and stream reading (an upper bound).
	bump()
	cpu := <-done
	b.ReportMetric(100*cpu.Seconds()/10, "%core-per-10s-round")
}
