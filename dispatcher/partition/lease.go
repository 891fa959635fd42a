// Package partition decides which dispatcher replica owns which partition, by fenced
// leases in croupier-leases, and runs one worker per owned partition that consumes the
// partition's events, persists the state they change and acknowledges them after.
package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// memberPrefix marks the replicas' heartbeats in croupier-leases (member.<replica>), from
// which every replica computes the same fair share of partitions.
const memberPrefix = "member."

// Callbacks are called by the lease loop. Acquired starts work on a partition the replica
// now owns with the lease's epoch; Released must stop that work (finish, persist,
// acknowledge) before it returns, because the lease is handed over next. Released runs
// beside the lease loop (a stop may take seconds, while the other leases and the
// replica's heartbeat must be renewed), never for a partition while it is acquired again.
type Callbacks struct {
	Acquired func(ctx context.Context, part int, epoch uint64)
	Released func(part int)
}

// Leases keeps this replica's share of the partitions.
type Leases struct {
	KV         jetstream.KeyValue
	Replica    string
	Partitions int
	// TTL is how long a lease lasts without renewal: a replica that dies is replaced after
	// at most TTL plus one renewal interval (TTL/3).
	TTL   time.Duration
	Log   *slog.Logger
	Clock clock.Func
	// Connected reports whether the replica's NATS connection is up; while it is not,
	// no lease is renewed or taken, and each held one is dropped before it expires.
	Connected func() bool

	mu      sync.Mutex
	entries map[string]jetstream.KeyValueEntry
	owned   map[int]ownedLease
	synced  chan struct{}
	// givenUp are partitions the runner cannot run, to release at the next step; cooling
	// are released ones not taken again before the time.
	givenUp map[int]string
	cooling map[int]time.Time
	wake    chan struct{}
	// share is the last fair share logged, with the members it was computed from.
	share string
	// stopping are partitions whose work is being stopped beside the loop.
	stopping map[int]*stopping
}

// stopping is a partition whose Released callback runs. A handover (free) keeps its lease
// renewed until the work stopped and then frees it; a lost lease is only waited for.
type stopping struct {
	lease ownedLease
	free  bool
	done  chan struct{}
}

// GiveUp asks the lease loop to release a partition at once (the runner cannot run it):
// another replica takes it, and this one does not take it back for two TTLs.
func (l *Leases) GiveUp(part int, reason string) {
	l.mu.Lock()
	if l.givenUp == nil {
		l.givenUp = map[int]string{}
	}
	l.givenUp[part] = reason
	wake := l.wake
	l.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

type ownedLease struct {
	epoch   uint64
	rev     uint64
	expires time.Time
	// orphanSince is set on a partition taken beyond the fair share.
	orphanSince time.Time
}

// Owned lists the partitions this replica holds, ascending.
func (l *Leases) Owned() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := make([]int, 0, len(l.owned))
	for p := range l.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Epoch is the epoch of an owned partition's lease (false when not owned).
func (l *Leases) Epoch(part int) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.owned[part]
	return o.epoch, ok
}

// Run holds leases until ctx ends; then it releases every partition (after Released
// returned for it) so the other replicas take over at once.
func (l *Leases) Run(ctx context.Context, cb Callbacks) error {
	if err := bus.CheckToken("replica", l.Replica); err != nil {
		return err
	}
	if l.TTL <= 0 {
		l.TTL = 6 * time.Second
	}
	l.mu.Lock()
	l.entries = map[string]jetstream.KeyValueEntry{}
	l.owned = map[int]ownedLease{}
	l.synced = make(chan struct{})
	l.cooling = map[int]time.Time{}
	l.stopping = map[int]*stopping{}
	if l.givenUp == nil {
		l.givenUp = map[int]string{}
	}
	l.wake = make(chan struct{}, 1)
	wake := l.wake
	l.mu.Unlock()
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := l.KV.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", bus.BucketLeases, err)
	}
	go l.watch(w)
	select {
	case <-l.synced:
	case <-ctx.Done():
		return nil
	}
	tick := time.NewTicker(l.TTL / 3)
	defer tick.Stop()
	for {
		l.step(ctx, cb)
		select {
		case <-ctx.Done():
			l.releaseAll(cb)
			return nil
		case <-tick.C:
		case <-wake:
		}
	}
}

func (l *Leases) watch(w jetstream.KeyWatcher) {
	synced := false
	for e := range w.Updates() {
		if e == nil {
			if !synced {
				synced = true
				close(l.synced)
			}
			continue
		}
		l.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut {
			l.entries[e.Key()] = e
		} else {
			delete(l.entries, e.Key())
		}
		l.mu.Unlock()
	}
}

