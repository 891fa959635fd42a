package players

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// Event results counted by the keeper.
const (
	ResultApplied    = "applied"
	ResultDuplicate  = "duplicate"
	ResultInvalid    = "invalid"
	ResultErased     = "dropped_erased"
	ResultErasedNow  = "erased"
	ResultDeadLetter = "deadletter"
)

// Keeper is the partition handler that keeps players: it applies each partition's events
// to its players, dead-letters what it cannot apply, carries out erasures and, on a
// schedule, recomputes RFM and emits player.inactive and player.anniversary.
type Keeper struct {
	JS jetstream.JetStream
	// Players is the croupier-players bucket.
	Players jetstream.KeyValue
	// Keys is the croupier-keys bucket (the players' data keys); opened from JS when nil.
	Keys jetstream.KeyValue
	// KEKs wrap the data keys (nil: stored unwrapped).
	KEKs datakey.KEKs
	// Unsealed stores contact data and bodies without sealing them: only to measure what
	// sealing costs (make bench); erasure then cannot reach old revisions on disk.
	Unsealed bool
	Log      *slog.Logger
	// InactiveDays are the thresholds at which player.inactive is emitted (ascending).
	InactiveDays []int
	// Count, when set, counts events by type and result.
	Count func(eventType, result string)
	Clock clock.Func

	mu    sync.RWMutex
	parts map[int]*Partition
}

var _ partition.Handler = (*Keeper)(nil)

func (k *Keeper) count(t, result string) {
	if k.Count != nil {
		k.Count(t, result)
	}
}

// Partitions lists the owned partitions' player sets.
func (k *Keeper) Partitions() []*Partition {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ps := make([]*Partition, 0, len(k.parts))
	for _, p := range k.parts {
		ps = append(ps, p)
	}
	return ps
}

// Open loads a partition's players.
func (k *Keeper) Open(ctx context.Context, part int, _ uint64) (partition.State, error) {
	var keys *datakey.Ring
	if !k.Unsealed {
		keysKV := k.Keys
		if keysKV == nil {
			var err error
			if keysKV, err = k.JS.KeyValue(ctx, bus.BucketKeys); err != nil {
				return nil, fmt.Errorf("opening %s: %w", bus.BucketKeys, err)
			}
		}
		var err error
		if keys, err = datakey.Load(ctx, k.JS, keysKV, part, k.KEKs); err != nil {
			return nil, err
		}
	}
	pt, err := Load(ctx, k.Players, part, keys)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.parts == nil {
		k.parts = map[int]*Partition{}
	}
	k.parts[part] = pt
	k.mu.Unlock()
	return &PartitionState{k: k, pt: pt}, nil
}

// OpenState is Open with the concrete state, for handlers that build on the keeper.
func (k *Keeper) OpenState(ctx context.Context, part int) (*PartitionState, error) {
	st, err := k.Open(ctx, part, 0)
	if err != nil {
		return nil, err
	}
	return st.(*PartitionState), nil
}

// PartitionState is one owned partition's players and what the keeper does with them.
type PartitionState struct {
	k       *Keeper
	pt      *Partition
	pending []jetstream.PubAckFuture
	events  jetstream.Stream
}

func (s *PartitionState) Close() {
	s.k.mu.Lock()
	if s.k.parts[s.pt.Part] == s.pt {
		delete(s.k.parts, s.pt.Part)
	}
	s.k.mu.Unlock()
}

// eventAddress splits croupier.ev.<brand>.<part>.<player>.<type...>.
func eventAddress(subject string) (brand, player, eventType string, ok bool) {
	const prefix = bus.Root + ".ev."
	if !strings.HasPrefix(subject, prefix) {
		return "", "", "", false
	}
	parts := strings.SplitN(subject[len(prefix):], ".", 4)
	if len(parts) != 4 {
		return "", "", "", false
	}
	return parts[0], parts[2], parts[3], true
}

// Partition is the state's players.
func (s *PartitionState) Partition() *Partition { return s.pt }

// Handle applies one event message.
func (s *PartitionState) Handle(ctx context.Context, msg jetstream.Msg) error {
	_, _, err := s.HandleEvent(ctx, msg)
	return err
}

