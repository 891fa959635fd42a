package players

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/rules"
)

// ErrFenced means a conditional write found a revision this owner did not write: another
// replica owns the partition now (or did in between). The owner must drop the partition's
// state without acknowledging what it processed; the next owner replays it.
var ErrFenced = errors.New("partition fenced: croupier-players changed under this owner")

type entry struct {
	Player
	rev uint64
	// contactRev is the revision of the player's ContactKey (0: none stored), print the
	// fingerprint of the sealed part stored there (0: not known to be stored).
	contactRev uint64
	print      uint64
	dirty      bool
}

// Partition is one partition's players in memory: the index segments are evaluated against
// and the write-behind cache of croupier-players. Writes come from the partition's one
// worker goroutine; readers take the read lock.
type Partition struct {
	Part int
	// Keys seals the players' contact data in croupier-players (nil: stored plain, for
	// unit tests of the partition alone).
	Keys *datakey.Ring

	mu     sync.RWMutex
	brands map[string]*brandIndex
	dirty  []*entry
	// orphans are the revisions of ContactKeys found without a record (a first write cut
	// short), by key: a player created later writes over them.
	orphans map[string]uint64
}

// brandIndex is a brand's players: by id, and in one slice that full scans walk (a slice
// of pointers in insertion order is far kinder to the cache than a map's iteration).
type brandIndex struct {
	byID map[string]*entry
	all  []*entry
}

func (bi *brandIndex) put(en *entry) {
	if _, ok := bi.byID[en.ID]; !ok {
		bi.all = append(bi.all, en)
	}
	bi.byID[en.ID] = en
}

// NewPartition is an empty partition.
func NewPartition(part int) *Partition {
	return &Partition{Part: part, brands: map[string]*brandIndex{}}
}

// Load reads partition part's players from croupier-players (a watch delivers every
// current value in one ordered stream, much faster than a get per key), then their sealed
// parts (ContactKey), opened with keys.
func Load(ctx context.Context, kv jetstream.KeyValue, part int, keys *datakey.Ring) (*Partition, error) {
	pt := NewPartition(part)
	pt.Keys = keys
	var open func(brand, player string, sealed []byte) ([]byte, error)
	if keys != nil {
		open = keys.Open
	}
	follow := func(filter, what string, fn func(e jetstream.KeyValueEntry) error) error {
		w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
		if err != nil {
			return fmt.Errorf("loading partition %d: %w", part, err)
		}
		return bus.Follow(ctx, w, fmt.Sprintf("loading %s of partition %d", what, part), fn, func() bool { return true })
	}
	err := follow("*."+strconv.Itoa(part)+".*", "the players", func(e jetstream.KeyValueEntry) error {
		p, err := DecodeRecord(e.Value(), open)
		if err != nil {
			return fmt.Errorf("loading %s: %w", e.Key(), err)
		}
		en := &entry{Player: p, rev: e.Revision()}
		en.Intern()
		pt.brand(en.Brand).put(en)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = follow("*."+strconv.Itoa(part)+".*"+contactSuffix, "the players' sealed parts", func(e jetstream.KeyValueEntry) error {
		brand, rest, _ := strings.Cut(e.Key(), ".")
		_, id, _ := strings.Cut(strings.TrimSuffix(rest, contactSuffix), ".")
		var en *entry
		if bi := pt.brands[brand]; bi != nil {
			en = bi.byID[id]
		}
		if en == nil || en.Erased {
			if pt.orphans == nil {
				pt.orphans = map[string]uint64{}
			}
			pt.orphans[e.Key()] = e.Revision()
			return nil
		}
		if err := OpenContact(&en.Player, e.Value(), open); err != nil {
			return fmt.Errorf("loading %s: %w", e.Key(), err)
		}
		en.contactRev, en.print = e.Revision(), contactPrint(&en.Player)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, bi := range pt.brands {
		for _, en := range bi.all {
			// No stored part: known to be stored when there is nothing to store. A part
			// found embedded in the record (the former layout) moves at the next write.
			if en.print == 0 {
				if part := sealedPart(&en.Player); part.empty() {
					en.print = contactPrint(&en.Player)
				}
			}
		}
	}
	return pt, nil
}

func (pt *Partition) brand(b string) *brandIndex {
	m, ok := pt.brands[b]
	if !ok {
		m = &brandIndex{byID: map[string]*entry{}}
		pt.brands[in(b)] = m
	}
	return m
}

// Len is the number of players held (tombstones included).
func (pt *Partition) Len() int {
	pt.mu.RLock()
	defer pt.mu.RUnlock()
	n := 0
	for _, m := range pt.brands {
		n += len(m.byID)
	}
	return n
}

// EventKey hashes an event's idempotency key (source + id).
func EventKey(ev *ingest.Event) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ev.Source))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(ev.ID))
	return h.Sum64() | 1 // never 0: 0 marks an empty slot
}

