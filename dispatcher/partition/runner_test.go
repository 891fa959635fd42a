package partition_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/freeport"
)

const parts = 2

// counter is a partition State that counts the distinct events it applied and persists
// the set in croupier-state with a write conditional on the revision it last saw, as the
// real owner does: a write it did not make (an older owner's late flush) is refused.
type counter struct {
	h    *handler
	part int
	kv   jetstream.KeyValue
	rev  uint64
	seen map[string]bool
}

// handler opens counters and injects the faults a test asks for.
type handler struct {
	kv jetstream.KeyValue
	// opens counts Open calls per partition.
	opens sync.Map
	// failOpen makes Open fail (superseded when set to partition.ErrSuperseded).
	failOpen atomic.Pointer[error]
	// failFlushes makes the next n flushes fail with a refused conditional write.
	failFlushes atomic.Int32
	// blockOn makes Handle wait for the attempt's end on an event whose id it names, once.
	blockOn atomic.Pointer[string]
	blocked chan string
	// closeDelay makes each partition's stop take that long (a worker finishing a batch).
	closeDelay atomic.Int64
}

func (h *handler) Open(ctx context.Context, part int, epoch uint64) (partition.State, error) {
	n, _ := h.opens.LoadOrStore(part, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if err := h.failOpen.Load(); err != nil {
		return nil, *err
	}
	c := &counter{h: h, part: part, kv: h.kv, seen: map[string]bool{}}
	e, err := h.kv.Get(ctx, key(part))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(e.Value(), &c.seen); err != nil {
			return nil, err
		}
		c.rev = e.Revision()
	}
	return c, nil
}

func (h *handler) openCount(part int) int {
	n, ok := h.opens.Load(part)
	if !ok {
		return 0
	}
	return int(n.(*atomic.Int32).Load())
}

func key(part int) string { return "test.counter." + strconv.Itoa(part) }

func (c *counter) Handle(ctx context.Context, m jetstream.Msg) error {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if b := c.h.blockOn.Load(); b != nil && *b == id && c.h.blockOn.CompareAndSwap(b, nil) {
		c.h.blocked <- id
		<-ctx.Done()
		return ctx.Err()
	}
	c.seen[id] = true
	return nil
}

func (c *counter) Flush(ctx context.Context) error {
	if c.h.failFlushes.Load() > 0 && c.h.failFlushes.Add(-1) >= 0 {
		return fmt.Errorf("persisting partition %d: wrong last sequence (an injected refused write)", c.part)
	}
	raw, _ := json.Marshal(c.seen)
	var rev uint64
	var err error
	if c.rev == 0 {
		rev, err = c.kv.Create(ctx, key(c.part), raw)
	} else {
		rev, err = c.kv.Update(ctx, key(c.part), raw, c.rev)
	}
	if err != nil {
		return fmt.Errorf("persisting partition %d: %w", c.part, err)
	}
	c.rev = rev
	return nil
}

func (c *counter) Tick(context.Context, time.Time) error { return nil }
func (c *counter) Close()                                { time.Sleep(time.Duration(c.h.closeDelay.Load())) }

// logs is a concurrency-safe slog destination.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	t        *testing.T
	srv      *bustest.Server
	js       jetstream.JetStream
	h        *handler
	runner   *partition.Runner
	log      *logs
	mu       sync.Mutex
	restarts map[string]int
	givenUp  []int
}

func newFixture(t *testing.T) *fixture {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	f := fixtureOn(t, js, time.Second, 100*time.Millisecond, 200*time.Millisecond, 0)
	f.srv = srv
	return f
}

// fixtureOn is a runner of partition 0's counter on js with the given stall timeout,
// monitor period, restart backoff and give-up count (0: the default).
func fixtureOn(t *testing.T, js jetstream.JetStream, stall, every, backoff time.Duration, maxFailures int) *fixture {
	f := &fixture{t: t, js: js, log: &logs{}, restarts: map[string]int{},
		h: &handler{kv: bustest.KV(t, js, bus.BucketState), blocked: make(chan string, 1)}}
	f.runner = &partition.Runner{JS: js, Handler: f.h, Log: slog.New(slog.NewJSONHandler(f.log, nil)), Batch: 50,
		StallAfter: stall, MonitorEvery: every, MaxBackoff: backoff, MaxFailures: maxFailures,
		Restarted: func(_ int, reason string) {
			f.mu.Lock()
			f.restarts[reason]++
			f.mu.Unlock()
		}}
	return f
}

func (f *fixture) restartsFor(reason string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restarts[reason]
}

