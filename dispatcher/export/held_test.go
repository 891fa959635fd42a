package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// countingSink is a Dir that counts its files.
type countingSink struct {
	Dir
	mu sync.Mutex
	n  int
}

func (c *countingSink) Put(ctx context.Context, path string, data []byte) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Dir.Put(ctx, path, data)
}

func (c *countingSink) files() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestOneReplicaExports: two replicas run the export; only the holder of the export's
// lease writes; when it stops, the other takes over and exports what came since, so every
// record is exported, by one writer at a time.
func TestOneReplicaExports(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	kv := bustest.KV(t, js, bus.BucketLeases)
	dir := t.TempDir()
	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			o := bus.Outcome{Time: time.Now().UTC(), DecisionID: route.DecisionID(fmt.Sprint(i)), Brand: "baku", Player: fmt.Sprintf("p-%d", i%7),
				Kind: bus.OutcomeAttempt, Result: "sent", Channel: crmv1.ChannelSMS, ProviderCost: &bus.MicroAmount{Micros: int64(20_000 + i), Currency: "AZN"}}
			b, _ := bus.Encode(o)
			if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, o.Player), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	type replica struct {
		sink   *countingSink
		cancel context.CancelFunc
		done   chan error
	}
	const ttl = 1500 * time.Millisecond
	start := func(name string) *replica {
		r := &replica{sink: &countingSink{Dir: Dir(dir)}, done: make(chan error, 1)}
		c, cancel := context.WithCancel(ctx)
		r.cancel = cancel
		go func() {
			r.done <- RunHeld(c, kv, name, ttl, func() *Exporter {
				return &Exporter{JS: js, Sink: r.sink, Key: keys, Batch: 50, Wait: 100 * time.Millisecond, AckWait: time.Second}
			})
		}()
		return r
	}
	a, b := start("a"), start("b")
	publish(0, 60)
	count := func() int {
		byID, _, _, _ := exported(t, dir)
		return len(byID)
	}
	bustest.Eventually(t, 30*time.Second, "the first 60 records exported", func() bool { return count() == 60 })
	holder := func() string {
		e, err := kv.Get(ctx, LeaseKey)
		if err != nil {
			return ""
		}
		var l bus.Lease
		_ = json.Unmarshal(e.Value(), &l)
		return l.Owner
	}
	first, second := a, b
	switch holder() {
	case "a":
	case "b":
		first, second = b, a
	default:
		t.Fatalf("the export's lease is held by %q", holder())
	}
	if first.sink.files() == 0 || second.sink.files() != 0 {
		t.Fatalf("the holder wrote %d files, the other %d: one writer at a time", first.sink.files(), second.sink.files())
	}
	// Several renewals pass: still one writer.
	time.Sleep(2 * ttl)
	publish(60, 20)
	bustest.Eventually(t, 30*time.Second, "80 records exported", func() bool { return count() == 80 })
	if second.sink.files() != 0 {
		t.Fatalf("the replica without the lease wrote %d files", second.sink.files())
	}
	// The holder stops (its lease handed back): the other exports what comes next.
	first.cancel()
	if err := <-first.done; err != context.Canceled {
		t.Fatalf("the first exporter ended with %v", err)
	}
	publish(80, 40)
	bustest.Eventually(t, 30*time.Second, "120 records exported after the hand-over", func() bool { return count() == 120 })
	if second.sink.files() == 0 {
		t.Fatal("the second replica wrote nothing after taking over")
	}
	second.cancel()
	<-second.done
	if files, _ := filepath.Glob(filepath.Join(dir, "brand=baku", "date=*", "outcomes-*.parquet")); len(files) < 3 {
		t.Fatalf("%d outcomes files", len(files))
	}
}

// TestExportLeaseExpires: a lease held by a replica that died (not renewed, not handed
// back) is taken once it expired, with the next epoch; a live one is not.
func TestExportLeaseExpires(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	kv := bustest.KV(t, js, bus.BucketLeases)
	now := time.Now()
	if _, err := kv.Put(ctx, LeaseKey, encodeLease(bus.Lease{Owner: "dead", Epoch: 4, Renewed: now, Expires: now.Add(time.Minute)})); err != nil {
		t.Fatal(err)
	}
	if held, _, _ := acquire(ctx, kv, "b", time.Minute); held {
		t.Fatal("a live lease was taken")
	}
	if _, err := kv.Put(ctx, LeaseKey, encodeLease(bus.Lease{Owner: "dead", Epoch: 4, Renewed: now.Add(-time.Minute), Expires: now.Add(-time.Second)})); err != nil {
		t.Fatal(err)
	}
	held, _, epoch := acquire(ctx, kv, "b", time.Minute)
	if !held || epoch != 5 {
		t.Fatalf("the expired lease: held %v, epoch %d (want 5)", held, epoch)
	}
	e, _ := kv.Get(ctx, LeaseKey)
	var l bus.Lease
	_ = json.Unmarshal(e.Value(), &l)
	if l.Owner != "b" || !l.Expires.After(time.Now()) {
		t.Fatalf("the lease after: %+v", l)
	}
}

// failingSink refuses every file.
type failingSink struct{}

func (failingSink) Put(context.Context, string, []byte) error { return errors.New("disk full") }

// TestStoppedExporterLeavesNoAlert: a replica whose export was failing, once it stops
// exporting (the lease gone to another, or shut down), shows no failing batches and nothing
// pending: the export's figures are the new holder's.
func TestStoppedExporterLeavesNoAlert(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	o := bus.Outcome{Time: time.Now().UTC(), DecisionID: "d-1", Brand: "baku", Player: "p-1", Kind: bus.OutcomeDecision, Result: "suppress"}
	raw, _ := bus.Encode(o)
	if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, "p-1"), raw); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	done := make(chan error, 1)
	go func() {
		done <- RunHeld(ctx, bustest.KV(t, js, bus.BucketLeases), "a", time.Second, func() *Exporter {
			return &Exporter{JS: js, Sink: failingSink{}, Key: keys, Batch: 10, Wait: 50 * time.Millisecond, Metrics: m}
		})
	}()
	bustest.Eventually(t, 30*time.Second, "failing batches", func() bool { return testutil.ToFloat64(m.Failing) >= 2 })
	m.Pending.WithLabelValues(TableOutcomes).Set(7) // as a backlog would leave it
	cancel()
	<-done
	if f, p := testutil.ToFloat64(m.Failing), testutil.ToFloat64(m.Pending.WithLabelValues(TableOutcomes)); f != 0 || p != 0 {
		t.Fatalf("after stopping: %v failing, %v pending", f, p)
	}
	if w := testutil.ToFloat64(m.Rows.WithLabelValues(TableOutcomes)); w != 0 {
		t.Fatalf("%v rows counted by a sink that wrote nothing", w)
	}
}