// Result says what applying an event did.
type Result int

// Results of Apply.
const (
	Applied Result = iota
	Duplicate
	Erased
)

// Apply applies one validated event at stream sequence seq. Events for an erased player are
// refused (Erased). The change is persisted by the next Flush.
func (pt *Partition) Apply(ev *ingest.Event, seq uint64) Result {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	m := pt.brand(ev.Brand)
	en, ok := m.byID[ev.Player]
	if !ok {
		en = &entry{Player: Player{ID: strings.Clone(ev.Player), Brand: in(ev.Brand)}}
		if rev, ok := pt.orphans[ContactKey(ev.Brand, pt.Part, ev.Player)]; ok {
			en.contactRev = rev
			delete(pt.orphans, ContactKey(ev.Brand, pt.Part, ev.Player))
		}
		m.put(en)
	}
	if en.Erased {
		return Erased
	}
	if !en.Apply(ev, seq, EventKey(ev)) {
		return Duplicate
	}
	pt.markDirty(en)
	return Applied
}

func (pt *Partition) markDirty(en *entry) {
	if !en.dirty {
		en.dirty = true
		pt.dirty = append(pt.dirty, en)
	}
}

// Get returns a copy of a player (false when unknown).
func (pt *Partition) Get(brand, id string) (Player, bool) {
	pt.mu.RLock()
	defer pt.mu.RUnlock()
	bi := pt.brands[brand]
	if bi == nil {
		return Player{}, false
	}
	en, ok := bi.byID[id]
	if !ok {
		return Player{}, false
	}
	return en.Player, true
}

// Dims are a player's VIP level, country and RFM segment (the dimensions campaign figures
// are also counted by), without copying the player; ok false when unknown.
func (pt *Partition) Dims(brand, id string) (vip int32, country, rfm string, ok bool) {
	pt.mu.RLock()
	defer pt.mu.RUnlock()
	bi := pt.brands[brand]
	if bi == nil {
		return 0, "", "", false
	}
	en, found := bi.byID[id]
	if !found {
		return 0, "", "", false
	}
	return en.Player.VIPLevel, en.Player.Country, en.Player.RFM.Segment, true
}

// Each calls fn with every live (not erased) player of brand under the read lock; fn must
// not keep p. It stops when fn returns false.
func (pt *Partition) Each(brand string, fn func(p *Player) bool) {
	pt.mu.RLock()
	defer pt.mu.RUnlock()
	bi := pt.brands[brand]
	if bi == nil {
		return
	}
	for _, en := range bi.all {
		if en.Erased {
			continue
		}
		if !fn(&en.Player) {
			return
		}
	}
}

// Brands lists the brands with players in the partition.
func (pt *Partition) Brands() []string {
	pt.mu.RLock()
	defer pt.mu.RUnlock()
	bs := make([]string, 0, len(pt.brands))
	for b := range pt.brands {
		bs = append(bs, b)
	}
	return bs
}

