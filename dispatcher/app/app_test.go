package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

const parts = 4

// start runs a dispatcher on srv with the given partitions and batch size until the
// returned stop is called; stop returns Run's error.
// start runs a dispatcher without channel workers: delivery jobs stay in DELIVERIES for
// the test or benchmark to count.
func start(tb testing.TB, srv *bustest.Server, partitions, batch int, health string) (stop func() error) {
	tb.Helper()
	return startWith(tb, srv, app.Options{Partitions: partitions, Batch: batch, HealthAddr: health,
		Providers: map[crmv1.ProviderType]channel.Factory{}})
}

// startWith runs a dispatcher with o, defaulting what the tests do not set.
func startWith(tb testing.TB, srv *bustest.Server, o app.Options) (stop func() error) {
	tb.Helper()
	nc, _ := srv.Connect(tb)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	o.Replica, o.LeaseTTL, o.SweepEvery, o.APIAddr, o.Ready = "r1", 3*time.Second, time.Hour, "127.0.0.1:0", ready
	if o.Partitions == 0 {
		o.Partitions = srv.Partitions
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	if o.HealthAddr == "" {
		o.HealthAddr = "127.0.0.1:0"
	}
	go func() {
		done <- app.Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), nc, o)
	}()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatal(err)
	}
	return func() error { cancel(); return <-done }
}

// totals sums the deposits held in croupier-players and the events the partitions'
// consumers have acknowledged.
func totals(t *testing.T, js jetstream.JetStream) (deposits, acked int64, ackPending int) {
	ctx := context.Background()
	kv := bustest.KV(t, js, bus.BucketPlayers)
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var p players.Player
		_ = json.Unmarshal(e.Value(), &p)
		deposits += p.DepositCount
	}
	for p := range parts {
		c, err := js.Consumer(ctx, bus.StreamEvents, partition.ConsumerName(p))
		if err != nil {
			continue
		}
		info, _ := c.Info(ctx)
		ackPending += info.NumAckPending
		st, _ := js.Stream(ctx, bus.StreamEvents)
		sinfo, _ := st.Info(ctx, jetstream.WithSubjectFilter(bus.StoredEventFilter(p)))
		var inPart uint64
		for _, n := range sinfo.State.Subjects {
			inPart += n
		}
		acked += int64(inPart - info.NumPending - uint64(info.NumAckPending))
	}
	return
}

func TestGracefulStopPersistsAcksAndHandsOver(t *testing.T) {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	ctx := context.Background()
	stop := start(t, srv, parts, 200, "127.0.0.1:18091")

	const n = 30000
	publishDeposits := func(from, to int) {
		for i := from; i < to; i++ {
			p := fmt.Sprintf("p-%d", i%300)
			body := fmt.Sprintf(`{"specversion":"1.0","id":"d-%d","source":"pam","type":"deposit.completed","subject":%q,"data":{"amount":"1.00","currency":"AZN","method":"card","depositId":"d-%d"}}`, i, p, i)
			if _, err := js.PublishAsync(bus.EventSubject("baku", p, "deposit.completed"), []byte(body), jetstream.WithStallWait(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	}
	publishDeposits(0, n)

	resp, err := http.Get("http://127.0.0.1:18091/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	deposits, acked, pending := totals(t, js)
	t.Logf("stopped after %d of %d events", acked, n)
	// Messages the server had sent before the pull stopped but which reached the client
	// after the drain were never handled: they stay unacknowledged, and the next owner's
	// consumer starts right after the acknowledged floor (checked by the restart below,
	// which would otherwise wait out the one-minute ack wait).
	t.Logf("%d delivered but unhandled at the stop", pending)
	if deposits != acked {
		t.Errorf("persisted %d deposits but acknowledged %d events: a stop must persist exactly what it acknowledges", deposits, acked)
	}
	leases := bustest.KV(t, js, bus.BucketLeases)
	for p := range parts {
		e, err := leases.Get(ctx, bus.LeaseKey(p))
		if err != nil {
			t.Fatal(err)
		}
		var l bus.Lease
		_ = json.Unmarshal(e.Value(), &l)
		if l.Owner != "" {
			t.Errorf("partition %d still leased to %q after a graceful stop", p, l.Owner)
		}
	}

	// A new run picks up where the last one stopped; nothing is applied twice.
	stop = start(t, srv, parts, 200, "127.0.0.1:18091")
	publishDeposits(n, n+100)
	bustest.Eventually(t, 20*time.Second, "the restart applies every deposit once", func() bool {
		d, _, _ := totals(t, js)
		return d == n+100
	})
	resp, err = http.Get("http://127.0.0.1:18091/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`croupier_events_total{result="applied",type="deposit.completed"}`, `croupier_partition_owned{partition="0"} 1`, "croupier_players 300", "croupier_consumer_lag"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := totals(t, js); d != n+100 {
		t.Errorf("%d deposits after the second stop, want %d", d, n+100)
	}
}

// putConfig publishes the records in croupier-config as the manager does, under their kind.
func putConfig(t testing.TB, cfg jetstream.KeyValue, brand string, records ...bus.ConfigRecord) {
	t.Helper()
	for _, r := range records {
		kind := bus.KindCampaign
		switch {
		case r.PreferencePolicy != nil:
			kind = bus.KindPreferencePolicy
		case r.ChannelPolicy != nil:
			kind = bus.KindChannelPolicy
		}
		b, _ := bus.Encode(r)
		if _, err := cfg.Put(context.Background(), bus.ConfigKey(brand, kind, r.Name), b); err != nil {
			t.Fatal(err)
		}
	}
}
