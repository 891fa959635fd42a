package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Handler is the per-partition work: it opens a partition's state when the replica
// acquires it.
type Handler interface {
	Open(ctx context.Context, part int, epoch uint64) (State, error)
}

// State is one owned partition's state. The worker calls it from one goroutine.
type State interface {
	// Handle processes one event message. An error stops the partition without
	// acknowledging (the next owner replays).
	Handle(ctx context.Context, msg jetstream.Msg) error
	// Flush persists everything Handle changed; the worker acknowledges the batch after
	// it succeeds.
	Flush(ctx context.Context) error
	// Tick runs periodic work (RFM, inactivity) between batches.
	Tick(ctx context.Context, now time.Time) error
	// Close drops the state.
	Close()
}

// Pumper is a State with work of its own between inputs (run expansion, Segment
// refresh). The worker calls Pump every PumpEvery, and again at once while it reports
// more, each time followed by Flush.
type Pumper interface {
	Pump(ctx context.Context) (more bool, err error)
}

// Runner runs one consumer worker per owned partition; its Acquired and Released methods
// are the lease callbacks.
type Runner struct {
	JS      jetstream.JetStream
	Handler Handler
	Log     *slog.Logger
	// Batch is the most messages processed between two persists (default 1000).
	Batch int
	// TickEvery is the period of State.Tick (default one minute).
	TickEvery time.Duration
	// Linger is how long a worker waits for more events after the first of a batch, so a
	// persist and an acknowledgement cover many events (default 5ms).
	Linger time.Duration
	// PumpEvery is the period of Pumper.Pump (default 200ms).
	PumpEvery time.Duration
	// Observe, when set, is told each batch's size and the partition's pending count.
	Observe func(part int, handled int, pending uint64)
	// Sources are the streams each partition consumes, all handled by the same State in
	// one goroutine (default: the partition's events only).
	Sources []Source

	mu      sync.Mutex
	workers map[int]*worker
}

