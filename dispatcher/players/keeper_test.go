package players_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/datakey"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type replica struct {
	name   string
	leases *partition.Leases
	keeper *players.Keeper
	cancel context.CancelFunc
	done   chan struct{}
	counts sync.Map
	kv     atomic.Bool // true: the replica is cut off from the leases bucket
}

func startReplica(t *testing.T, srv *bustest.Server, name string) *replica {
	t.Helper()
	_, js := srv.Connect(t)
	r := &replica{name: name, done: make(chan struct{})}
	r.keeper = &players.Keeper{JS: js, Players: bustest.KV(t, js, bus.BucketPlayers), Log: quiet, InactiveDays: []int{7, 30},
		Count: func(typ, result string) {
			v, _ := r.counts.LoadOrStore(typ+"/"+result, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}}
	runner := &partition.Runner{JS: js, Handler: r.keeper, Log: quiet, Batch: 50}
	r.leases = &partition.Leases{KV: deadKV{bustest.KV(t, js, bus.BucketLeases), &r.kv}, Replica: name, Partitions: srv.Partitions, TTL: 1500 * time.Millisecond, Log: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	erased := make(chan struct{})
	go func() { defer close(r.done); _ = r.leases.Run(ctx, runner.Callbacks()) }()
	go func() {
		defer close(erased)
		_ = (&players.Eraser{JS: js, Players: r.keeper.Players, Partitions: srv.Partitions, Log: quiet, Retry: 200 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.done; <-erased })
	return r
}

func event(id, typ, player, data string) []byte {
	return []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"pam.baku","type":%q,"subject":%q,"time":%q,"data":%s}`,
		id, typ, player, time.Now().UTC().Format(time.RFC3339), data))
}

func publish(t *testing.T, js jetstream.JetStream, brand, player, typ string, body []byte, opts ...jetstream.PublishOpt) {
	t.Helper()
	if _, err := js.Publish(context.Background(), bus.EventSubject(brand, player, typ), body, opts...); err != nil {
		t.Fatal(err)
	}
}

func getPlayer(t *testing.T, js jetstream.JetStream, parts int, brand, id string) (players.Player, bool) {
	t.Helper()
	kv := bustest.KV(t, js, bus.BucketPlayers)
	keys := &datakey.Reader{KV: bustest.KV(t, js, bus.BucketKeys), Partitions: parts}
	p, found, err := players.Read(context.Background(), kv, brand, bus.Partition(id, parts), id, func(brand, player string, sealed []byte) ([]byte, error) {
		return keys.Open(context.Background(), brand, player, sealed)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return players.Player{}, false
	}
	return p, true
}

func TestKeeperAppliesEventsDeadLettersAndErases(t *testing.T) {
	srv := bustest.Start(t, 4)
	_, js := srv.Connect(t)
	ctx := context.Background()
	r := startReplica(t, srv, "r1")
	bustest.Eventually(t, 5*time.Second, "r1 owns all partitions", func() bool { return len(r.leases.Owned()) == 4 })

	for i := range 20 {
		p := fmt.Sprintf("p-%d", i)
		publish(t, js, "baku", p, ingest.TypeRegistered, event("reg-"+p, ingest.TypeRegistered, p,
			fmt.Sprintf(`{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"%s@example.az","phone":"+99450000%04d"}`, p, i)))
		dep := event("dep-"+p, ingest.TypeDepositCompleted, p, `{"amount":"20.00","currency":"AZN","method":"card","depositId":"x"}`)
		publish(t, js, "baku", p, ingest.TypeDepositCompleted, dep)
		// The platform retries without a message id: stored twice, applied once.
		publish(t, js, "baku", p, ingest.TypeDepositCompleted, dep)
	}
	// Missing required field: dead-lettered with the reason.
	publish(t, js, "baku", "p-1", ingest.TypeDepositCompleted, event("bad", ingest.TypeDepositCompleted, "p-1", `{"currency":"AZN","method":"card","depositId":"y"}`))
	// The envelope's player disagrees with the subject.
	publish(t, js, "baku", "p-2", ingest.TypeSessionStarted, event("liar", ingest.TypeSessionStarted, "p-3", `{}`))

	// A clock far off: a time in 9999 would make the player active for ever.
	future := strings.Replace(string(event("clock", ingest.TypeSessionStarted, "p-4", `{}`)), time.Now().UTC().Format("2006"), "9999", 1)
	publish(t, js, "baku", "p-4", ingest.TypeSessionStarted, []byte(future))
	bustest.Eventually(t, 10*time.Second, "20 players with one deposit each", func() bool {
		for i := range 20 {
			p, ok := getPlayer(t, js, 4, "baku", fmt.Sprintf("p-%d", i))
			if !ok || p.DepositCount != 1 {
				return false
			}
		}
		return true
	})
	p, _ := getPlayer(t, js, 4, "baku", "p-1")
	if p.DepositSum != 2000 || p.Country != "AZ" || p.Email != "p-1@example.az" {
		t.Errorf("p-1 = %+v", p)
	}
	dl, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	bustest.Eventually(t, 5*time.Second, "three dead letters", func() bool {
		info, _ := dl.Info(ctx)
		return info.State.Msgs == 3
	})
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := dl.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		d, err := bus.Decode[bus.DeadLetter](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, d.Reason)
	}
	slices.Sort(reasons)
	if !strings.Contains(reasons[0], "data.amount: is required") || !strings.Contains(reasons[1], "subject: player id \"p-3\" differs") ||
		!strings.Contains(reasons[2], "time: 9999-") || !strings.Contains(reasons[2], "ahead of the receiver's clock") {
		t.Errorf("dead-letter reasons: %q", reasons)
	}

	// Erasure: leave traces of p-3 everywhere, then erase.
	const victim = "p-3"
	part := bus.Partition(victim, 4)
	email := victim + "@example.az"
	for _, b := range []string{bus.BucketPrefs, bus.BucketState, bus.BucketInbox} {
		if _, err := bustest.KV(t, js, b).Put(ctx, bus.PlayerKey("baku", part, victim), []byte(`{"email":"`+email+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, subj := range []string{bus.IntentSubject("baku", part, victim), bus.ScheduleSubject("baku", part, victim, "welcome", "f1", "s1"),
		bus.DeliverySubject("email", "baku", part, victim), bus.OutcomeSubject("baku", part, victim)} {
		if _, err := js.Publish(ctx, subj, []byte(`{"to":"`+email+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, bus.ConsentSubject("baku", part, victim), []byte(`{"player":"p-3","category":"promotions","granted":true}`)); err != nil {
		t.Fatal(err)
	}
	req := ingest.ErasureRequest(victim, "privacy-officer@baku", "erase-1", time.Now())
	b, _ := json.Marshal(req)
	publish(t, js, "baku", victim, ingest.TypeErasureRequested, b)
	bustest.Eventually(t, 10*time.Second, "tombstone for p-3", func() bool {
		p, ok := getPlayer(t, js, 4, "baku", victim)
		return ok && p.Erased
	})
	// A new event for the erased id is dropped and removed.
	publish(t, js, "baku", victim, ingest.TypeProfileUpdated, event("after", ingest.TypeProfileUpdated, victim, `{"email":"`+email+`"}`))
	bustest.Eventually(t, 5*time.Second, "the post-erasure event dropped", func() bool {
		v, ok := r.counts.Load(ingest.TypeProfileUpdated + "/" + players.ResultErased)
		return ok && v.(*atomic.Int64).Load() == 1
	})
	// The platform's events of p-3 are overwritten by the eraser, after the tombstone.
	bustest.WaitAudit(t, js, "baku", victim, players.AuditOverwritten, 30*time.Second)
	bustest.AssertNowhere(t, js, email)
	p3, _ := getPlayer(t, js, 4, "baku", victim)
	if p3.Email != "" || p3.DepositCount != 0 {
		t.Errorf("tombstone keeps data: %+v", p3)
	}
	// The consent ledger (id only) is kept as proof; AUDIT records the erasure.
	cs, _ := js.Stream(ctx, bus.StreamConsent)
	if info, _ := cs.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("consent ledger has %d entries, want 1", info.State.Msgs)
	}
	au, _ := js.Stream(ctx, bus.StreamAudit)
	_ = au
	var a bus.AuditEntry
	for _, e := range bustest.Collect[bus.AuditEntry](t, js, bus.StreamAudit, bus.AuditSubject("baku", bus.KindPlayer, victim)) {
		if e.Action == players.AuditErased {
			a = e
		}
	}
	if a.Action != players.AuditErased || a.Actor != "privacy-officer@baku" {
		t.Errorf("audit entry %+v", a)
	}
	// Other players are untouched.
	if p, ok := getPlayer(t, js, 4, "baku", "p-4"); !ok || p.Email != "p-4@example.az" {
		t.Errorf("p-4 lost data: %+v", p)
	}
}

func TestPartitionsSplitAndHandOver(t *testing.T) {
	srv := bustest.Start(t, 8)
	_, js := srv.Connect(t)
	r1 := startReplica(t, srv, "r1")
	r2 := startReplica(t, srv, "r2")
	bustest.Eventually(t, 10*time.Second, "r1 and r2 own 4 partitions each", func() bool {
		return len(r1.leases.Owned()) == 4 && len(r2.leases.Owned()) == 4
	})
	if o := append(r1.leases.Owned(), r2.leases.Owned()...); len(slices.Compact(slices.Sorted(slices.Values(o)))) != 8 {
		t.Fatalf("partitions owned twice: %v", o)
	}
	deposit := func(round int) {
		for i := range 40 {
			p := fmt.Sprintf("h-%d", i)
			publish(t, js, "baku", p, ingest.TypeDepositCompleted,
				event(fmt.Sprintf("d%d-%s", round, p), ingest.TypeDepositCompleted, p, `{"amount":"1.00","currency":"AZN","method":"card","depositId":"x"}`))
		}
	}
	allHave := func(n int64) func() bool {
		return func() bool {
			for i := range 40 {
				if p, ok := getPlayer(t, js, 8, "baku", fmt.Sprintf("h-%d", i)); !ok || p.DepositCount != n {
					return false
				}
			}
			return true
		}
	}
	deposit(1)
	bustest.Eventually(t, 10*time.Second, "both replicas applied round 1", allHave(1))

	// r2 stops gracefully: its partitions are handed over at once.
	start := time.Now()
	r2.cancel()
	<-r2.done
	bustest.Eventually(t, 5*time.Second, "r1 owns all 8 after r2 left", func() bool { return len(r1.leases.Owned()) == 8 })
	t.Logf("graceful handover took %s", time.Since(start).Round(time.Millisecond))
	deposit(2)
	bustest.Eventually(t, 10*time.Second, "r1 applied round 2 on every partition", allHave(2))

	// r3 joins: r1 hands it a fair share.
	r3 := startReplica(t, srv, "r3")
	bustest.Eventually(t, 10*time.Second, "r1 and r3 own 4 each", func() bool {
		return len(r1.leases.Owned()) == 4 && len(r3.leases.Owned()) == 4
	})
	// r3 dies without a word (its leases are left to expire): r1 takes them over after the TTL.
	r3Epochs := map[int]uint64{}
	for _, p := range r3.leases.Owned() {
		r3Epochs[p], _ = r3.leases.Epoch(p)
	}
	start = time.Now()
	r3.kv.Store(true)
	bustest.Eventually(t, 10*time.Second, "r1 owns all 8 after r3 died", func() bool { return len(r1.leases.Owned()) == 8 })
	t.Logf("takeover after a silent death took %s (TTL 1.5s)", time.Since(start).Round(time.Millisecond))
	deposit(3)
	bustest.Eventually(t, 10*time.Second, "round 3 applied exactly once", allHave(3))
	for p, old := range r3Epochs {
		if e, _ := r1.leases.Epoch(p); e <= old {
			t.Errorf("partition %d: epoch %d after takeover, r3 held %d; it must grow", p, e, old)
		}
	}
	if len(r3.leases.Owned()) != 0 {
		t.Errorf("the cut-off replica still believes it owns %v", r3.leases.Owned())
	}
}

// deadKV is a leases bucket whose writes fail once cut is set, as for a replica cut off
// from NATS.
type deadKV struct {
	jetstream.KeyValue
	cut *atomic.Bool
}

var errCutOff = errors.New("cut off")

func (d deadKV) Put(ctx context.Context, k string, v []byte) (uint64, error) {
	if d.cut.Load() {
		return 0, errCutOff
	}
	return d.KeyValue.Put(ctx, k, v)
}

func (d deadKV) Update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	if d.cut.Load() {
		return 0, errCutOff
	}
	return d.KeyValue.Update(ctx, k, v, rev)
}

func (d deadKV) Create(ctx context.Context, k string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if d.cut.Load() {
		return 0, errCutOff
	}
	return d.KeyValue.Create(ctx, k, v, o...)
}