// HandleEvent applies one event message and returns the decoded event (nil when it was
// dead-lettered) and what became of it; an erasure reports Erased.
func (s *PartitionState) HandleEvent(ctx context.Context, msg jetstream.Msg) (*ingest.Event, Result, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, 0, err
	}
	brand, player, eventType, ok := eventAddress(msg.Subject())
	if !ok {
		s.deadLetter(msg, "subject is not croupier.ev.<brand>.<part>.<player>.<type>")
		return nil, 0, nil
	}
	ev, err := ingest.DecodeAt(brand, player, eventType, msg.Data(), s.k.Clock.Now())
	if err != nil {
		s.k.count(ingest.TypeLabel(eventType), ResultInvalid)
		s.deadLetter(msg, err.Error())
		return nil, 0, nil
	}
	if ev.Type == ingest.TypeErasureRequested {
		return ev, Erased, s.erase(ctx, ev)
	}
	res := s.pt.Apply(ev, md.Sequence.Stream)
	switch res {
	case Applied:
		s.k.count(ingest.TypeLabel(ev.Type), ResultApplied)
	case Duplicate:
		s.k.count(ingest.TypeLabel(ev.Type), ResultDuplicate)
	case Erased:
		// The player was erased: the event is dropped and removed, so its data does not
		// stay in EVENTS.
		if err := s.deleteEvent(ctx, md.Sequence.Stream); err != nil {
			s.k.Log.Warn("removing an erased player's event", "partition", s.pt.Part, "seq", md.Sequence.Stream, "err", err)
		}
		s.k.count(ingest.TypeLabel(ev.Type), ResultErased) // counted once removed
	}
	return ev, res, nil
}

func (s *PartitionState) deleteEvent(ctx context.Context, seq uint64) error {
	if s.events == nil {
		st, err := s.k.JS.Stream(ctx, bus.StreamEvents)
		if err != nil {
			return err
		}
		s.events = st
	}
	// Overwritten, not only deleted: the event may carry contact data.
	return s.events.SecureDeleteMsg(ctx, seq)
}

// deadLetter moves a message to DEADLETTER with the reason; the batch's flush waits for it.
func (s *PartitionState) deadLetter(msg jetstream.Msg, reason string) {
	f, err := ingest.PublishDeadLetter(s.k.JS, bus.StreamEvents, msg.Subject(), msg.Headers(), msg.Data(), reason, s.k.Clock.Now())
	if err != nil {
		s.k.Log.Error("dead-lettering an event", "partition", s.pt.Part, "err", err)
		return
	}
	s.k.count("", ResultDeadLetter)
	s.pending = append(s.pending, f)
}

