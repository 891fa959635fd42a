package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

// BenchmarkSealingCost runs the every-event pipeline (a deposit -> a sealed receipt job,
// the player's record persisted) with sealing on and off, interleaved (on/off, off/on,
// ...) over seven pairs of fresh dispatchers, and reports each side's median events/s and
// the median of the pairs' slowdowns. Each run times three deposits per registered player
// once the registrations (which create the data keys) are stored and the store and the
// heap have settled: the steady state, not the players' first contact. Run with
// -benchtime 1x.
func BenchmarkSealingCost(b *testing.B) {
	const pairs, n = 7, 3 * pipelinePlayers
	// run returns the events/s and the process's CPU time per event (dispatcher and NATS
	// server share the process: the CPU is what sealing spends, the rate what it costs).
	run := func(unsealed bool) (rate, cpu float64) {
		js, _, stop := pipelineWith(b, unsealed)
		subjects, bodies := make([]string, n), make([][]byte, n)
		for i := range n {
			subjects[i], bodies[i] = deposit(i)
		}
		runtime.GC()
		time.Sleep(2 * time.Second) // the server's write-behind of the registrations
		cpu0 := clock.ProcessCPU()
		start := time.Now()
		publishAll(b, js, subjects, bodies)
		waitDrained(b, js)
		rate = float64(n) / time.Since(start).Seconds()
		cpu = float64((clock.ProcessCPU() - cpu0).Microseconds()) / n
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		return rate, cpu
	}
	var on, off, slowdown, cpuMore []float64
	for i := range b.N * pairs {
		var s, u, sc, uc float64
		if i%2 == 0 {
			s, sc = run(false)
			u, uc = run(true)
		} else {
			u, uc = run(true)
			s, sc = run(false)
		}
		on, off = append(on, s), append(off, u)
		slowdown = append(slowdown, 100*(u-s)/u)
		cpuMore = append(cpuMore, 100*(sc-uc)/uc)
		b.Logf("pair %d: sealed %.0f events/s %.1f µs CPU/event, unsealed %.0f events/s %.1f µs CPU/event: %.1f%% slower, %.1f%% more CPU",
			i+1, s, sc, u, uc, 100*(u-s)/u, 100*(sc-uc)/uc)
	}
	b.ReportMetric(median(on), "sealed-events/s")
	b.ReportMetric(median(off), "unsealed-events/s")
	b.ReportMetric(median(slowdown), "slowdown-%")
	b.ReportMetric(median(cpuMore), "more-cpu-%")
}

// cpuTime is the process's user and system CPU time so far.
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