type worker struct {
	part   int
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

// ConsumerName is the durable consumer of a partition's events.
func ConsumerName(part int) string { return "events-" + strconv.Itoa(part) }

// Source is a stream a partition's owner consumes: one durable consumer per partition.
type Source struct {
	Stream string
	// Prefix names the durable consumer: <prefix>-<part>.
	Prefix string
	Filter func(part int) string
	What   string
}

// Events are the partition's player events.
var Events = Source{Stream: bus.StreamEvents, Prefix: "events", Filter: bus.StoredEventFilter, What: "events"}

// Intents are the partition's intents (and the schedules that fire into them).
var Intents = Source{Stream: bus.StreamIntents, Prefix: "intents", Filter: bus.IntentFilter, What: "intents"}

// Runs are every scheduled run: each partition's owner expands its own members.
var Runs = Source{Stream: bus.StreamRuns, Prefix: "runs", Filter: func(int) string { return bus.RunsFilter }, What: "runs"}

// Outcomes are the partition's decisions, attempts and reports, counted into stats.
var Outcomes = Source{Stream: bus.StreamOutcomes, Prefix: "outcomes", Filter: bus.PartitionOutcomesFilter, What: "outcomes"}

func (r *Runner) sources() []Source {
	if len(r.Sources) == 0 {
		return []Source{Events}
	}
	return r.Sources
}

// Callbacks returns the lease callbacks.
func (r *Runner) Callbacks() Callbacks {
	return Callbacks{Acquired: r.acquired, Released: r.released}
}

func (r *Runner) acquired(ctx context.Context, part int, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.workers == nil {
		r.workers = map[int]*worker{}
	}
	if _, ok := r.workers[part]; ok {
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &worker{part: part, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	r.workers[part] = w
	go func() {
		defer close(w.done)
		if err := r.run(wctx, w, epoch); err != nil {
			r.Log.Error("partition worker stopped", "partition", part, "err", err)
		}
	}()
}

// released stops the partition's worker gracefully: it stops fetching, finishes the
// messages it holds, persists, acknowledges and returns.
func (r *Runner) released(part int) {
	r.mu.Lock()
	w, ok := r.workers[part]
	delete(r.workers, part)
	r.mu.Unlock()
	if !ok {
		return
	}
	close(w.stop)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// consumer (re)creates the partition's durable consumer so that delivery starts right
// after the acknowledged floor: messages a dead owner had fetched but not acknowledged are
// redelivered now, not after the ack wait.
func (r *Runner) consumer(ctx context.Context, src Source, part int) (jetstream.Consumer, error) {
	name := src.Prefix + "-" + strconv.Itoa(part)
	cfg := jetstream.ConsumerConfig{
		Durable: name, FilterSubject: src.Filter(part),
		AckPolicy: jetstream.AckAllPolicy, AckWait: time.Minute, MaxAckPending: 20000,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxDeliver: -1,
		Description: src.What + " of partition " + strconv.Itoa(part) + " for its lease holder",
	}
	if c, err := r.JS.Consumer(ctx, src.Stream, name); err == nil {
		info := c.CachedInfo()
		if info.NumAckPending == 0 && info.NumRedelivered == 0 {
			return c, nil
		}
		if err := r.JS.DeleteConsumer(ctx, src.Stream, name); err != nil {
			return nil, err
		}
		if info.AckFloor.Stream > 0 {
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = info.AckFloor.Stream + 1
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return r.JS.CreateOrUpdateConsumer(ctx, src.Stream, cfg)
}

func (r *Runner) run(ctx context.Context, w *worker, epoch uint64) error {
	batch := r.Batch
	if batch <= 0 {
		batch = 1000
	}
	tickEvery := r.TickEvery
	if tickEvery <= 0 {
		tickEvery = time.Minute
	}
	st, err := r.Handler.Open(ctx, w.part, epoch)
	if err != nil {
		return fmt.Errorf("opening partition %d: %w", w.part, err)
	}
	defer st.Close()
	srcs := r.sources()
	msgs := make(chan sourced, batch)
	quit := make(chan struct{})
	defer close(quit)
	var feeders sync.WaitGroup
	its := make([]jetstream.MessagesContext, len(srcs))
	for i, src := range srcs {
		cons, err := r.consumer(ctx, src, w.part)
		if err != nil {
			return fmt.Errorf("%s consumer of partition %d: %w", src.What, w.part, err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(batch))
		if err != nil {
			return err
		}
		its[i] = it
		defer it.Stop()
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			for {
				m, err := it.Next()
				if err != nil {
					return
				}
				select {
				case msgs <- sourced{m, i}:
				case <-quit:
					return
				}
			}
		}()
	}
	go func() { feeders.Wait(); close(msgs) }()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	if err := st.Tick(ctx, time.Now()); err != nil {
		return err
	}
	stopping := false
	stop := w.stop
	// beginStop stops fetching; what was already delivered still arrives on msgs and is
	// processed, persisted and acknowledged before the channel closes.
	beginStop := func() {
		stopping, stop = true, nil
		for _, it := range its {
			it.Drain()
		}
	}
	lingerFor := r.Linger
	if lingerFor <= 0 {
		lingerFor = 5 * time.Millisecond
	}
	linger := time.NewTimer(lingerFor)
	linger.Stop()
	pumper, _ := st.(Pumper)
	pumpEvery := r.PumpEvery
	if pumpEvery <= 0 {
		pumpEvery = 200 * time.Millisecond
	}
	pump := time.NewTimer(pumpEvery)
	defer pump.Stop()
	if pumper == nil {
		pump.Stop()
	}
	for {
		var first sourced
		select {
		case <-pump.C:
			more, err := pumper.Pump(ctx)
			if err != nil {
				return err
			}
			if err := st.Flush(ctx); err != nil {
				return err
			}
			if more && !stopping {
				pump.Reset(0)
			} else {
				pump.Reset(pumpEvery)
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				return nil // drained after stop, or the connection closed
			}
			first = m
		case <-tick.C:
			if err := st.Tick(ctx, time.Now()); err != nil {
				return err
			}
			if err := st.Flush(ctx); err != nil {
				return err
			}
			continue
		case <-stop:
			beginStop()
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		last := make([]jetstream.Msg, len(srcs))
		last[first.src] = first.Msg
		if err := st.Handle(ctx, first.Msg); err != nil {
			return err
		}
		n := 1
		linger.Reset(lingerFor)
	more:
		for n < batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				if err := st.Handle(ctx, m.Msg); err != nil {
					return err
				}
				last[m.src] = m.Msg
				n++
			case <-linger.C:
				break more
			case <-stop:
				beginStop()
			}
		}
		linger.Stop()
		if err := st.Flush(ctx); err != nil {
			return err
		}
		// AckAll: one acknowledgement per source covers the batch. A lost one only means a
		// redelivery, which the state turns into a no-op; when stopping, it is confirmed
		// so the next owner starts after it.
		var pending uint64
		for _, m := range last {
			if m == nil {
				continue
			}
			if stopping {
				if err := m.DoubleAck(ctx); err != nil {
					r.Log.Warn("acknowledging on stop", "partition", w.part, "err", err)
				}
			} else if err := m.Ack(); err != nil {
				return fmt.Errorf("acknowledging partition %d: %w", w.part, err)
			}
			if md, err := m.Metadata(); err == nil {
				pending += md.NumPending
			}
		}
		if r.Observe != nil {
			r.Observe(w.part, n, pending)
		}
	}
}

type sourced struct {
	jetstream.Msg
	src int
}