// Flush writes every changed player to croupier-players with asynchronous puts, each
// conditional on the revision this owner last saw (the fence), and waits for them all. A
// player's sealed part is sealed and written first (ContactKey), and only when it changed.
// A refused write returns ErrFenced.
func (pt *Partition) Flush(ctx context.Context, js jetstream.JetStream) error {
	pt.mu.Lock()
	dirty := pt.dirty
	pt.dirty = nil
	type contact struct {
		en    *entry
		box   []byte
		print uint64
	}
	var contacts []contact
	recs := make([][]byte, 0, len(dirty))
	var err error
	for _, en := range dirty {
		en.dirty = false
		b, e := EncodeRecord(&en.Player, pt.Keys != nil)
		if e == nil && pt.Keys != nil {
			if pr := contactPrint(&en.Player); pr != en.print {
				var box []byte
				if box, e = SealContact(&en.Player, pt.Keys); e == nil {
					if len(box) == 0 && en.contactRev == 0 {
						en.print = pr // nothing stored, nothing to store
					} else {
						contacts = append(contacts, contact{en, box, pr})
					}
				}
			}
		}
		if e != nil {
			err = e
			break
		}
		recs = append(recs, b)
	}
	pt.mu.Unlock()
	// A key created for this flush is stored before anything sealed with it.
	if err == nil && pt.Keys != nil {
		if e := pt.Keys.Persist(ctx); errors.Is(e, datakey.ErrTaken) {
			return ErrFenced
		} else if e != nil {
			err = e
		}
	}
	// The sealed parts are stored before the records: a record never stands without the
	// contact data it had.
	if err == nil && len(contacts) > 0 {
		fenced, e := pt.putConditional(ctx, js, len(contacts), func(i int) (string, []byte, uint64) {
			c := contacts[i]
			return kvSubject(bus.BucketPlayers, ContactKey(c.en.Brand, pt.Part, c.en.ID)), c.box, c.en.contactRev
		}, func(i int, seq uint64) { contacts[i].en.contactRev, contacts[i].en.print = seq, contacts[i].print })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fenced {
			return ErrFenced
		}
		err = e
	}
	fenced := false
	if err == nil {
		var e error
		fenced, e = pt.putConditional(ctx, js, len(recs), func(i int) (string, []byte, uint64) {
			en := dirty[i]
			return kvSubject(bus.BucketPlayers, bus.PlayerKey(en.Brand, pt.Part, en.ID)), recs[i], en.rev
		}, func(i int, seq uint64) { dirty[i].rev = seq })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = e
	}
	if fenced {
		return ErrFenced
	}
	if err != nil {
		// Not written: keep them dirty for the next attempt.
		pt.mu.Lock()
		for _, p := range dirty {
			pt.markDirty(p)
		}
		pt.mu.Unlock()
		return fmt.Errorf("persisting partition %d: %w", pt.Part, err)
	}
	return nil
}

// putConditional publishes n croupier-players values, each conditional on the revision
// its key last had (put gives subject, value and revision), waits for them all and calls
// stored (under the write lock) with each written one's new revision. fenced reports a
// refused condition, err the first other failure.
func (pt *Partition) putConditional(ctx context.Context, js jetstream.JetStream, n int,
	put func(i int) (string, []byte, uint64), stored func(i int, seq uint64)) (fenced bool, err error) {
	acks := make([]jetstream.PubAckFuture, 0, n)
	pt.mu.RLock()
	for i := range n {
		subj, v, rev := put(i)
		f, e := js.PublishAsync(subj, v, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithStallWait(stallWait))
		if e != nil {
			err = e
			break
		}
		acks = append(acks, f)
	}
	pt.mu.RUnlock()
	for i, f := range acks {
		select {
		case a := <-f.Ok():
			pt.mu.Lock()
			stored(i, a.Sequence)
			pt.mu.Unlock()
		case e := <-f.Err():
			if bus.Conflict(e) {
				fenced = true
			} else if err == nil {
				err = e
			}
		case <-ctx.Done():
			return fenced, ctx.Err()
		}
	}
	return fenced, err
}

// stallWait is how long an asynchronous publish waits for room among the pending ones.
const stallWait = 30 * time.Second

