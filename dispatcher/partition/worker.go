package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Handler is the per-partition work: it opens a partition's state when the replica
// acquires it.
type Handler interface {
	Open(ctx context.Context, part int, epoch uint64) (State, error)
}

// State is one owned partition's state. The worker calls it from one goroutine.
type State interface {
	// Handle processes one event message. An error ends the worker's attempt without
	// acknowledging; the supervisor opens the partition again and the events are
	// redelivered from the acknowledged floor.
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

// PullExpiry is how long one pull request of a partition feed lasts (heartbeats every
// 2/5 of it). Short, so a pull parked on a server that died (a consumer leader killed) is
// replaced within seconds by the library instead of after the default 30 s.
const PullExpiry = 5 * time.Second

// ErrSuperseded means a newer owner opened the partition (its fence holds a higher
// epoch): this replica cannot run it any more and gives its lease up at once.
var ErrSuperseded = errors.New("partition superseded by a newer owner")

// Restart reasons, the values of croupier_partition_restarts_total{reason}.
const (
	ReasonOpen       = "open"       // opening the state failed
	ReasonConsumer   = "consumer"   // a consumer could not be made, or its feed ended with an error
	ReasonHandle     = "handle"     // processing a message failed
	ReasonFlush      = "flush"      // a persist, publish or fence check failed
	ReasonTick       = "tick"       // periodic work failed
	ReasonPump       = "pump"       // run expansion or Segment refresh failed
	ReasonAck        = "ack"        // acknowledging a batch failed
	ReasonStalled    = "stalled"    // work pending and no progress for StallAfter
	ReasonSuperseded = "superseded" // a newer owner's fence: the lease is given up
	ReasonRepeated   = "repeated"   // failing again and again: the lease is given up
	ReasonGap        = "gap"        // a delivery never reached the worker: restarted before acknowledging past it
)

// ErrDeliveryGap means a consumer delivered a message this worker never received (a
// pull abandoned when the library reset it, a slow-consumer drop, a second reader of the
// consumer): the consumer sequence of what arrived skipped. The partition's consumers
// acknowledge everything up to a message (AckAll), so acknowledging what came after the
// gap would lose the missing message for good; the attempt ends instead and the next one
// starts from the acknowledged floor, below the gap.
var ErrDeliveryGap = errors.New("a delivered message never arrived (consumer sequence gap)")

// failure is a worker error with the part of the loop it came from.
type failure struct {
	reason string
	err    error
}

func (f *failure) Error() string { return f.reason + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &failure{reason: reason, err: err}
}

// Unavailable reports whether err means NATS could not answer (no stream leader, no
// responders, a timeout, no connection) rather than something this replica did.
func Unavailable(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// errStalled cancels a worker attempt the monitor found stalled.
var errStalled = errors.New("no progress with work pending")

// Runner runs one supervised worker per owned partition; its Acquired and Released
// methods are the lease callbacks. A worker that fails is restarted from its acknowledged
// floor with backoff; one that cannot run (superseded, or failing MaxFailures times in a
// row without progress) is handed to GiveUp so the lease goes to another replica at once.
// Monitor watches every partition's consumers on the server and restarts a stalled one.
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
	// Observe, when set, is told each batch's size.
	Observe func(part int, handled int)
	// Sources are the streams each partition consumes, all handled by the same State in
	// one goroutine (default: the partition's events only).
	Sources []Source
	// GiveUp releases a partition's lease at once (Leases.GiveUp); without it a failing
	// partition is restarted for ever.
	GiveUp func(part int, reason string)
	// Restarted is told every restart and give-up with its reason.
	Restarted func(part int, reason string)
	// MaxFailures is how many failures in a row without progress make the replica give
	// the partition up (default 5).
	MaxFailures int
	// MaxBackoff bounds the wait before a restart (default 2s; it doubles from 100ms).
	MaxBackoff time.Duration
	// StallAfter is how long a partition may hold pending work without its acknowledged
	// floor moving before it counts as stalled: the monitor restarts it and Ready fails
	// (default 10s).
	StallAfter time.Duration
	// MonitorEvery is the period of the monitor's consumer checks (default 2s).
	MonitorEvery time.Duration
	// Progress, when set, is told each partition's figures at every check.
	Progress func(Progress)

	mu      sync.Mutex
	workers map[int]*worker
}

// Progress is one partition's state as the server sees it.
type Progress struct {
	Partition int
	Sources   []SourceProgress
	// Idle is how long the partition has had work pending without its acknowledged floor
	// moving (0 when nothing is pending).
	Idle time.Duration
	// Stalled is Idle >= StallAfter.
	Stalled bool
}

// SourceProgress are one consumer's figures.
type SourceProgress struct {
	What string
	// Pending are messages not yet delivered, AckPending delivered and not acknowledged.
	Pending, AckPending uint64
	// AckFloor is the stream sequence acknowledged; LastDelivery the time of the last
	// delivery (zero when none).
	AckFloor     uint64
	LastDelivery time.Time
	Err          error
}

type worker struct {
	part  int
	epoch uint64
	stop  chan struct{} // closed by released: finish, persist, acknowledge, return
	done  chan struct{}
	kill  context.CancelFunc

	mu sync.Mutex
	// cancel ends the current attempt (nil between attempts).
	cancel context.CancelCauseFunc
	// consumers of the current attempt, set once it consumes.
	consumers []jetstream.Consumer
	started   time.Time
	// floors and moved are per source: the acknowledged floor last seen and when it last
	// moved (or nothing was pending); they survive restarts.
	floors  []uint64
	moved   []time.Time
	pending []bool
	// stallRestarts counts stall restarts since the last progress.
	stallRestarts atomic.Int64
	last          Progress
	// progressed is set when an attempt acknowledged something.
	progressed atomic.Bool
	// phase is what the attempt is doing (waiting, handling, flushing, ...), for the
	// stall report.
	phase atomic.Value
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

// Name is the durable consumer's name for a partition.
func (s Source) Name(part int) string { return s.Prefix + "-" + strconv.Itoa(part) }

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
	sctx, kill := context.WithCancel(context.WithoutCancel(ctx))
	n := len(r.sources())
	w := &worker{part: part, epoch: epoch, kill: kill, stop: make(chan struct{}), done: make(chan struct{}),
		floors: make([]uint64, n), moved: make([]time.Time, n), pending: make([]bool, n)}
	now := time.Now()
	for i := range w.moved {
		w.moved[i] = now
	}
	r.workers[part] = w
	go func() {
		defer close(w.done)
		r.supervise(sctx, w)
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
		w.kill()
		<-w.done
	}
	w.kill()
}

func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// supervise runs the partition's worker until it is released, restarting it after a
// failure, or giving the partition up when it cannot run it.
func (r *Runner) supervise(ctx context.Context, w *worker) {
	maxFailures := r.MaxFailures
	if maxFailures <= 0 {
		maxFailures = 5
	}
	maxBackoff := r.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 2 * time.Second
	}
	failures := 0
	for {
		actx, cancel := context.WithCancelCause(ctx)
		w.mu.Lock()
		w.cancel = cancel
		w.mu.Unlock()
		w.progressed.Store(false)
		err := r.run(actx, w)
		cause := context.Cause(actx)
		cancel(nil)
		w.mu.Lock()
		w.cancel, w.consumers = nil, nil
		w.mu.Unlock()
		if ctx.Err() != nil || (w.stopped() && err == nil) {
			return
		}
		if w.stopped() {
			r.Log.Warn("partition worker failed while stopping", "partition", w.part, "err", err)
			return
		}
		if errors.Is(cause, errStalled) {
			err = fail(ReasonStalled, fmt.Errorf("%w (the attempt ended with: %v)", errStalled, err))
		}
		if err == nil {
			err = fail(ReasonConsumer, errors.New("every consumer feed ended"))
		}
		reason := ReasonConsumer
		var f *failure
		if errors.As(err, &f) {
			reason = f.reason
		}
		if w.progressed.Load() {
			failures = 0
		}
		failures++
		giveUp := ""
		switch {
		case errors.Is(err, ErrSuperseded):
			giveUp = ReasonSuperseded
		case failures > maxFailures && !Unavailable(err):
			// NATS itself unavailable (a stream without a leader, a timeout, no
			// connection) is no reason to hand over: another replica would meet the same.
			giveUp = ReasonRepeated
		}
		if giveUp != "" && r.GiveUp != nil {
			r.Log.Error("partition given up: its lease is released for another replica", "partition", w.part, "epoch", w.epoch,
				"reason", giveUp, "source", reason, "failures", failures, "err", err)
			if r.Restarted != nil {
				r.Restarted(w.part, giveUp)
			}
			r.GiveUp(w.part, giveUp)
			return
		}
		backoff := min(100*time.Millisecond<<min(failures-1, 16), maxBackoff)
		r.Log.Warn("partition worker failed; restarting from its acknowledged floor", "partition", w.part, "epoch", w.epoch,
			"reason", reason, "failures", failures, "backoff", backoff.String(), "err", err)
		if r.Restarted != nil {
			r.Restarted(w.part, reason)
		}
		select {
		case <-time.After(backoff):
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// consumer (re)creates the partition's durable consumer so that delivery starts right
// after the acknowledged floor: messages a dead owner (or a failed attempt) had fetched
// but not acknowledged are redelivered now, not after the ack wait.
func (r *Runner) consumer(ctx context.Context, src Source, part int) (jetstream.Consumer, error) {
	name := src.Name(part)
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
		if err := r.JS.DeleteConsumer(ctx, src.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
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

// run is one attempt: open the state, consume every source, persist and acknowledge in
// batches. It returns nil only after a requested stop drained everything; every other
// end is an error naming where it came from.
func (r *Runner) run(ctx context.Context, w *worker) error {
	batch := r.Batch
	if batch <= 0 {
		batch = 1000
	}
	tickEvery := r.TickEvery
	if tickEvery <= 0 {
		tickEvery = time.Minute
	}
	st, err := r.Handler.Open(ctx, w.part, w.epoch)
	if err != nil {
		return fail(ReasonOpen, fmt.Errorf("opening partition %d: %w", w.part, err))
	}
	defer st.Close()
	srcs := r.sources()
	msgs := make(chan sourced, batch)
	// feedErr carries the first error of a consumer feed; the attempt ends with it.
	feedErr := make(chan error, len(srcs))
	quit := make(chan struct{})
	defer close(quit)
	var draining atomic.Bool
	var feeders sync.WaitGroup
	its := make([]jetstream.MessagesContext, len(srcs))
	cons := make([]jetstream.Consumer, len(srcs))
	// Every source's consumer at once: on a cluster each (re)creation is a round trip
	// through the meta leader, and a source set up last (outcomes) would otherwise wait
	// for all the others after every restart.
	var setup errgroup.Group
	began := time.Now()
	for i, src := range srcs {
		setup.Go(func() error {
			c, err := r.consumer(ctx, src, w.part)
			if err != nil {
				return fmt.Errorf("%s consumer of partition %d: %w", src.What, w.part, err)
			}
			cons[i] = c
			return nil
		})
	}
	if err := setup.Wait(); err != nil {
		return fail(ReasonConsumer, err)
	}
	r.Log.Info("partition consuming", "partition", w.part, "epoch", w.epoch, "setup", time.Since(began).Round(time.Millisecond).String())
	for i, src := range srcs {
		c := cons[i]
		// Every delivery, redeliveries included, takes the consumer's next sequence, so
		// what reaches this worker must count up by one from what the consumer had
		// delivered when the attempt read it.
		next := c.CachedInfo().Delivered.Consumer + 1
		it, err := c.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(PullExpiry), jetstream.PullHeartbeat(PullExpiry*2/5))
		if err != nil {
			return fail(ReasonConsumer, fmt.Errorf("consuming %s of partition %d: %w", src.What, w.part, err))
		}
		its[i] = it
		defer it.Stop()
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			for {
				m, err := it.Next()
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					// The library resets and pulls again by itself; the monitor restarts the
					// partition if no progress follows.
					r.Log.Warn("partition feed missed a heartbeat", "partition", w.part, "source", src.What)
					continue
				}
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) && draining.Load() {
						return
					}
					select {
					case feedErr <- fmt.Errorf("%s of partition %d: %w", src.What, w.part, err):
					default:
					}
					return
				}
				if md, err := m.Metadata(); err != nil || md.Sequence.Consumer != next {
					// Nothing from here on is passed on, so nothing after the gap is
					// acknowledged; the restart delivers the missing message again.
					got := uint64(0)
					if err == nil {
						got = md.Sequence.Consumer
					}
					r.Log.Warn("partition feed skipped a delivery; restarting from the acknowledged floor", "partition", w.part,
						"source", src.What, "expected", next, "got", got)
					select {
					case feedErr <- fail(ReasonGap, fmt.Errorf("%s of partition %d: %w: expected consumer sequence %d, got %d", src.What, w.part, ErrDeliveryGap, next, got)):
					default:
					}
					return
				}
				next++
				select {
				case msgs <- sourced{m, i}:
				case <-quit:
					return
				}
			}
		}()
	}
	go func() { feeders.Wait(); close(msgs) }()
	w.mu.Lock()
	w.consumers, w.started = cons, time.Now()
	w.mu.Unlock()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	if err := st.Tick(ctx, time.Now()); err != nil {
		return fail(ReasonTick, err)
	}
	stopping := false
	stop := w.stop
	// beginStop stops fetching; what was already delivered still arrives on msgs and is
	// processed, persisted and acknowledged before the channel closes.
	beginStop := func() {
		stopping, stop = true, nil
		draining.Store(true)
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
		w.phase.Store("waiting for messages")
		var first sourced
		select {
		case <-pump.C:
			w.phase.Store("pumping")
			more, err := pumper.Pump(ctx)
			if err != nil {
				return fail(ReasonPump, err)
			}
			if err := st.Flush(ctx); err != nil {
				return fail(ReasonFlush, err)
			}
			if more && !stopping {
				pump.Reset(0)
			} else {
				pump.Reset(pumpEvery)
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				if stopping {
					return nil // drained after stop
				}
				return fail(ReasonConsumer, errors.New("every consumer feed ended"))
			}
			first = m
		case err := <-feedErr:
			if !stopping {
				var f *failure
				if errors.As(err, &f) {
					return err
				}
				return fail(ReasonConsumer, err)
			}
			continue
		case <-tick.C:
			w.phase.Store("ticking")
			if err := st.Tick(ctx, time.Now()); err != nil {
				return fail(ReasonTick, err)
			}
			if err := st.Flush(ctx); err != nil {
				return fail(ReasonFlush, err)
			}
			continue
		case <-stop:
			beginStop()
			continue
		case <-ctx.Done():
			return fail(ReasonConsumer, context.Cause(ctx))
		}
		w.phase.Store("handling")
		last := make([]jetstream.Msg, len(srcs))
		last[first.src] = first.Msg
		if err := st.Handle(ctx, first.Msg); err != nil {
			return fail(ReasonHandle, err)
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
					return fail(ReasonHandle, err)
				}
				last[m.src] = m.Msg
				n++
			case <-linger.C:
				break more
			case <-stop:
				beginStop()
			case <-ctx.Done():
				return fail(ReasonConsumer, context.Cause(ctx))
			}
		}
		linger.Stop()
		w.phase.Store("flushing")
		if err := st.Flush(ctx); err != nil {
			return fail(ReasonFlush, err)
		}
		w.phase.Store("acknowledging")
		// AckAll: one acknowledgement per source covers the batch. A lost one only means a
		// redelivery, which the state turns into a no-op; when stopping, it is confirmed
		// so the next owner starts after it.
		for _, m := range last {
			if m == nil {
				continue
			}
			if stopping {
				if err := m.DoubleAck(ctx); err != nil {
					r.Log.Warn("acknowledging on stop", "partition", w.part, "err", err)
				}
			} else if err := m.Ack(); err != nil {
				return fail(ReasonAck, fmt.Errorf("acknowledging partition %d: %w", w.part, err))
			}
		}
		w.progressed.Store(true)
		if r.Observe != nil {
			r.Observe(w.part, n)
		}
	}
}

type sourced struct {
	jetstream.Msg
	src int
}
