package players_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// TestSealedPartIsWrittenOnlyWhenItChanges: the contact data lives sealed under the
// player's ContactKey, written when it changes and not at every persist of the player's
// metrics; a restarted owner reads it back; the record never holds it; an erasure purges
// it; and a record of the former layout (the part embedded, sealed) still loads and moves.
func TestSealedPartIsWrittenOnlyWhenItChanges(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	kv := bustest.KV(t, js, bus.BucketPlayers)
	keysKV := bustest.KV(t, js, bus.BucketKeys)
	load := func() *players.Partition {
		t.Helper()
		ring, err := datakey.Load(ctx, js, keysKV, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := players.Load(ctx, kv, 0, ring)
		if err != nil {
			t.Fatal(err)
		}
		return pt
	}
	contactRev := func(id string) uint64 {
		t.Helper()
		e, err := kv.Get(ctx, players.ContactKey("baku", 0, id))
		if err != nil {
			t.Fatalf("the sealed part of %s: %v", id, err)
		}
		return e.Revision()
	}
	pt := load()
	seq := uint64(0)
	apply := func(e *ingest.Event) {
		t.Helper()
		seq++
		if r := pt.Apply(e, seq); r != players.Applied {
			t.Fatalf("%s: result %v", e.Type, r)
		}
		if err := pt.Flush(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	apply(ev(t, "reg", ingest.TypeRegistered, t0, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"ayla@example.az","phone":"+994501112233","attrs":{"firstName":"Ayla"}}`))
	first := contactRev("p-1")
	rec, err := kv.Get(ctx, bus.PlayerKey("baku", 0, "p-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ayla@example.az", "+994501112233", "Ayla", `"sealed"`} {
		if strings.Contains(string(rec.Value()), s) {
			t.Errorf("the record holds %q: %s", s, rec.Value())
		}
	}
	for i := range 3 {
		apply(ev(t, "dep-"+string(rune('a'+i)), ingest.TypeDepositCompleted, t0.Add(time.Duration(i+1)*time.Minute), `{"amount":"20.00","currency":"AZN","method":"card","depositId":"d"}`))
	}
	if got := contactRev("p-1"); got != first {
		t.Errorf("three deposits rewrote the sealed part (revision %d, then %d)", first, got)
	}
	apply(ev(t, "upd", ingest.TypeProfileUpdated, t0.Add(time.Hour), `{"phone":"+994559998877"}`))
	second := contactRev("p-1")
	if second == first {
		t.Fatalf("a new phone number did not rewrite the sealed part")
	}

	// A new owner reads the part back, and writes it again only when it changes.
	pt = load()
	p, ok := pt.Get("baku", "p-1")
	if !ok || p.Phone != "+994559998877" || p.Email != "ayla@example.az" || p.DepositCount != 3 || len(p.Attrs) != 1 {
		t.Fatalf("after a reload: %+v", p)
	}
	apply(ev(t, "dep-d", ingest.TypeDepositCompleted, t0.Add(2*time.Hour), `{"amount":"20.00","currency":"AZN","method":"card","depositId":"d"}`))
	if got := contactRev("p-1"); got != second {
		t.Errorf("a reloaded owner rewrote an unchanged sealed part (revision %d, then %d)", second, got)
	}
	got, found, err := players.Read(ctx, kv, "baku", 0, "p-1", ringOpen(t, js))
	if err != nil || !found || got.Phone != "+994559998877" || got.DepositCount != 4 {
		t.Fatalf("Read: %+v %v %v", got, found, err)
	}

	// A record of the former layout: the sealed part embedded in the record.
	ring, err := datakey.Load(ctx, js, keysKV, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(map[string]any{"email": "old@example.az"})
	box, err := ring.Seal("baku", "p-2", plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Persist(ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{"id": "p-2", "brand": "baku", "country": "AZ", "sealed": box})
	if _, err := kv.Put(ctx, bus.PlayerKey("baku", 0, "p-2"), old); err != nil {
		t.Fatal(err)
	}
	pt = load()
	if p, _ := pt.Get("baku", "p-2"); p.Email != "old@example.az" {
		t.Fatalf("a record of the former layout lost its email: %+v", p)
	}
	seq = 100
	p2 := strings.ReplaceAll(`{"specversion":"1.0","id":"dep-p2","source":"pam.baku","type":"deposit.completed","subject":"p-2","time":"2026-11-01T15:00:00Z","data":{"amount":"5.00","currency":"AZN","method":"card","depositId":"x"}}`, "\n", "")
	e2, err := ingest.Decode("baku", "p-2", ingest.TypeDepositCompleted, []byte(p2))
	if err != nil {
		t.Fatal(err)
	}
	apply(e2)
	rec, _ = kv.Get(ctx, bus.PlayerKey("baku", 0, "p-2"))
	if strings.Contains(string(rec.Value()), `"sealed"`) {
		t.Errorf("the next write kept the former layout: %s", rec.Value())
	}
	if got, _, err := players.Read(ctx, kv, "baku", 0, "p-2", ringOpen(t, js)); err != nil || got.Email != "old@example.az" {
		t.Errorf("after the move: %+v %v", got, err)
	}

	// An erasure purges the sealed part with the record.
	if err := pt.Erase(ctx, kv, "baku", "p-1", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, players.ContactKey("baku", 0, "p-1")); err != jetstream.ErrKeyNotFound {
		t.Errorf("the erased player's sealed part: %v, want it purged", err)
	}
	if err := pt.Flush(ctx, js); err != nil {
		t.Fatal(err)
	}
	pt = load()
	if p, _ := pt.Get("baku", "p-1"); !p.Erased || p.Email != "" {
		t.Errorf("after the erasure and a reload: %+v", p)
	}
}

// TestOrphanedSealedPartIsWrittenOver: a sealed part stored without its record (a first
// write cut short before the record's) does not fence the owner that registers the player
// again from the replayed events.
func TestOrphanedSealedPartIsWrittenOver(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	kv := bustest.KV(t, js, bus.BucketPlayers)
	if _, err := kv.Put(ctx, players.ContactKey("baku", 0, "p-1"), []byte("left over")); err != nil {
		t.Fatal(err)
	}
	ring, err := datakey.Load(ctx, js, bustest.KV(t, js, bus.BucketKeys), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := players.Load(ctx, kv, 0, ring)
	if err != nil {
		t.Fatal(err)
	}
	pt.Apply(ev(t, "reg", ingest.TypeRegistered, t0, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"ayla@example.az"}`), 1)
	if err := pt.Flush(ctx, js); err != nil {
		t.Fatalf("the owner's first write over an orphaned part: %v", err)
	}
	if got, _, err := players.Read(ctx, kv, "baku", 0, "p-1", ringOpen(t, js)); err != nil || got.Email != "ayla@example.az" {
		t.Errorf("read back: %+v %v", got, err)
	}
}

func ringOpen(t *testing.T, js jetstream.JetStream) func(brand, player string, sealed []byte) ([]byte, error) {
	keys := bustest.DataKeys(t, js, 1)
	return func(brand, player string, sealed []byte) ([]byte, error) {
		return keys.Open(context.Background(), brand, player, sealed)
	}
}
