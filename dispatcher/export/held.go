package export

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// LeaseKey is the croupier-leases key of the export: the replica holding it exports.
const LeaseKey = "export"

// DefaultLeaseTTL is how long the export's lease lasts without renewal: a replica that
// dies is replaced as exporter after at most that.
const DefaultLeaseTTL = 30 * time.Second

// RunHeld exports on one replica at a time, the holder of the croupier-leases key
// "export" (renewed every ttl/3), until ctx ends. Every dispatcher runs it; one exports.
//
// One exporter, not one per replica, because the export's order is its promise: each
// batch's erasure list comes before any later batch of the same export, and an erasure is
// seen by the exporter that filters the records after it (the erasure consumer hands each
// erasure to one reader). It also keeps the players table one row per changed player per
// interval. One exporter keeps up with several times the pipeline's rate
// (docs/benchmarks.md). new makes a fresh Exporter for each tenure.
func RunHeld(ctx context.Context, kv jetstream.KeyValue, replica string, ttl time.Duration, new func() *Exporter) error {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for ctx.Err() == nil {
		held, rev, epoch := acquire(ctx, kv, replica, ttl)
		if !held {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			continue
		}
		expires := time.Now().Add(ttl)
		e := new()
		e.defaults()
		e.Log.Info("exporting: this replica holds the export's lease", "epoch", epoch)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(rctx) }()
		stop := func() error {
			cancel()
			err := <-done
			e.Metrics.idle()
			return err
		}
	tenure:
		for {
			select {
			case <-ctx.Done():
				_ = stop()
				release(kv, rev, epoch)
				return ctx.Err()
			case err := <-done:
				cancel()
				e.Metrics.idle()
				release(kv, rev, epoch)
				if ctx.Err() == nil {
					return err
				}
				return ctx.Err()
			case <-tick.C:
				now := time.Now()
				next := bus.Lease{Owner: replica, Epoch: epoch, Renewed: now, Expires: now.Add(ttl)}
				r, err := kv.Update(ctx, LeaseKey, encodeLease(next), rev)
				switch {
				case err == nil:
					rev, expires = r, next.Expires
				case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound):
					e.Log.Warn("the export's lease was lost; exporting stops here")
					_ = stop()
					break tenure
				case !now.Add(ttl / 3).Before(expires):
					// NATS unreachable: stop before the lease runs out, so two never export.
					e.Log.Warn("the export's lease expires without renewal; exporting stops here", "err", err)
					_ = stop()
					break tenure
				}
			}
		}
	}
	return ctx.Err()
}

// acquire takes the export's lease if it is free or expired.
func acquire(ctx context.Context, kv jetstream.KeyValue, replica string, ttl time.Duration) (bool, uint64, uint64) {
	now := time.Now()
	cur, err := kv.Get(ctx, LeaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		next := bus.Lease{Owner: replica, Epoch: 1, Renewed: now, Expires: now.Add(ttl)}
		rev, err := kv.Create(ctx, LeaseKey, encodeLease(next))
		return err == nil, rev, next.Epoch
	case err != nil:
		return false, 0, 0
	}
	var l bus.Lease
	_ = json.Unmarshal(cur.Value(), &l)
	if l.Owner != "" && l.Expires.After(now) {
		return false, 0, 0
	}
	next := bus.Lease{Owner: replica, Epoch: l.Epoch + 1, Renewed: now, Expires: now.Add(ttl)}
	rev, err := kv.Update(ctx, LeaseKey, encodeLease(next), cur.Revision())
	return err == nil, rev, next.Epoch
}

// release hands the lease back (an empty owner), so the next replica need not wait for it
// to expire; refused if another replica took it meanwhile.
func release(kv jetstream.KeyValue, rev, epoch uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = kv.Update(ctx, LeaseKey, encodeLease(bus.Lease{Epoch: epoch, Renewed: time.Now()}), rev)
}

func encodeLease(l bus.Lease) []byte {
	b, _ := json.Marshal(&l)
	return b
}
