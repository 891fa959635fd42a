package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// mixedEvent is the i-th event of a realistic mix over players players: a quarter profile
// updates, then deposits, bets and sessions.
func mixedEvent(i, players int) (player, typ string, body []byte) {
	player = fmt.Sprintf("p-%07d", i%players)
	var data string
	switch i % 4 {
	case 0:
		typ, data = "player.profile.updated", fmt.Sprintf(`{"email":"%s@example.az","language":"az","vipLevel":%d,"attrs":{"tier":"t%d"}}`, player, i%5, i%3)
	case 1:
		typ, data = "deposit.completed", fmt.Sprintf(`{"amount":"%d.00","currency":"AZN","method":"card","depositId":"d-%d"}`, 10+i%90, i)
	case 2:
		typ, data = "bet.placed", fmt.Sprintf(`{"amount":"1.50","currency":"AZN","game":"game-%d","gameCategory":"slots","roundId":"r-%d"}`, i%40, i)
	default:
		typ, data = "session.started", `{"device":"android"}`
	}
	body = fmt.Appendf(nil, `{"specversion":"1.0","id":"e-%d","source":"pam.baku","type":%q,"subject":%q,"time":"2026-11-22T10:00:00Z","data":%s}`, i, typ, player, data)
	return
}

// BenchmarkNATSIntake publishes b.N mixed events to croupier.events.* while one dispatcher
// (16 partitions by default, CROUPIER_BENCH_PARTITIONS to change) applies them to players and persists croupier-players; the clock stops
// when every event is acknowledged after its persist. Run with -benchtime 200000x.
func BenchmarkNATSIntake(b *testing.B) {
	partitions := benchPartitions
	srv := bustest.Start(b, partitions)
	pnc, _ := srv.Connect(b)
	js, err := jetstream.New(pnc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		b.Fatal(err)
	}
	stop := start(b, srv, partitions, 1000, "127.0.0.1:0")
	ctx := context.Background()
	bustest.Eventually(b, 10*time.Second, "every partition leased", func() bool {
		_, err := js.Consumer(ctx, bus.StreamEvents, partition.ConsumerName(partitions-1))
		return err == nil
	})
	players := min(b.N/4+1, 100000)
	bodies := make([][]byte, b.N)
	subjects := make([]string, b.N)
	for i := range b.N {
		p, t, body := mixedEvent(i, players)
		bodies[i], subjects[i] = body, bus.EventSubject("baku", p, t)
	}
	b.ResetTimer()
	start := time.Now()
	publishAll(b, js, subjects, bodies)
	published := time.Since(start)
	waitDrained(b, js)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
	b.ReportMetric(float64(players), "players")
	if st, err := js.Stream(ctx, "KV_"+bus.BucketPlayers); err == nil {
		info, _ := st.Info(ctx)
		b.ReportMetric(float64(info.State.LastSeq)/float64(b.N), "persists/event")
	}
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHTTPIntake posts signed batches of 100 events over HTTPS from 8 connections;
// each request is answered after JetStream acknowledged all its events. b.N is the number
// of batches.
func BenchmarkHTTPIntake(b *testing.B) {
	srv := bustest.Start(b, 64)
	_, js := srv.Connect(b)
	key := []byte("bench-key")
	in := &ingest.Intake{JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: ingest.StaticKeys{"baku": {HMAC: [][]byte{key}}}}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/brands/{brand}/events", in)
	hs := httptest.NewUnstartedServer(mux)
	hs.TLS = &tls.Config{}
	hs.StartTLS()
	defer hs.Close()
	const batch, clients = 100, 8
	bodies := make([][]byte, 64)
	for k := range bodies {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j := range batch {
			if j > 0 {
				buf.WriteByte(',')
			}
			_, _, body := mixedEvent(k*batch+j, 50000)
			buf.Write(body)
		}
		buf.WriteByte(']')
		bodies[k] = buf.Bytes()
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := hs.Client()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				// Distinct ids per request so nothing is a duplicate.
				body := bytes.ReplaceAll(bodies[i%64], []byte(`"id":"e-`), fmt.Appendf(nil, `"id":"r%d-e-`, i))
				req, _ := http.NewRequest("POST", hs.URL+"/v1/brands/baku/events", bytes.NewReader(body))
				req.Header.Set("Content-Type", ingest.ContentTypeBatch)
				req.Header.Set(ingest.SignatureHeader, ingest.SignatureFor(key, time.Now(), body))
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
}

var benchPartitions = func() int {
	if p, err := strconv.Atoi(os.Getenv("CROUPIER_BENCH_PARTITIONS")); err == nil && p > 0 {
		return p
	}
	return bus.DefaultPartitions
}()