// startAlone runs the runner's callbacks for partition 0 without leases.
func (f *fixture) startAlone() {
	cb := f.runner.Callbacks()
	cb.Acquired(context.Background(), 0, 1)
	f.t.Cleanup(func() { cb.Released(0) })
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.runner.Monitor(mctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
}

// player returns a player id whose events land in partition part.
func player(part, i int) string {
	for n := i * 1000; ; n++ {
		p := fmt.Sprintf("p-%d", n)
		if bus.Partition(p, parts) == part {
			return p
		}
	}
}

// publish stores events from..to-1 of partition 0's player with ids ev-<n>.
func (f *fixture) publish(from, to int) {
	f.t.Helper()
	ctx := context.Background()
	p := player(0, 0)
	for i := from; i < to; i++ {
		id := "ev-" + strconv.Itoa(i)
		if _, err := f.js.Publish(ctx, bus.EventSubject("baku", p, "bet.placed"), []byte(`{"id":"`+id+`"}`), jetstream.WithMsgID(id)); err != nil {
			f.t.Fatal(err)
		}
	}
}

// persisted reads how many distinct events partition 0's state holds in croupier-state.
func (f *fixture) persisted() int {
	e, err := f.h.kv.Get(context.Background(), key(0))
	if err != nil {
		return 0
	}
	var seen map[string]bool
	_ = json.Unmarshal(e.Value(), &seen)
	return len(seen)
}

// waitPersisted waits while the persisted count grows; it fails when it stops short of
// want for 30 s (no progress), not after a total time.
func (f *fixture) waitPersisted(want int) {
	f.t.Helper()
	last, since := -1, time.Now()
	for {
		n := f.persisted()
		if n >= want {
			return
		}
		if n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) > 30*time.Second {
			f.t.Fatalf("partition 0 persisted %d of %d events and made no progress for 30 s\nlogs:\n%s", n, want, f.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor waits up to a generous bound for cond, failing with the logs.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("not within 30 s: %s\nlogs:\n%s", what, f.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) logged(parts ...string) bool {
	for _, line := range strings.Split(f.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// A consumer deleted under a running owner ends its feed; the worker is restarted (log
// line, reason "consumer"), the consumer made again from the acknowledged floor, and every
// event, those before and after the deletion, is applied.
func TestDeletedConsumerIsRestarted(t *testing.T) {
	f := newFixture(t)
	f.startAlone()
	f.publish(0, 100)
	f.waitPersisted(100)
	if err := f.js.DeleteConsumer(context.Background(), bus.StreamEvents, partition.ConsumerName(0)); err != nil {
		t.Fatal(err)
	}
	f.waitFor("a restart after the consumer's deletion", func() bool { return f.restartsFor(partition.ReasonConsumer) > 0 })
	f.publish(100, 200)
	f.waitPersisted(200)
	if !f.logged(`"partition worker failed; restarting from its acknowledged floor"`, `"partition":0`, `"reason":"consumer"`) {
		t.Errorf("no log line names the restart, the partition and the reason:\n%s", f.log.String())
	}
	if f.h.openCount(0) < 2 {
		t.Errorf("partition opened %d times; a restart opens it again", f.h.openCount(0))
	}
}

// A flush refused as a conditional write (an older owner's last flush landed after this
// owner loaded: "wrong last sequence") restarts the partition, which loads the state that
// now exists and converges: every event applied once, the persisted state complete.
func TestFencedHandoverConverges(t *testing.T) {
	f := newFixture(t)
	f.startAlone()
	f.publish(0, 50)
	f.waitPersisted(50)
	// The old owner's late flush: it rewrites the state this owner had loaded, so this
	// owner's next conditional write is refused.
	late, _ := json.Marshal(map[string]bool{"ev-0": true, "old-owner": true})
	if _, err := f.h.kv.Put(context.Background(), key(0), late); err != nil {
		t.Fatal(err)
	}
	f.publish(50, 120)
	f.waitFor("a restart after the refused write", func() bool { return f.restartsFor(partition.ReasonFlush) > 0 })
	// Reloaded from the late flush, the partition replays from its acknowledged floor.
	f.publish(120, 150)
	f.waitFor("events after the handover persisted", func() bool {
		e, err := f.h.kv.Get(context.Background(), key(0))
		if err != nil {
			return false
		}
		var seen map[string]bool
		_ = json.Unmarshal(e.Value(), &seen)
		for i := 50; i < 150; i++ {
			if !seen["ev-"+strconv.Itoa(i)] {
				return false
			}
		}
		return seen["old-owner"]
	})
	if !f.logged(`"reason":"flush"`, `wrong last sequence`) {
		t.Errorf("no log line names the refused flush:\n%s", f.log.String())
	}
}

// Injected refused writes in a row are restarted with backoff; the partition keeps going.
func TestFailedFlushRetriedWithBackoff(t *testing.T) {
	f := newFixture(t)
	f.startAlone()
	f.h.failFlushes.Store(3)
	f.publish(0, 30)
	f.waitPersisted(30)
	if n := f.restartsFor(partition.ReasonFlush); n != 3 {
		t.Errorf("%d flush restarts, want 3 (one per refused write)", n)
	}
}

// A worker stuck on a message while work is pending is found by the monitor: Ready fails
// naming the partition, the attempt is cancelled and restarted (reason "stalled"), and the
// message is applied by the next attempt.
func TestStalledPartitionIsRestarted(t *testing.T) {
	f := newFixture(t)
	var progress sync.Map
	f.runner.Progress = func(p partition.Progress) { progress.Store(p.Partition, p) }
	f.startAlone()
	id := "ev-5"
	f.h.blockOn.Store(&id)
	f.publish(0, 20)
	<-f.h.blocked
	f.waitFor("Ready failing while partition 0 is stalled", func() bool {
		err := f.runner.Ready()
		return err != nil && strings.Contains(err.Error(), "[0]")
	})
	f.waitPersisted(20)
	if n := f.restartsFor(partition.ReasonStalled); n != 1 {
		t.Errorf("%d stall restarts, want 1", n)
	}
	if !f.logged(`"partition stalled: work pending and no progress; restarting it"`, `"partition":0`) {
		t.Errorf("no log line names the stall:\n%s", f.log.String())
	}
	f.waitFor("Ready again after the restart", func() bool { return f.runner.Ready() == nil })
	v, ok := progress.Load(0)
	if !ok {
		t.Fatal("no progress reported for partition 0")
	}
	if p := v.(partition.Progress); len(p.Sources) != 1 || p.Sources[0].What != "events" {
		t.Errorf("progress %+v: want the events source's figures", p)
	}
}

// The embedded server restarted under a running owner: the feed's errors end the
// attempt, the supervisor restarts it once NATS is back, nothing is lost.
func TestNATSRestartUnderOwner(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	start := func() *bustest.Server {
		s, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return &bustest.Server{Server: s, Partitions: parts}
	}
	srv := start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := bus.ConnectEmbedded(srv.Server, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if _, err := bus.EnsureTopology(context.Background(), js, bus.TopologyOptions{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	f := fixtureOn(t, js, 2*time.Second, 200*time.Millisecond, 500*time.Millisecond, 1000)
	f.startAlone()
	f.publish(0, 100)
	f.waitPersisted(100)
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(time.Second)
	srv = start()
	f.waitFor("reconnected", nc.IsConnected)
	f.publish(100, 200)
	f.waitPersisted(200)
}

// A partition the replica cannot open because a newer owner's fence holds it is given
// up at once: its lease is released (not left to expire) and another replica runs it.
func TestSupersededPartitionIsGivenUp(t *testing.T) {
	srv := bustest.Start(t, parts)
	a := startReplica(t, srv, "a")
	bustest.Eventually(t, 30*time.Second, "replica a holding both partitions", func() bool { return len(a.leases.Owned()) == parts })
	err := fmt.Errorf("%w: a test fence", partition.ErrSuperseded)
	a.h.failOpen.Store(&err)
	b := startReplica(t, srv, "b")
	// a's running workers are made to reopen: their consumers are deleted.
	_, js := srv.Connect(t)
	for p := range parts {
		_ = js.DeleteConsumer(context.Background(), bus.StreamEvents, partition.ConsumerName(p))
	}
	bustest.Eventually(t, 30*time.Second, "replica b running both partitions", func() bool { return b.h.openCount(0) > 0 && b.h.openCount(1) > 0 })
	if !a.logged(`"partition given up: its lease is released for another replica"`, `"reason":"superseded"`) {
		t.Errorf("no log line names the give-up:\n%s", a.log.String())
	}
	if !a.logged(`"partition lease released: this replica cannot run it"`) {
		t.Errorf("the lease loop did not log the release:\n%s", a.log.String())
	}
	if n := a.h.openCount(0) + a.h.openCount(1); n > 2+2*5 {
		t.Errorf("replica a opened its partitions %d times: a superseded partition must not be retried", n)
	}
}

// A partition whose worker fails again and again without progress is given up after
// MaxFailures, and another replica runs it.
func TestRepeatedFailuresGiveTheLeaseUp(t *testing.T) {
	srv := bustest.Start(t, parts)
	err := errors.New("croupier-state unreachable (injected)")
	a := startReplica(t, srv, "a")
	a.h.failOpen.Store(&err)
	bustest.Eventually(t, 30*time.Second, "replica a giving its partitions up", func() bool {
		return a.logged(`"partition given up: its lease is released for another replica"`, `"reason":"repeated"`)
	})
	b := startReplica(t, srv, "b")
	bustest.Eventually(t, 30*time.Second, "replica b running both partitions", func() bool { return b.h.openCount(0) > 0 && b.h.openCount(1) > 0 })
}

// A replica whose NATS connection is gone stops renewing and stops its partitions before
// their leases expire, so no replaced owner keeps working.
func TestDisconnectedReplicaStopsBeforeExpiry(t *testing.T) {
	srv := bustest.Start(t, parts)
	a := startReplica(t, srv, "a")
	bustest.Eventually(t, 30*time.Second, "replica a holding both partitions", func() bool { return len(a.leases.Owned()) == parts })
	a.connected.Store(false)
	bustest.Eventually(t, 30*time.Second, "replica a holding nothing", func() bool { return len(a.leases.Owned()) == 0 })
	if !a.logged(`"NATS disconnected: partition lease expiring without renewal; stopping"`) {
		t.Errorf("no log line for the stop:\n%s", a.log.String())
	}
}

// A lease another replica took (a higher epoch written over it) stops the worker.
func TestLostLeaseStopsTheWorker(t *testing.T) {
	srv := bustest.Start(t, parts)
	a := startReplica(t, srv, "a")
	bustest.Eventually(t, 30*time.Second, "replica a holding both partitions", func() bool { return len(a.leases.Owned()) == parts })
	_, js := srv.Connect(t)
	kv := bustest.KV(t, js, bus.BucketLeases)
	now := time.Now()
	steal, _ := json.Marshal(bus.Lease{Partition: 0, Owner: "thief", Epoch: 99, Renewed: now, Expires: now.Add(time.Minute)})
	if _, err := kv.Put(context.Background(), bus.LeaseKey(0), steal); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "replica a dropping partition 0", func() bool {
		_, ok := a.leases.Epoch(0)
		return !ok
	})
	if !a.logged(`"partition lease lost"`, `"partition":0`) {
		t.Errorf("no log line for the lost lease:\n%s", a.log.String())
	}
}

func freePort(t *testing.T) int { return freeport.Port(t) }

type replica struct {
	h         *handler
	leases    *partition.Leases
	log       *logs
	js        jetstream.JetStream
	connected atomic.Bool
}

func (r *replica) logged(parts ...string) bool {
	return (&fixture{log: r.log}).logged(parts...)
}

func (r *replica) publish(t *testing.T, from, to int) {
	(&fixture{t: t, js: r.js}).publish(from, to)
}

func startReplica(t *testing.T, srv *bustest.Server, name string) *replica {
	_, js := srv.Connect(t)
	r := &replica{h: &handler{kv: bustest.KV(t, js, bus.BucketState), blocked: make(chan string, 1)}, log: &logs{}, js: js}
	r.connected.Store(true)
	log := slog.New(slog.NewJSONHandler(r.log, nil))
	runner := &partition.Runner{JS: js, Handler: r.h, Log: log, StallAfter: time.Second, MonitorEvery: 100 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, MaxFailures: 3}
	r.leases = &partition.Leases{KV: bustest.KV(t, js, bus.BucketLeases), Replica: name, Partitions: srv.Partitions, TTL: 1500 * time.Millisecond,
		Log: log, Connected: r.connected.Load}
	runner.GiveUp = r.leases.GiveUp
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { defer func() { done <- struct{}{} }(); _ = r.leases.Run(ctx, runner.Callbacks()) }()
	go func() { defer func() { done <- struct{}{} }(); runner.Monitor(ctx) }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return r
}

// A feed that goes silent without an error (its consumer paused on the server, as when a
// pull is parked on a server that stopped answering and heartbeats are missed) is found by
// the monitor from the server's figures and restarted until it delivers again; nothing is
// lost.
func TestSilentFeedIsRestarted(t *testing.T) {
	f := newFixture(t)
	f.startAlone()
	f.publish(0, 20)
	f.waitPersisted(20)
	if _, err := f.js.PauseConsumer(context.Background(), bus.StreamEvents, partition.ConsumerName(0), time.Now().Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.publish(20, 40)
	f.waitFor("a stall restart of the silent feed", func() bool { return f.restartsFor(partition.ReasonStalled) > 0 })
	f.waitPersisted(40)
	if !f.logged(`"partition stalled: work pending and no progress; restarting it"`, `"doing":"waiting for messages"`) {
		t.Errorf("no log line names the silent feed:\n%s", f.log.String())
	}
}

// Two replicas hold eight partitions; two more join. Stopping a partition takes a whole
// lease TTL (a worker finishing its batch), yet within a few TTLs each of the four holds
// two: the handovers run beside the lease loop, which keeps renewing the other leases
// and the replica's heartbeat meanwhile, so no lease is lost and no member drops out.
func TestJoiningReplicasGetTheirShare(t *testing.T) {
	srv := bustest.Start(t, 8)
	rs := []*replica{startReplica(t, srv, "a"), startReplica(t, srv, "b")}
	for _, r := range rs {
		r.h.closeDelay.Store(int64(1500 * time.Millisecond))
	}
	held := func(want ...int) func() bool {
		return func() bool {
			for i, r := range rs {
				if len(r.leases.Owned()) != want[i] {
					return false
				}
			}
			return true
		}
	}
	bustest.Eventually(t, 30*time.Second, "a and b holding four each", held(4, 4))
	rs = append(rs, startReplica(t, srv, "c"), startReplica(t, srv, "d"))
	start := time.Now()
	// Ten TTLs: orphans were held for twenty before being handed back.
	bustest.Eventually(t, 15*time.Second, "four replicas holding two each", held(2, 2, 2, 2))
	t.Logf("rebalanced in %s", time.Since(start).Round(100*time.Millisecond))
	for i, r := range rs {
		if r.logged(`"partition lease lost"`) {
			t.Errorf("replica %d lost a lease while handing over:\n%s", i, r.log.String())
		}
		// The members each replica saw only grow: nobody's heartbeat lapsed.
		seen := 0
		for line := range strings.SplitSeq(r.log.String(), "\n") {
			var e struct {
				Msg     string   `json:"msg"`
				Members []string `json:"members"`
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "partition share" {
				continue
			}
			if len(e.Members) < seen {
				t.Errorf("replica %d saw the members shrink to %v", i, e.Members)
			}
			seen = len(e.Members)
		}
	}
}

// A delivery that never reaches the worker (here: a second reader of the partition's
// consumer takes one message and abandons it, as a pull the library reset after a missed
// heartbeat or a slow-consumer drop does) must not be covered by the acknowledgement of a
// later message: the consumers acknowledge all below a message (AckAll), so before the
// gap check the taken event was never applied and nothing stayed pending. The worker
// finds the skipped consumer sequence, restarts from the acknowledged floor (reason
// "gap", logged) and applies every event.
func TestDeliveryGapIsNotAcknowledged(t *testing.T) {
	f := newFixture(t)
	f.startAlone()
	f.publish(0, 10)
	f.waitPersisted(10)
	ctx := context.Background()
	cons, err := f.js.Consumer(ctx, bus.StreamEvents, partition.ConsumerName(0))
	if err != nil {
		t.Fatal(err)
	}
	// The second reader's pull waits on the server beside the worker's; the server serves
	// waiting pulls in turn, so one of the next events goes to it.
	taken := make(chan jetstream.Msg, 1)
	go func() {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Minute))
		if err != nil {
			t.Error(err)
			close(taken)
			return
		}
		for m := range b.Messages() {
			taken <- m
		}
		close(taken)
	}()
	f.waitFor("the second reader's pull waiting on the server", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting >= 2
	})
	var stolen jetstream.Msg
	for i := 10; stolen == nil; i++ {
		if i >= 200 {
			t.Fatal("the second reader got none of 190 events")
		}
		f.publish(i, i+1)
		select {
		case m, ok := <-taken:
			if !ok {
				t.Fatal("the second reader's fetch ended without a message")
			}
			stolen = m
			// Events after the taken one reach the worker: before the gap check, their
			// acknowledgement covered it.
			f.publish(i+1, i+21)
			f.waitPersisted(i + 21)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if f.restartsFor(partition.ReasonGap) == 0 {
		t.Errorf("no restart for the gap")
	}
	if !f.logged(`"partition feed skipped a delivery; restarting from the acknowledged floor"`, `"partition":0`, `"source":"events"`) {
		t.Errorf("no log line names the skipped delivery:\n%s", f.log.String())
	}
	t.Logf("taken: %s; restarts for the gap: %d", stolen.Headers().Get(jetstream.MsgIDHeader), f.restartsFor(partition.ReasonGap))
}
