package export

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

func TestMain(m *testing.M) {
	bustest.ServeChild()
	os.Exit(m.Run())
}

// BenchmarkExport: b.N OUTCOMES records (attempts with costs, 50 players, one brand)
// already in the stream are exported to a directory as Parquet and NDJSON in batches of
// 10,000. Reported: records per second and the CPU the export spends per second of a
// pipeline producing records at that rate, i.e. cores used while keeping up. NATS runs in a
// child process, as it runs beside the dispatchers in production: the CPU is the
// exporter's (its client, decoding, encoding, writing), not the server's.
func BenchmarkExport(b *testing.B) {
	js := bustest.Child(b)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range b.N {
		o := bus.Outcome{Time: at.Add(time.Duration(i) * time.Millisecond), DecisionID: route.DecisionID(fmt.Sprint(i)), Brand: "baku",
			Player: fmt.Sprintf("p-%d", i%50), Campaign: "welcome", Step: "hello", Kind: bus.OutcomeAttempt, Result: "sent",
			Channel: crmv1.ChannelSMS, Provider: "smsrest", Locale: "az", Attempt: 1, ProviderCost: &bus.MicroAmount{Micros: 20_000, Currency: "AZN"}}
		raw, _ := bus.Encode(o)
		if _, err := js.PublishAsync(bus.OutcomeSubject("baku", 0, o.Player), raw); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	dir := b.TempDir()
	e := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 10_000, Wait: 100 * time.Millisecond}
	elapsed, cpu := exportAll(b, e, bus.StreamOutcomes, ConsumerOutcomes)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores-while-exporting")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/record")
}

// BenchmarkExportPlayers: b.N players' records (a player with a week of deposits and
// results, games and RFM, as the owner stores them) exported as the players table: the
// first export after the exporter is set up, which holds every player. Reported: players
// a second and CPU per player; a 1M-player brand's first export costs a million times
// that, each later one the players changed in between times that.
func BenchmarkExportPlayers(b *testing.B) {
	js := bustest.Child(b)
	now := time.Now()
	for i := range b.N {
		p := players.Player{ID: fmt.Sprintf("p-%d", i), Brand: "baku", Country: "AZ", Language: "az", TimeZone: "Asia/Baku", Currency: "AZN",
			KYCStatus: "passed", VIPLevel: 2, RegisteredAt: players.UnixOf(now.AddDate(-1, 0, 0)), DepositCount: 12, DepositSum: 120_000,
			LastDeposit: players.UnixOf(now), BetCount: 900, StakeSum: 400_000, WinSum: 310_000, LastActivity: players.UnixOf(now),
			Games: []players.GameCount{{Name: "book-of-ra", Count: 500}, {Name: "roulette", Count: 400}},
			RFM:   players.RFM{R: 5, F: 4, M: 3, Segment: "loyal"}, NetDays: [14]int64{100, 200, 300}, DepositDays: [7]int32{1000, 2000}}
		raw, _ := players.EncodeRecord(&p, true)
		if _, err := js.PublishAsync("$KV."+bus.BucketPlayers+"."+bus.PlayerKey("baku", i%16, p.ID), raw); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	dir := b.TempDir()
	e := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 10_000, Wait: 100 * time.Millisecond, PlayersEvery: time.Hour}
	elapsed, cpu := exportAll(b, e, "KV_"+bus.BucketPlayers, ConsumerPlayers)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "players/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/player")
}

// exportAll runs e until the consumer has acknowledged b.N messages with nothing pending,
// timing it: the wall time and the process's CPU.
func exportAll(b *testing.B, e *Exporter, stream, consumer string) (time.Duration, time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	cpu0, start := clock.ProcessCPU(), time.Now()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for {
		info, err := e.JS.Consumer(ctx, stream, consumer)
		if err == nil {
			ci, err := info.Info(ctx)
			if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Consumer >= uint64(b.N) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), clock.ProcessCPU()-cpu0
	b.StopTimer()
	cancel()
	<-done
	return elapsed, cpu
}