func (s *PartitionState) Flush(ctx context.Context) error {
	for _, f := range s.pending {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("dead-letter publish: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.pending = s.pending[:0]
	return s.pt.Flush(ctx, s.k.JS)
}

// Keys are the partition's data keys.
func (s *PartitionState) Keys() *datakey.Ring { return s.pt.Keys }

func (s *PartitionState) Tick(ctx context.Context, now time.Time) error {
	for _, brand := range s.pt.Brands() {
		for _, c := range s.pt.Sweep(brand, now, s.k.InactiveDays) {
			ce := ingest.SweepEvent(c.Player, c.Type, c.N, int64(c.Since), now)
			b, _ := json.Marshal(ce)
			f, err := s.k.JS.PublishAsync(bus.EventSubject(brand, c.Player, c.Type), b, jetstream.WithMsgID(ce.IdempotencyKey()), jetstream.WithStallWait(stallWait))
			if err != nil {
				return err
			}
			s.pending = append(s.pending, f)
		}
	}
	return nil
}

// erase carries out an erasure request in the partition's order of events: everything the
// owner changed is persisted first, then every trace with contact data is purged and a
// tombstone and an AUDIT entry are written.
func (s *PartitionState) erase(ctx context.Context, ev *ingest.Event) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	if p, ok := s.pt.Get(ev.Brand, ev.Player); ok && p.Erased {
		s.k.count(ev.Type, ResultDuplicate)
		return nil
	}
	// Everything else first, the tombstone last: it is what the erase API waits for.
	if err := PurgePlayer(ctx, s.k.JS, ev.Brand, s.pt.Part, ev.Player); err != nil {
		return err
	}
	if err := s.pt.Erase(ctx, s.k.Players, ev.Brand, ev.Player, s.k.Clock.Now()); err != nil {
		return err
	}
	actor := ""
	if ev.Data.Actor != nil {
		actor = *ev.Data.Actor
	}
	entry := bus.AuditEntry{
		Time: s.k.Clock.Now().UTC(), Brand: ev.Brand, Kind: bus.KindPlayer, Name: ev.Player, Action: AuditErased,
		Actor: actor, Note: "erasure request " + ev.ID + ": profile, preferences, state, inbox, intents, schedules, deliveries and outcomes purged, data key destroyed; the platform's events are overwritten next (" + AuditOverwritten + "); consent ledger kept (id only)",
	}
	b, _ := bus.Encode(entry)
	if _, err := s.k.JS.Publish(ctx, bus.AuditSubject(ev.Brand, bus.KindPlayer, ev.Player), b, jetstream.WithMsgID("erase/"+ev.Brand+"/"+ev.Player+"/"+ev.ID)); err != nil {
		return fmt.Errorf("auditing erasure: %w", err)
	}
	s.k.count(ev.Type, ResultErasedNow)
	s.k.Log.Info("player erased", "brand", ev.Brand, "player", ev.Player, "partition", s.pt.Part)
	return nil
}

// Audit actions of the player API.
const (
	AuditErased   = "erased"
	AuditExported = "exported"
	AuditImported = "imported"
)

// PurgePlayer removes a player's keys from croupier-prefs, croupier-state and croupier-inbox
// (KV purge: no revision survives) and the player's subjects from INTENTS (intents and
// schedules), DELIVERIES and OUTCOMES. What Croupier wrote with contact data is sealed
// with the player's data key, which Partition.Erase destroys, so a purge (which leaves
// bytes in the store's blocks until compaction) is enough there. What the platform
// published about the player (their EVENTS messages and the DEADLETTER entries naming
// them) is not sealed: the Eraser overwrites it with JetStream's secure delete once the
// tombstone is written. croupier-players is the owner's.
func PurgePlayer(ctx context.Context, js jetstream.JetStream, brand string, part int, player string) error {
	key := bus.PlayerKey(brand, part, player)
	for _, b := range []string{bus.BucketPrefs, bus.BucketState, bus.BucketInbox} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			return err
		}
		if err := kv.Purge(ctx, key); err != nil {
			return fmt.Errorf("purging %s: %w", b, err)
		}
	}
	purges := []struct{ stream, filter string }{
		{bus.StreamIntents, bus.IntentSubject(brand, part, player)},
		{bus.StreamIntents, bus.PlayerSchedulesFilter(brand, part, player)},
		{bus.StreamDeliveries, bus.PlayerDeliveriesFilter(brand, part, player)},
		{bus.StreamOutcomes, bus.OutcomeSubject(brand, part, player)},
	}
	for _, p := range purges {
		st, err := js.Stream(ctx, p.stream)
		if err != nil {
			return err
		}
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(p.filter)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("purging %s %s: %w", p.stream, p.filter, err)
		}
	}
	return nil
}

// secureDelete overwrites every message of stream on filter (that match accepts, when
// given) with JetStream's secure delete and returns how many. Each message is found with a
// by-subject lookup from the last one found (the stream API, which a cluster's meta
// leader routes to the stream leader).
func secureDelete(ctx context.Context, js jetstream.JetStream, stream, filter string, match func(*jetstream.RawStreamMsg) bool) (int, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	n := 0
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("reading %s %s: %w", stream, filter, err)
		}
		seq = m.Sequence + 1
		if match != nil && !match(m) {
			continue
		}
		// Each overwrite rewrites the message's block file on the server (about 7 ms).
		if err := st.SecureDeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("erasing %s message %d: %w", stream, m.Sequence, err)
		}
		n++
	}
}

// subjectNames says whether a subject of a player's (croupier.<kind>[.<token>].<brand>
// [.<part>].<player>[...]) names brand's player.
func subjectNames(subject, brand, player string) bool {
	toks := strings.Split(subject, ".")
	for i, t := range toks {
		if t != brand {
			continue
		}
		for j := i + 1; j < len(toks) && j <= i+2; j++ {
			if toks[j] == player {
				return true
			}
		}
	}
	return false
}