func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// Erase forgets a player: the croupier-players key is purged and replaced by a tombstone
// that makes later events for the id be dropped, and the player's data key is destroyed.
func (pt *Partition) Erase(ctx context.Context, kv jetstream.KeyValue, brand, id string, at time.Time) error {
	key := bus.PlayerKey(brand, pt.Part, id)
	for _, k := range []string{ContactKey(brand, pt.Part, id), key} {
		if err := kv.Purge(ctx, k); err != nil {
			return fmt.Errorf("purging %s: %w", bus.BucketPlayers, err)
		}
	}
	tomb := Player{ID: id, Brand: brand, Erased: true, LastActivity: UnixOf(at)}
	b, _ := json.Marshal(&tomb)
	rev, err := kv.Put(ctx, key, b)
	if err != nil {
		return fmt.Errorf("writing tombstone: %w", err)
	}
	// The data key goes last: every sealed copy of the contact data (old revisions, jobs
	// and inbox records whose bytes the store keeps until compaction) is unreadable.
	if pt.Keys != nil {
		if err := pt.Keys.Erase(ctx, brand, id); err != nil {
			return err
		}
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	m := pt.brand(brand)
	if en, ok := m.byID[id]; ok {
		// In place: a pending flush of this entry then writes the tombstone, not the
		// erased profile.
		en.Player, en.rev, en.dirty = tomb, rev, false
		en.contactRev, en.print = 0, contactPrint(&tomb)
		return nil
	}
	tomb.ID = strings.Clone(id)
	m.put(&entry{Player: tomb, rev: rev, print: contactPrint(&tomb)})
	return nil
}

// Sweep recomputes RFM for brand's players of this partition and returns the players that
// crossed one of the inactivity thresholds (days, ascending) since their last emission,
// and those whose registration anniversary it is.
func (pt *Partition) Sweep(brand string, now time.Time, thresholds []int) (crossed []Crossing) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	var m []*entry
	if bi := pt.brands[brand]; bi != nil {
		m = bi.all
	}
	ps := make([]*Player, 0, len(m))
	idx := make([]*entry, 0, len(m))
	for _, en := range m {
		if !en.Erased {
			ps = append(ps, &en.Player)
			idx = append(idx, en)
		}
	}
	old := make([]RFM, len(ps))
	for i, p := range ps {
		old[i] = p.RFM
	}
	ScoreRFM(ps, now)
	for i, en := range idx {
		if en.RFM != old[i] {
			pt.markDirty(en)
		}
		days := en.DaysInactive(now)
		for _, t := range thresholds {
			if int64(t) <= days && int32(t) > en.InactiveEmitted && (en.LastActivity != 0 || en.RegisteredAt != 0) {
				en.InactiveEmitted = int32(t)
				crossed = append(crossed, Crossing{Player: en.ID, Type: ingest.TypeInactive, N: t, Since: en.LastActivity})
				pt.markDirty(en)
			}
		}
		if y := en.Anniversary(now); y > int(en.AnniversaryEmitted) {
			en.AnniversaryEmitted = int32(y)
			crossed = append(crossed, Crossing{Player: en.ID, Type: ingest.TypeAnniversary, N: y, Since: en.RegisteredAt})
			pt.markDirty(en)
		}
	}
	return crossed
}

// Crossing is a player who crossed an inactivity threshold (Type player.inactive, N days
// since Since) or a registration anniversary (player.anniversary, N years since Since).
type Crossing struct {
	Player string
	Type   string
	N      int
	Since  Unix
}

// Select calls fn with the id of every live player of brand for whom the rule holds at
// now: the in-memory index serving segment evaluation (the rule's fast path when it has
// one). A rule error for one player is returned with the player's id after the scan.
func (pt *Partition) Select(brand string, now time.Time, prog *rules.Program, fn func(id string)) error {
	var firstErr error
	pt.Each(brand, func(p *Player) bool {
		ok, err := Match(prog, p, now)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("player %s: %w", p.ID, err)
			}
			return true
		}
		if ok {
			fn(p.ID)
		}
		return true
	})
	return firstErr
}