// step renews, releases and acquires so this replica holds its fair share.
func (l *Leases) step(ctx context.Context, cb Callbacks) {
	now := l.Clock.Now()
	l.mu.Lock()
	given := l.givenUp
	l.givenUp = map[int]string{}
	l.mu.Unlock()
	for p, reason := range given {
		if _, ok := l.ownedLease(p); ok {
			l.Log.Warn("partition lease released: this replica cannot run it", "partition", p, "reason", reason)
			l.release(p, cb)
		}
		l.cooling[p] = now.Add(2 * l.TTL)
	}
	if l.Connected != nil && !l.Connected() {
		// Without NATS nothing can be renewed; stop work before a lease runs out, so no
		// partition is worked on by a replica that may already have been replaced.
		for _, p := range l.Owned() {
			if o, _ := l.ownedLease(p); !now.Add(l.TTL / 3).Before(o.expires) {
				l.Log.Warn("NATS disconnected: partition lease expiring without renewal; stopping", "partition", p)
				l.drop(p, cb)
			}
		}
		return
	}
	l.heartbeat(ctx, now)
	l.tendStops(ctx, now)

	l.mu.Lock()
	var members []string
	leases := map[int]bus.Lease{}
	revs := map[int]uint64{}
	for k, e := range l.entries {
		var ls bus.Lease
		if json.Unmarshal(e.Value(), &ls) != nil {
			continue
		}
		if strings.HasPrefix(k, memberPrefix) {
			if ls.Expires.After(now) {
				members = append(members, ls.Owner)
			}
			continue
		}
		if p, err := strconv.Atoi(strings.TrimPrefix(k, "part.")); err == nil && p >= 0 && p < l.Partitions {
			leases[p], revs[p] = ls, e.Revision()
		}
	}
	l.mu.Unlock()
	if !slices.Contains(members, l.Replica) {
		members = append(members, l.Replica)
	}
	slices.Sort(members)
	i := slices.Index(members, l.Replica)
	target := l.Partitions / len(members)
	if i < l.Partitions%len(members) {
		target++
	}
	if share := fmt.Sprint(members, target); share != l.share {
		l.share = share
		l.Log.Info("partition share", "members", members, "share", target)
	}

	// Renew what we hold; a refused renewal means another replica took the partition.
	for _, p := range l.Owned() {
		o, _ := l.ownedLease(p)
		next := bus.Lease{Partition: p, Owner: l.Replica, Epoch: o.epoch, Renewed: now, Expires: now.Add(l.TTL)}
		rev, err := l.KV.Update(ctx, bus.LeaseKey(p), encode(next), o.rev)
		switch {
		case err == nil:
			o.rev, o.expires = rev, next.Expires
			l.setOwned(p, o)
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.Log.Warn("partition lease lost", "partition", p, "epoch", o.epoch)
			l.drop(p, cb)
		default:
			// NATS unreachable: keep working only while the lease we hold is valid.
			if !now.Add(l.TTL / 3).Before(o.expires) {
				l.Log.Warn("partition lease expiring without renewal; stopping", "partition", p, "err", err)
				l.drop(p, cb)
			}
		}
	}

	// Partitions held beyond the fair share because nobody else took them (orphans) are
	// not counted in it; they are handed back after orphanHold.
	var owned, extra []int
	for _, p := range l.Owned() {
		if o, _ := l.ownedLease(p); !o.orphanSince.IsZero() {
			extra = append(extra, p)
			if now.Sub(o.orphanSince) > l.orphanHold() {
				l.Log.Info("handing back a partition held beyond the fair share", "partition", p)
				l.release(p, cb)
			}
			continue
		}
		owned = append(owned, p)
	}
	// Hand over surplus partitions (a replica joined), highest first.
	for len(owned) > target {
		p := owned[len(owned)-1]
		owned = owned[:len(owned)-1]
		l.release(p, cb)
	}
	take := func(p int, orphan bool) bool {
		if slices.Contains(owned, p) || slices.Contains(extra, p) || now.Before(l.cooling[p]) || l.isStopping(p) {
			return false
		}
		cur, exists := leases[p]
		if exists && cur.Owner != "" && cur.Expires.After(now) {
			return false
		}
		// An orphan is a lease left free or expired for a whole TTL: the replicas whose
		// share it is had their chance (or gave it up).
		if orphan && (!exists || cur.Expires.After(now.Add(-l.TTL))) {
			return false
		}
		next := bus.Lease{Partition: p, Owner: l.Replica, Epoch: cur.Epoch + 1, Renewed: now, Expires: now.Add(l.TTL)}
		var rev uint64
		var err error
		if exists {
			rev, err = l.KV.Update(ctx, bus.LeaseKey(p), encode(next), revs[p])
		} else {
			rev, err = l.KV.Create(ctx, bus.LeaseKey(p), encode(next))
		}
		if err != nil {
			return false // another replica was faster
		}
		o := ownedLease{epoch: next.Epoch, rev: rev, expires: next.Expires}
		if orphan {
			o.orphanSince = now
			extra = append(extra, p)
		} else {
			owned = append(owned, p)
		}
		l.setOwned(p, o)
		l.Log.Info("partition acquired", "partition", p, "epoch", next.Epoch, "beyondShare", orphan)
		cb.Acquired(ctx, p, next.Epoch)
		return true
	}
	// Take free or expired partitions, starting at an offset of our own so replicas that
	// start together rarely race for the same ones.
	start := i * l.Partitions / len(members)
	for k := 0; k < l.Partitions && len(owned) < target; k++ {
		take((start+k)%l.Partitions, false)
	}
	// Then orphans: a partition nobody holds, e.g. one its replica gave up, is run here
	// rather than wait for that replica.
	for k := 0; k < l.Partitions; k++ {
		take((start+k)%l.Partitions, true)
	}
}

