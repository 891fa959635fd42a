package flow_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// BenchmarkRunFanOut expands one scheduled run to a Segment of CROUPIER_BENCH_PLAYERS
// (default 1,000,000) players held by four partition owners, and reports the intents
// stored in INTENTS per second, from the run's publish to the last intent. The owners
// consume RUNS only: routing the intents is what the pipeline benchmarks measure, and in
// production the rollout rate paces it.
func BenchmarkRunFanOut(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("CROUPIER_BENCH_PLAYERS")); err == nil && v > 0 {
		n = v
	}
	const parts = 4
	srv := bustest.Start(b, parts)
	_, js := srv.Connect(b)
	ctx := context.Background()
	putPolicy(b, js)
	putRecord(b, js, bus.KindSegment, "az", bus.ConfigRecord{Segment: &bus.SegmentConfig{Spec: crmv1.SegmentSpec{Rule: `player.country == "AZ" && player.depositCount >= 1`}}})
	putRecord(b, js, bus.KindCampaign, "daily-spins", bus.ConfigRecord{Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{Category: crmv1.CategoryMarketing,
		Audience: &crmv1.Audience{SegmentRef: &crmv1.LocalObjectReference{Name: "az"}},
		Trigger:  crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}},
		Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "main"}}},
		Contents: []crmv1.Content{{Name: "main", Messages: []crmv1.Message{{Channel: crmv1.ChannelInApp, Locale: "az", Body: "20 pulsuz firlanma"}}}}}}})
	for i := range n {
		id := "p-" + strconv.Itoa(i)
		v, _ := json.Marshal(players.Player{ID: id, Brand: "baku", Country: "AZ", Language: "az", TimeZone: "Asia/Baku", Currency: "AZN", DepositCount: 1})
		if _, err := js.PublishAsync("$KV."+bus.BucketPlayers+"."+bus.PlayerKey("baku", bus.Partition(id, parts), id), v, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	s := newStack(b, srv, "a", &fakeClock{})
	s.runner.Sources = []partition.Source{partition.Runs}
	s.runner.PumpEvery = 10 * time.Millisecond
	cb := s.runner.Callbacks()
	for p := range parts {
		cb.Acquired(ctx, p, 1)
	}
	b.Cleanup(func() {
		for p := range parts {
			cb.Released(p)
		}
	})
	// The owners are open once their Segment counts are written.
	stats := bustest.KV(b, js, bus.BucketStats)
	bustest.Eventually(b, 5*time.Minute, "the partitions loaded", func() bool {
		total := int64(0)
		for p := range parts {
			e, err := stats.Get(ctx, bus.StatsKey("baku", bus.KindSegment, "az", p))
			if err != nil {
				return false
			}
			st, _ := bus.Decode[bus.PartitionStats](e.Value())
			total += st.Counters[bus.StatMembers]
		}
		return total == int64(n)
	})
	intents, err := js.Stream(ctx, bus.StreamIntents)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	// Due now: a run later than its schedule reaches is not expanded.
	at := time.Now().UTC().Truncate(time.Second)
	raw, _ := bus.Encode(bus.RunRequest{RunID: bus.RunID("uid-daily-spins", at), Brand: "baku", Campaign: "daily-spins", CampaignUID: "uid-daily-spins", ScheduledTime: at})
	if _, err := js.Publish(ctx, bus.RunSubject("baku", "daily-spins"), raw); err != nil {
		b.Fatal(err)
	}
	for {
		info, err := intents.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(n) {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d intents after 5 minutes", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/took.Seconds(), "intents/s")
	b.ReportMetric(took.Seconds(), "s")
}

func putPolicy(tb testing.TB, js jetstream.JetStream) {
	if _, err := bustest.KV(tb, js, bus.BucketConfig).Put(context.Background(), bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku-casino"), bustest.SamplePolicyRecord(tb, "baku")); err != nil {
		tb.Fatal(err)
	}
}
