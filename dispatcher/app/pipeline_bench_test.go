package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

const pipelinePlayers = 20000

// pipeline starts one dispatcher on the Baku policy, an SMS ChannelPolicy and a service
// Campaign that sends an SMS on every deposit.completed, with players registered; it
// returns a publisher and the stop function.
func pipeline(b *testing.B) (jetstream.JetStream, *nats.Conn, func() error) {
	return pipelineWith(b, false)
}

// pipelineWith is pipeline with sealing off when unsealed (to measure what it costs).
func pipelineWith(b *testing.B, unsealed bool) (jetstream.JetStream, *nats.Conn, func() error) {
	srv := bustest.Start(b, benchPartitions)
	pnc, cjs := srv.Connect(b)
	configureReceipts(b, cjs)
	ctx := context.Background()
	js, err := jetstream.New(pnc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		b.Fatal(err)
	}
	stop := startWith(b, srv, app.Options{Partitions: benchPartitions, Batch: 1000, HealthAddr: "127.0.0.1:0",
		Providers: map[crmv1.ProviderType]channel.Factory{}, Unsealed: unsealed})
	bustest.Eventually(b, 10*time.Second, "every partition leased", func() bool {
		_, err := js.Consumer(ctx, bus.StreamIntents, "intents-"+fmt.Sprint(benchPartitions-1))
		return err == nil
	})
	for i := range pipelinePlayers {
		p := fmt.Sprintf("p-%07d", i)
		body := fmt.Appendf(nil, `{"specversion":"1.0","id":"reg-%d","source":"pam.baku","type":"player.registered","subject":%q,"time":"2026-11-22T10:00:00Z","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","phone":"+99450%07d"}}`, i, p, i)
		if _, err := js.PublishAsync(bus.EventSubject("baku", p, "player.registered"), body, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	waitDrained(b, js)
	return js, pnc, stop
}

// publishAll publishes every body on its subject and waits until all are stored.
func publishAll(b *testing.B, js jetstream.JetStream, subjects []string, bodies [][]byte) {
	for i := range subjects {
		if _, err := js.PublishAsync(subjects[i], bodies[i], jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
}

// waitDrained returns when every partition's events and intents consumers exist and have
// nothing pending or unacknowledged.
// configureReceipts publishes the Baku policy, an SMS ChannelPolicy and a service Campaign
// that sends an SMS receipt on every deposit.completed.
func configureReceipts(tb testing.TB, js jetstream.JetStream) {
	cfg := bustest.KV(tb, js, bus.BucketConfig)
	put := func(k string, v any) {
		raw, _ := bus.Encode(v)
		if _, err := cfg.Put(context.Background(), k, raw); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := cfg.Put(context.Background(), bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku-casino"), bustest.SamplePolicyRecord(tb, "baku")); err != nil {
		tb.Fatal(err)
	}
	put(bus.ConfigKey("baku", bus.KindChannelPolicy, "sms"), bus.ConfigRecord{Kind: "ChannelPolicy", Brand: "baku", Name: "sms",
		ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS}}})
	put(bus.ConfigKey("baku", bus.KindCampaign, "deposit-receipt"), bus.ConfigRecord{Kind: "Campaign", Brand: "baku", Name: "deposit-receipt", UID: "uid-receipt",
		Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{Category: crmv1.CategoryService,
			Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "receipt"}}},
			Contents: []crmv1.Content{{Name: "receipt", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "BakuCasino: {{ .Event.amount }} {{ .Event.currency }} depozit qəbul edildi."}}}}}}})
}

