package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// BenchmarkSealingCost runs the every-event pipeline (a deposit -> a sealed receipt job,
// the profile record sealed) with sealing on and off, interleaved (on/off, off/on, ...)
// over five pairs of fresh dispatchers, and reports each side's median events/s and the
// median of the pairs' slowdowns. Run with -benchtime 1x.
func BenchmarkSealingCost(b *testing.B) {
	const pairs, n = 5, 20000
	run := func(unsealed bool) float64 {
		js, _, stop := pipelineWith(b, unsealed)
		subjects, bodies := make([]string, n), make([][]byte, n)
		for i := range n {
			subjects[i], bodies[i] = deposit(i)
		}
		start := time.Now()
		publishAll(b, js, subjects, bodies)
		waitDrained(b, js)
		rate := float64(n) / time.Since(start).Seconds()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		return rate
	}
	var on, off, slowdown []float64
	for i := range b.N * pairs {
		var s, u float64
		if i%2 == 0 {
			s, u = run(false), run(true)
		} else {
			u, s = run(true), run(false)
		}
		on, off = append(on, s), append(off, u)
		slowdown = append(slowdown, 100*(u-s)/u)
		b.Logf("pair %d: sealed %.0f events/s, unsealed %.0f events/s, %.1f%% slower", i+1, s, u, 100*(u-s)/u)
	}
	b.ReportMetric(median(on), "sealed-events/s")
	b.ReportMetric(median(off), "unsealed-events/s")
	b.ReportMetric(median(slowdown), "slowdown-%")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkEraseThousandEvents: for a player with 1,000 events in EVENTS among 20,000
// others, the time from an erasure request to the owner's tombstone (the partition's part)
// and to the eraser's overwrite of every event (secure delete) being recorded. Run with
// -benchtime 3x.
func BenchmarkEraseThousandEvents(b *testing.B) {
	srv := bustest.Start(b, parts)
	_, js := srv.Connect(b)
	ctx := context.Background()
	configureReceipts(b, js)
	stop := startWith(b, srv, app.Options{})
	defer func() { _ = stop() }()
	ajs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		b.Fatal(err)
	}
	publish := func(player string, i int, typ, data string) {
		body := fmt.Appendf(nil, `{"specversion":"1.0","id":"%s-%d","source":"pam.baku","type":%q,"subject":%q,"data":%s}`, typ, i, typ, player, data)
		if _, err := ajs.PublishAsync(bus.EventSubject("baku", player, typ), body, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	playersKV := bustest.KV(b, js, bus.BucketPlayers)
	var tomb, total time.Duration
	for it := range b.N {
		target := fmt.Sprintf("e-%d", it)
		publish(target, 0, "player.registered", `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"erase@example.az","phone":"+994501234567"}`)
		for i := range 21000 {
			player := target
			if i%21 != 0 {
				player = fmt.Sprintf("o-%d-%d", it, i%500)
			}
			publish(player, it*100000+i, "bet.placed", `{"amount":"1.00","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r"}`)
		}
		<-ajs.PublishAsyncComplete()
		key := bus.PlayerKey("baku", bus.Partition(target, parts), target)
		bustest.Eventually(b, 2*time.Minute, "the target's 1,000 bets applied", func() bool {
			e, err := playersKV.Get(ctx, key)
			return err == nil && len(e.Value()) > 0 && betCount(e.Value()) >= 1000
		})
		req, _ := json.Marshal(ingest.ErasureRequest(target, "bench", "erase-"+target, time.Now()))
		start := time.Now()
		if _, err := js.Publish(ctx, bus.EventSubject("baku", target, ingest.TypeErasureRequested), req); err != nil {
			b.Fatal(err)
		}
		bustest.Eventually(b, 5*time.Minute, "the tombstone", func() bool {
			e, err := playersKV.Get(ctx, key)
			return err == nil && json.Valid(e.Value()) && erased(e.Value())
		})
		tomb += time.Since(start)
		bustest.WaitAudit(b, js, "baku", target, players.AuditOverwritten, 5*time.Minute)
		total += time.Since(start)
	}
	b.ReportMetric(float64(tomb.Milliseconds())/float64(b.N), "ms/tombstone")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/erase")
}

func betCount(raw []byte) int {
	var p struct {
		BetCount int `json:"betCount"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.BetCount
}

func erased(raw []byte) bool {
	var p struct {
		Erased bool `json:"erased"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.Erased
}
