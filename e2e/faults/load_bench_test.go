package faults_test

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkDispatcherLoad is the load generator of `make bench`: it drives the real
// dispatcher binary over NATS (one process, 8 partitions, embedded server with file
// storage) with b.N deposits over 10,000 players, each of which the dispatcher turns into
// a receipt posted to a webhook on loopback. The clock runs from the first publish to the
// last receipt at the webhook; latency is each receipt's arrival minus its deposit's
// publish. Run with -benchtime 100000x.
func BenchmarkDispatcherLoad(b *testing.B) {
	const players = 10000
	s, hook, evs := receiptsOn(b, players, b.N)
	b.ResetTimer()
	start := time.Now()
	sent := make([]time.Time, b.N)
	const window = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for from := 0; from < b.N; from += window {
			to := min(from+window, b.N)
			now := time.Now()
			for i := from; i < to; i++ {
				sent[i] = now
			}
			s.publish(evs[from:to])
		}
	}()
	s.waitDistinct(b.N, hook)
	elapsed := time.Since(start)
	b.StopTimer()
	<-done
	lat := make([]time.Duration, 0, b.N)
	hook.mu.Lock()
	for i := range b.N {
		if at, ok := hook.first[receiptKey(i)]; ok {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	hook.mu.Unlock()
	slices.Sort(lat)
	if len(lat) != b.N {
		b.Fatalf("%d of %d receipts matched", len(lat), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