func (l *Leases) orphanHold() time.Duration { return 20 * l.TTL }

func (l *Leases) heartbeat(ctx context.Context, now time.Time) {
	m := bus.Lease{Partition: -1, Owner: l.Replica, Renewed: now, Expires: now.Add(l.TTL)}
	if _, err := l.KV.Put(ctx, memberPrefix+l.Replica, encode(m)); err != nil {
		l.Log.Warn("replica heartbeat", "err", err)
	}
}

func (l *Leases) ownedLease(p int) (ownedLease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.owned[p]
	return o, ok
}

func (l *Leases) setOwned(p int, o ownedLease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.owned[p] = o
}

// drop stops the partition's work beside the loop, its lease lost or about to be.
func (l *Leases) drop(p int, cb Callbacks) { l.stop(p, false, cb) }

// release stops the partition's work beside the loop, renewing its lease meanwhile, then
// frees the lease (expired now, same epoch) so another replica takes it at once.
func (l *Leases) release(p int, cb Callbacks) { l.stop(p, true, cb) }

func (l *Leases) stop(p int, free bool, cb Callbacks) {
	l.mu.Lock()
	o, ok := l.owned[p]
	if !ok {
		l.mu.Unlock()
		return
	}
	delete(l.owned, p)
	st := &stopping{lease: o, free: free, done: make(chan struct{})}
	if l.stopping == nil {
		l.stopping = map[int]*stopping{}
	}
	l.stopping[p] = st
	wake := l.wake
	l.mu.Unlock()
	go func() {
		cb.Released(p)
		close(st.done)
		if wake != nil {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
}

func (l *Leases) isStopping(p int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.stopping[p]
	return ok
}

// tendStops frees the leases of handovers whose work stopped and renews the others', so
// no replica takes a partition while its old owner still flushes.
func (l *Leases) tendStops(ctx context.Context, now time.Time) {
	l.mu.Lock()
	stops := maps.Clone(l.stopping)
	l.mu.Unlock()
	for p, st := range stops {
		select {
		case <-st.done:
			if st.free {
				free := bus.Lease{Partition: p, Epoch: st.lease.epoch, Renewed: now, Expires: now}
				if _, err := l.KV.Update(ctx, bus.LeaseKey(p), encode(free), st.lease.rev); err != nil {
					l.Log.Warn("releasing partition lease", "partition", p, "err", err)
				}
			}
			l.mu.Lock()
			delete(l.stopping, p)
			l.mu.Unlock()
			continue
		default:
		}
		if !st.free {
			continue
		}
		next := bus.Lease{Partition: p, Owner: l.Replica, Epoch: st.lease.epoch, Renewed: now, Expires: now.Add(l.TTL)}
		rev, err := l.KV.Update(ctx, bus.LeaseKey(p), encode(next), st.lease.rev)
		switch {
		case err == nil:
			st.lease.rev, st.lease.expires = rev, next.Expires
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.Log.Warn("partition lease lost while its work stops", "partition", p, "epoch", st.lease.epoch)
			st.free = false
		}
	}
}

// releaseAll stops every partition's work and frees its lease, renewing the leases while
// the work stops, then removes the heartbeat.
func (l *Leases) releaseAll(cb Callbacks) {
	for _, p := range l.Owned() {
		l.stop(p, true, cb)
	}
	tick := time.NewTicker(max(l.TTL/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l.tendStops(ctx, l.Clock.Now())
		cancel()
		l.mu.Lock()
		left := len(l.stopping)
		l.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-l.wake:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.KV.Delete(ctx, memberPrefix+l.Replica)
}

func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
