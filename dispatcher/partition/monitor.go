package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func (r *Runner) stallAfter() time.Duration {
	if r.StallAfter > 0 {
		return r.StallAfter
	}
	return 10 * time.Second
}

// Monitor checks every held partition's consumers on the server every MonitorEvery
// until ctx ends: their pending and acknowledgement-pending counts and acknowledged
// floors. A partition whose current attempt has had work pending for StallAfter without
// its floor moving is stalled: the attempt is cancelled and the supervisor restarts it
// from the floor (reason "stalled"). Progress receives every partition's figures.
func (r *Runner) Monitor(ctx context.Context) {
	every := r.MonitorEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		ws := make([]*worker, 0, len(r.workers))
		for _, w := range r.workers {
			ws = append(ws, w)
		}
		r.mu.Unlock()
		for _, w := range ws {
			cctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
			p, ok := r.check(cctx, w, time.Now())
			cancel()
			r.mu.Lock()
			held := r.workers[w.part] == w
			r.mu.Unlock()
			if ok && held && r.Progress != nil {
				r.Progress(p)
			}
		}
	}
}

// check reads a partition's consumers; false while no attempt consumes.
func (r *Runner) check(ctx context.Context, w *worker, now time.Time) (Progress, bool) {
	w.mu.Lock()
	cons, started, cancel := w.consumers, w.started, w.cancel
	w.mu.Unlock()
	if cons == nil {
		return Progress{}, false
	}
	srcs := r.sources()
	p := Progress{Partition: w.part, Sources: make([]SourceProgress, len(cons))}
	// A partition progresses while any of its sources with work pending moves its floor:
	// its idle time is the smallest among those sources (0 when nothing is pending). A
	// source starved behind a busy one is not a stall; one that stops alone shows once
	// the others are drained, and a feed that fails ends the attempt by itself.
	idle, attemptIdle := time.Duration(-1), time.Duration(-1)
	least := func(cur, d time.Duration) time.Duration {
		if cur < 0 || d < cur {
			return d
		}
		return cur
	}
	for i, c := range cons {
		sp := SourceProgress{What: srcs[i].What}
		info, err := c.Info(ctx)
		if err != nil {
			sp.Err = err
			p.Sources[i] = sp
			// Unseen is not progress: with work last seen pending, the time since the
			// floor last moved keeps counting.
			w.mu.Lock()
			moved, pending := w.moved[i], w.pending[i]
			w.mu.Unlock()
			if pending {
				idle = least(idle, now.Sub(moved))
				since := moved
				if started.After(since) {
					since = started
				}
				attemptIdle = least(attemptIdle, now.Sub(since))
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) && cancel != nil {
				cancel(fmt.Errorf("%s consumer %s was deleted under its owner", srcs[i].What, srcs[i].Name(w.part)))
			}
			continue
		}
		sp.Pending, sp.AckPending, sp.AckFloor = info.NumPending, uint64(info.NumAckPending), info.AckFloor.Stream
		if info.Delivered.Last != nil {
			sp.LastDelivery = *info.Delivered.Last
		}
		p.Sources[i] = sp
		w.mu.Lock()
		w.pending[i] = sp.Pending+sp.AckPending > 0
		if sp.Pending+sp.AckPending == 0 || sp.AckFloor != w.floors[i] {
			w.floors[i], w.moved[i] = sp.AckFloor, now
		}
		moved := w.moved[i]
		w.mu.Unlock()
		if sp.Pending+sp.AckPending > 0 {
			idle = least(idle, now.Sub(moved))
			since := moved
			if started.After(since) {
				since = started
			}
			attemptIdle = least(attemptIdle, now.Sub(since))
		}
	}
	idle, attemptIdle = max(idle, 0), max(attemptIdle, 0)
	p.Idle = idle
	p.Stalled = idle >= r.stallAfter()
	// Each stall restart in a row without progress doubles the patience with the next
	// attempt (up to 8 times): on a slow cluster an attempt that needs longer than the
	// timeout to get going must not be restarted for ever.
	if w.progressed.Load() {
		w.stallRestarts.Store(0)
	}
	patience := r.stallAfter() << min(w.stallRestarts.Load(), 3)
	if attemptIdle >= patience && cancel != nil {
		w.stallRestarts.Add(1)
		r.Log.Warn("partition stalled: work pending and no progress; restarting it", "partition", w.part,
			"idle", attemptIdle.Round(time.Millisecond).String(), "doing", w.phase.Load(), "sources", describe(p.Sources))
		cancel(errStalled)
	}
	w.mu.Lock()
	w.last = p
	w.mu.Unlock()
	return p, true
}

// Ready fails while a held partition is stalled (work pending, no progress for
// StallAfter), naming the partitions.
func (r *Runner) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var stalled []int
	for part, w := range r.workers {
		w.mu.Lock()
		if w.last.Stalled {
			stalled = append(stalled, part)
		}
		w.mu.Unlock()
	}
	if len(stalled) == 0 {
		return nil
	}
	slices.Sort(stalled)
	return fmt.Errorf("partitions %v hold pending work and made no progress for %s", stalled, r.stallAfter())
}

func describe(ss []SourceProgress) string {
	var b strings.Builder
	for _, s := range ss {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if s.Err != nil {
			fmt.Fprintf(&b, "%s: %v", s.What, s.Err)
			continue
		}
		fmt.Fprintf(&b, "%s: %d pending, %d unacknowledged", s.What, s.Pending, s.AckPending)
	}
	return b.String()
}
