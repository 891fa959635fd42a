package players

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// EraserConsumer is the durable consumer through which the dispatchers overwrite the
// platform's events of erased players: every replica pulls from it, each request goes to
// one of them, and a request whose replica died is redelivered to another.
const EraserConsumer = "eraser"

// AuditOverwritten is the AUDIT action the eraser appends once a player's events are
// overwritten.
const AuditOverwritten = "events-overwritten"

// Eraser overwrites, outside the partition owners' loops, what the platform published
// about an erased player: their EVENTS messages and the DEADLETTER entries naming them,
// with JetStream's secure delete (about 7 ms a message: the server rewrites a block file
// each time). In the owner's loop it held the whole partition for seconds per thousand
// events. A request is taken once its owner has written the tombstone (so no event the
// owner still had to apply is overwritten before it is applied); the request message
// itself stays (it holds ids only) so a crash mid-way resumes from it.
type Eraser struct {
	JS jetstream.JetStream
	// Players is croupier-players, where the owner's tombstone is looked for.
	Players    jetstream.KeyValue
	Partitions int
	Log        *slog.Logger
	// Retry is how soon a request whose tombstone is not written yet is looked at again
	// (default 2 s).
	Retry time.Duration
}

// ErasureRequestsFilter selects the erasure requests among the stored events.
var ErasureRequestsFilter = bus.Root + ".ev.*.*.*." + ingest.TypeErasureRequested

// Run takes erasure requests until ctx ends.
func (e *Eraser) Run(ctx context.Context) error {
	cons, err := e.JS.CreateOrUpdateConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
		Durable: EraserConsumer, FilterSubject: ErasureRequestsFilter, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 10 * time.Minute, MaxDeliver: -1, MaxAckPending: 16,
		Description: "erasure requests: the platform's events of the player are overwritten (secure delete)",
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", EraserConsumer, err)
	}
	retry := e.Retry
	if retry <= 0 {
		retry = 2 * time.Second
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.Log.Warn("fetching erasure requests", "err", err)
			time.Sleep(time.Second)
			continue
		}
		for m := range batch.Messages() {
			done, err := e.erase(ctx, m)
			switch {
			case err != nil:
				e.Log.Error("overwriting an erased player's events", "err", err)
				_ = m.NakWithDelay(retry)
			case !done:
				_ = m.NakWithDelay(retry)
			default:
				_ = m.Ack()
			}
		}
	}
	return nil
}

// erase overwrites one erased player's events; done is false while the owner has not
// written the tombstone yet.
func (e *Eraser) erase(ctx context.Context, m jetstream.Msg) (done bool, err error) {
	md, err := m.Metadata()
	if err != nil {
		return false, err
	}
	brand, player, _, ok := eventAddress(m.Subject())
	if !ok {
		return true, nil // not an event of a player: nothing to overwrite
	}
	part := bus.Partition(player, e.Partitions)
	entry, err := e.Players.Get(ctx, bus.PlayerKey(brand, part, player))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var tomb struct {
		Erased bool `json:"erased"`
	}
	if json.Unmarshal(entry.Value(), &tomb) != nil || !tomb.Erased {
		return false, nil
	}
	keep := func(r *jetstream.RawStreamMsg) bool { return r.Sequence != md.Sequence.Stream }
	started := time.Now()
	n, err := secureDelete(ctx, e.JS, bus.StreamEvents, bus.StoredPlayerEventsFilter(brand, part, player), keep)
	if err != nil {
		return false, err
	}
	about := func(r *jetstream.RawStreamMsg) bool {
		dl, err := bus.Decode[bus.DeadLetter](r.Data)
		return err == nil && subjectNames(dl.Subject, brand, player)
	}
	dead, err := secureDelete(ctx, e.JS, bus.StreamDeadLetter, bus.Root+".deadletter.>", about)
	if err != nil {
		return false, err
	}
	ev, _ := ingest.Decode(brand, player, ingest.TypeErasureRequested, m.Data())
	id := ""
	if ev != nil {
		id = ev.ID
	}
	a := bus.AuditEntry{Time: time.Now().UTC(), Brand: brand, Kind: bus.KindPlayer, Name: player, Action: AuditOverwritten,
		Note: fmt.Sprintf("erasure request %s: %d events and %d dead letters overwritten on disk (secure delete)", id, n, dead)}
	b, _ := bus.Encode(a)
	if _, err := e.JS.Publish(ctx, bus.AuditSubject(brand, bus.KindPlayer, player), b, jetstream.WithMsgID("overwritten/"+brand+"/"+player+"/"+id)); err != nil {
		return false, fmt.Errorf("auditing the overwrite: %w", err)
	}
	e.Log.Info("erased player's events overwritten", "brand", brand, "partition", part, "events", n, "deadLetters", dead,
		"took", time.Since(started).Round(time.Millisecond).String())
	return true, nil
}
