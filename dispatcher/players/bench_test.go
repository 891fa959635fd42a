package players_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
)

// BenchmarkIndexMemory loads CROUPIER_BENCH_PLAYERS (default 1,000,000) realistic players
// into 16 in-memory partitions through the real event path (registration with email, half
// with a phone, 40% with a push token, attributes, 3 deposits, 6 bets over 40 games, 2
// sessions) and reports the Go heap per player. With CROUPIER_HEAP_PROFILE set it writes a
// heap profile there.
func BenchmarkIndexMemory(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("CROUPIER_BENCH_PLAYERS")); err == nil && v > 0 {
		n = v
	}
	const parts = 16
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	tmpl := map[string]*ingest.Event{
		ingest.TypeRegistered:       ev(b, "r", ingest.TypeRegistered, at, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"x@example.az","acquisitionChannel":"affiliate","attrs":{"affiliate":"aff-12","tier":"silver"}}`),
		ingest.TypeProfileUpdated:   ev(b, "u", ingest.TypeProfileUpdated, at, `{"phone":"+994501234567","pushTokens":[{"platform":"android","token":"x"}],"kycStatus":"passed","ageVerified":true,"vipLevel":1}`),
		ingest.TypeDepositCompleted: ev(b, "d", ingest.TypeDepositCompleted, at, `{"amount":"20.00","currency":"AZN","method":"card","depositId":"d"}`),
		ingest.TypeBetPlaced:        ev(b, "b", ingest.TypeBetPlaced, at, `{"amount":"1.00","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r"}`),
		ingest.TypeSessionStarted:   ev(b, "s", ingest.TypeSessionStarted, at, `{}`),
	}
	games := make([]string, 40)
	for i := range games {
		games[i] = fmt.Sprintf("game-%02d", i)
	}
	const token = "fcm:APA91bH7XkLmz0f3q9c2JxN8sR4tVwY6uB1eD5gH0iK3lM7nO2pQ9rS4tU8vW1xY5zA6bC0dE3fG7hI2jK4lM8nO1pQ5rS9tU3vW7xY0zA4bC8dE2fG6hI"
	ps := make([]*players.Partition, parts)
	for i := range ps {
		ps[i] = players.NewPartition(i)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	seq := uint64(0)
	for i := range n {
		id := fmt.Sprintf("p-%07d", i)
		pt := ps[i%parts]
		apply := func(typ string, mutate func(e *ingest.Event)) {
			e := *tmpl[typ]
			e.Player, e.ID = id, strconv.Itoa(int(seq))
			if mutate != nil {
				mutate(&e)
			}
			seq++
			pt.Apply(&e, seq)
		}
		email := id + "@mail.example.az"
		apply(ingest.TypeRegistered, func(e *ingest.Event) { e.Data.Email = &email })
		if i%2 == 0 {
			phone := fmt.Sprintf("+99450%07d", i)
			tokens := []ingest.PushToken{}
			if i%5 < 2 {
				tokens = append(tokens, ingest.PushToken{Platform: "android", Token: token + id})
			}
			apply(ingest.TypeProfileUpdated, func(e *ingest.Event) { e.Data.Phone = &phone; e.Data.PushTokens = &tokens })
		}
		for range 3 {
			apply(ingest.TypeDepositCompleted, nil)
		}
		for k := range 6 {
			g := games[(i+k*7)%len(games)]
			apply(ingest.TypeBetPlaced, func(e *ingest.Event) { e.Data.Game = &g })
		}
		for range 2 {
			apply(ingest.TypeSessionStarted, nil)
		}
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	total := 0
	for _, pt := range ps {
		total += pt.Len()
	}
	if total != n {
		b.Fatalf("loaded %d players, want %d", total, n)
	}
	perPlayer := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	b.ReportMetric(perPlayer, "heapB/player")
	b.ReportMetric(float64(n), "players")
	if path := os.Getenv("CROUPIER_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		_ = pprof.WriteHeapProfile(f)
		_ = f.Close()
	}
	runtime.KeepAlive(ps)
}