func waitDrained(b *testing.B, js jetstream.JetStream) {
	ctx := context.Background()
	for {
		var left uint64
		for p := range benchPartitions {
			for _, src := range []partition.Source{partition.Events, partition.Intents} {
				c, err := js.Consumer(ctx, src.Stream, src.Prefix+"-"+fmt.Sprint(p))
				if err != nil {
					left++
					continue
				}
				info, err := c.Info(ctx)
				if err != nil {
					b.Fatal(err)
				}
				left += info.NumPending + uint64(info.NumAckPending)
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deposit(i int) (string, []byte) {
	p := fmt.Sprintf("p-%07d", i%pipelinePlayers)
	return bus.EventSubject("baku", p, "deposit.completed"),
		fmt.Appendf(nil, `{"specversion":"1.0","id":"d-%d","source":"pam.baku","type":"deposit.completed","subject":%q,"time":"2026-11-22T10:00:00Z","data":{"amount":"%d.00","currency":"AZN","method":"card","depositId":"d-%d"}}`, i, p, 10+i%90, i)
}

func bet(i int) (string, []byte) {
	p := fmt.Sprintf("p-%07d", i%pipelinePlayers)
	return bus.EventSubject("baku", p, "bet.placed"),
		fmt.Appendf(nil, `{"specversion":"1.0","id":"b-%d","source":"pam.baku","type":"bet.placed","subject":%q,"time":"2026-11-22T10:00:00Z","data":{"amount":"1.50","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r-%d"}}`, i, p, i)
}

func benchPipeline(b *testing.B, every int) {
	js, _, stop := pipeline(b)
	ctx := context.Background()
	subjects, bodies := make([]string, b.N), make([][]byte, b.N)
	messages := 0
	for i := range b.N {
		if i%every == 0 {
			subjects[i], bodies[i] = deposit(i)
			messages++
		} else {
			subjects[i], bodies[i] = bet(i)
		}
	}
	deliveries, err := js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	publishAll(b, js, subjects, bodies)
	waitDrained(b, js)
	elapsed := time.Since(start)
	b.StopTimer()
	info, _ := deliveries.Info(ctx)
	if int(info.State.Msgs) != messages {
		if oc, err := js.Stream(ctx, bus.StreamOutcomes); err == nil {
			if m, err := oc.GetLastMsgForSubject(ctx, bus.Root+".outcomes.>"); err == nil {
				b.Logf("last outcome: %s", m.Data)
			}
		}
		b.Fatalf("%d delivery jobs for %d messages", info.State.Msgs, messages)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(messages)/elapsed.Seconds(), "jobs/s")
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelineEveryEvent: every event is a deposit whose receipt SMS is decided,
// rendered and published as a delivery job (the worst case). Run with -benchtime 100000x.
func BenchmarkPipelineEveryEvent(b *testing.B) { benchPipeline(b, 1) }

// BenchmarkPipelineOneInTen: one event in ten produces a message (nine bets, one deposit).
func BenchmarkPipelineOneInTen(b *testing.B) { benchPipeline(b, 10) }

// BenchmarkPipelineLatency publishes deposits at 5,000 events/s and measures each one's
// time from publish to its delivery job on a core subscription; reports p50/p99.
func BenchmarkPipelineLatency(b *testing.B) {
	js, nc, stop := pipeline(b)
	const rate = 5000
	index := make(map[string]int, b.N)
	for i := range b.N {
		index[route.DecisionID(fmt.Sprintf("uid-receipt/pam.baku/d-%d/send", i))] = i
	}
	sent := make([]time.Time, b.N)
	lat := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	done := make(chan struct{})
	sub, err := nc.Subscribe(bus.Root+".deliveries.>", func(m *nats.Msg) {
		var j struct {
			DecisionID string `json:"decisionID"`
		}
		if json.Unmarshal(m.Data, &j) != nil {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if i, ok := index[j.DecisionID]; ok && !sent[i].IsZero() {
			lat = append(lat, now.Sub(sent[i]))
			if len(lat) == b.N {
				close(done)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	b.ResetTimer()
	tick := time.Second / rate
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * tick)); d > 0 {
			time.Sleep(d)
		}
		s, body := deposit(i)
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		if _, err := js.PublishAsync(s, body, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d jobs seen", len(lat), b.N)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}
