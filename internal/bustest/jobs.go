package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// Jobs decodes every delivery job on filter, in order, with its sealed part opened (the
// players' data keys read from croupier-keys). A job whose key is gone keeps it sealed.
func Jobs(t testing.TB, js jetstream.JetStream, filter string) []bus.DeliveryJob {
	t.Helper()
	ctx := context.Background()
	topo, err := bus.CheckTopology(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bus.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	keys := &datakey.Reader{KV: kv, Partitions: topo.Partitions}
	jobs := Collect[bus.DeliveryJob](t, js, bus.StreamDeliveries, filter)
	for i := range jobs {
		err := jobs[i].Unseal(func(brand, player string, sealed []byte) ([]byte, error) {
			return keys.Open(ctx, brand, player, sealed)
		})
		if err != nil && err != datakey.ErrErased {
			t.Fatalf("opening job %s: %v", jobs[i].DecisionID, err)
		}
	}
	return jobs
}

// DataKeys is a reader of the players' data keys in croupier-keys.
func DataKeys(t testing.TB, js jetstream.JetStream, partitions int) *datakey.Reader {
	t.Helper()
	return &datakey.Reader{KV: KV(t, js, bus.BucketKeys), Partitions: partitions}
}

// WaitAudit waits until the player's AUDIT subject holds an entry with action (an erasure
// is done when the eraser's "events-overwritten" entry is there), failing after within.
func WaitAudit(t testing.TB, js jetstream.JetStream, brand, player, action string, within time.Duration) {
	t.Helper()
	Eventually(t, within, "the "+action+" AUDIT entry of "+player, func() bool {
		for _, a := range Collect[bus.AuditEntry](t, js, bus.StreamAudit, bus.AuditSubject(brand, bus.KindPlayer, player)) {
			if a.Action == action {
				return true
			}
		}
		return false
	})
}
