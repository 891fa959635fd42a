package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/money"
)

// Policies finds a brand's compiled ChannelPolicy for a channel (nil when it has none).
type Policies interface {
	ChannelPolicy(brand string, ch crmv1.Channel) *bus.ChannelPolicyConfig
}

// Secrets reads a Secret of a brand (its namespace) by name.
type Secrets interface {
	Secret(ctx context.Context, brand, name string) (map[string][]byte, error)
}

// Results of a delivery attempt in OUTCOMES.
const (
	ResultSent     = "sent"
	ResultRetry    = "retry"
	ResultFailover = "failover"
	ResultFailed   = "failed"
)

// Retry defaults (ChannelPolicy spec.retry).
const (
	DefaultMaxAttempts    = 3
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultTimeout        = 10 * time.Second
	// DefaultAckWait is the delivery consumer's ack wait.
	DefaultAckWait = 2 * time.Minute
)

// ConsumerName is the durable consumer of a channel's delivery jobs, shared by every
// dispatcher replica (DELIVERIES is a work queue).
func ConsumerName(ch crmv1.Channel) string { return "deliver-" + string(ch) }

// Worker delivers one channel's jobs.
type Worker struct {
	JS        jetstream.JetStream
	Channel   crmv1.Channel
	Policies  Policies
	Secrets   Secrets
	Factories map[crmv1.ProviderType]Factory
	HTTP      *http.Client
	Log       *slog.Logger
	Clock     clock.Func
	// InFlight is the most jobs sent at once (default 512).
	InFlight int
	// AckWait is how long a job a replica took stays its own without news (default 2m):
	// after a crash, its jobs in flight go to another replica (or the restarted one) this
	// much later. Each attempt tells the server the job is in progress, so it must exceed
	// the longest provider timeout.
	AckWait time.Duration
	// Links, when set, shortens links and adds open pixels where the policy asks.
	Links *Links
	// Observe, when set, is told each attempt's provider, result and duration.
	Observe func(ch crmv1.Channel, provider, result string, took time.Duration)
	// Keys opens the jobs the owners sealed with the players' data keys.
	Keys *datakey.Reader

	mu       sync.Mutex
	sets     map[string]*providerSet
	limiters map[string]*rate.Limiter
}

type providerSet struct {
	cfg       *bus.ChannelPolicyConfig
	providers []*provider
	built     time.Time
	// broken sets (a Secret missing, say) are built again after rebuildBroken.
	broken bool
}

const rebuildBroken = 30 * time.Second

type provider struct {
	name    string
	send    Provider
	err     *Error // why it could not be built
	limiter *rate.Limiter
	cost    bus.MicroAmount
	timeout time.Duration
}

// Run consumes the channel's jobs until ctx ends, then lets the jobs in flight finish
// (a job waiting for a retry is handed back for another replica).
func (w *Worker) Run(ctx context.Context) error {
	if w.InFlight <= 0 {
		w.InFlight = 512
	}
	if w.AckWait <= 0 {
		w.AckWait = DefaultAckWait
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.HTTP == nil {
		w.HTTP = http.DefaultClient
	}
	cons, err := w.JS.CreateOrUpdateConsumer(ctx, bus.StreamDeliveries, jetstream.ConsumerConfig{
		Durable: ConsumerName(w.Channel), FilterSubject: bus.DeliveryFilter(string(w.Channel)),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.AckWait, MaxAckPending: 2 * w.InFlight,
	})
	if err != nil {
		return fmt.Errorf("the %s delivery consumer: %w", w.Channel, err)
	}
	return Consume(ctx, w.Log, cons, w.InFlight, func(m jetstream.Msg) { w.handle(ctx, m) })
}

// Consume pulls from cons until ctx ends and runs handle on up to inFlight messages at
// once; it returns when every handle started has returned. A feed that fails (the
// consumer's leader moved, the connection was replaced) is logged and pulled again after
// a backoff: a channel never stops delivering while the process runs. A missed heartbeat
// is only logged: the library pulls again by itself.
func Consume(ctx context.Context, log *slog.Logger, cons jetstream.Consumer, inFlight int, handle func(jetstream.Msg)) error {
	if log == nil {
		log = slog.Default()
	}
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	name := cons.CachedInfo().Name
	for failures := 0; ; failures++ {
		err := consumeOnce(ctx, log, cons, slots, &wg, handle)
		if ctx.Err() != nil {
			return nil
		}
		backoff := min(100*time.Millisecond<<min(failures, 16), 2*time.Second)
		log.Warn("delivery feed failed; pulling again", "consumer", name, "backoff", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if info, ierr := cons.Info(ctx); ierr == nil && info.NumAckPending == 0 {
			failures = 0
		}
	}
}

func consumeOnce(ctx context.Context, log *slog.Logger, cons jetstream.Consumer, slots chan struct{}, wg *sync.WaitGroup, handle func(jetstream.Msg)) error {
	// Short pulls: one parked on a server that died is replaced within seconds.
	it, err := cons.Messages(jetstream.PullMaxMessages(cap(slots)), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		it.Stop()
	}()
	defer close(stopped)
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			log.Warn("delivery feed missed a heartbeat; the library pulls again", "consumer", cons.CachedInfo().Name)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			handle(m)
		}()
	}
}

// handle delivers one job and acknowledges it once its outcomes and reports are stored.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg) {
	// Sends started before a stop finish; only waits between retries end early.
	sendCtx := context.WithoutCancel(ctx)
	var job bus.DeliveryJob
	if err := json.Unmarshal(m.Data(), &job); err != nil || job.DecisionID == "" || job.Brand == "" || job.Player == "" {
		reason := "not a delivery job"
		if err != nil {
			reason += ": " + err.Error()
		}
		if err := ingest.DeadLetterNow(sendCtx, w.JS, bus.StreamDeliveries, m, reason, w.Clock.Now()); err != nil {
			w.Log.Error("dead-lettering a delivery job", "channel", w.Channel, "err", err)
			return
		}
		_ = m.Term()
		return
	}
	if len(job.Sealed) > 0 {
		err := errors.New("the job is sealed and the worker has no data keys")
		if w.Keys != nil {
			err = job.Unseal(func(brand, player string, sealed []byte) ([]byte, error) {
				return w.Keys.Open(sendCtx, brand, player, sealed)
			})
		}
		if errors.Is(err, datakey.ErrErased) {
			// The player was erased after the job was issued: nothing is sent.
			w.Log.Info("dropped the job of an erased player", "channel", w.Channel, "brand", job.Brand, "decision", job.DecisionID)
			_ = m.Term()
			return
		}
		if err != nil {
			w.Log.Error("opening a delivery job", "channel", w.Channel, "brand", job.Brand, "decision", job.DecisionID, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	d := &delivery{w: w, job: &job, msg: m}
	run := d.run
	if sent, err := d.sentBefore(sendCtx); err != nil {
		w.Log.Error("checking a redelivered job", "channel", w.Channel, "decision", job.DecisionID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	} else if sent != nil {
		// Sent before a crash or a lost acknowledgement: not sent again; its cost report
		// is repeated (the message id drops it if it was stored).
		run = func(_, sendCtx context.Context) error {
			if c := sent.ProviderCost; c != nil && !job.Test {
				d.report(ingest.TypeCostSettled, map[string]string{"decisionId": job.DecisionID, "amount": money.FormatMicros(c.Micros), "currency": c.Currency})
			}
			return d.wait(sendCtx)
		}
	}
	if err := run(ctx, sendCtx); err != nil {
		if ctx.Err() != nil {
			_ = m.Nak() // stopping: another replica takes it
			return
		}
		w.Log.Error("recording a delivery", "channel", w.Channel, "brand", job.Brand, "decision", job.DecisionID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	// A lost acknowledgement only means a redelivery, which sentBefore turns into a no-op.
	if err := m.Ack(); err != nil {
		w.Log.Warn("acknowledging a delivery job", "channel", w.Channel, "err", err)
	}
}

type delivery struct {
	w       *Worker
	job     *bus.DeliveryJob
	msg     jetstream.Msg
	pending []jetstream.PubAckFuture
	err     error
}

func (d *delivery) run(ctx, sendCtx context.Context) error {
	w, job := d.w, d.job
	cfg := w.Policies.ChannelPolicy(job.Brand, w.Channel)
	if cfg == nil {
		d.outcome(ResultFailed, "", 0, "no ChannelPolicy for "+string(w.Channel), nil, "")
		d.report(ingest.TypeDeliveryFailed, map[string]string{"decisionId": job.DecisionID, "channel": string(w.Channel), "reason": "no ChannelPolicy"})
		return d.wait(sendCtx)
	}
	if err := w.Links.Rewrite(sendCtx, job, w.Channel, cfg.Spec.Links); err != nil {
		return err
	}
	set := w.providersFor(sendCtx, job.Brand, cfg)
	maxAttempts, initial, maxBackoff := retryPolicy(cfg.Spec.Retry)
	msg := &Message{Job: job, IdempotencyKey: job.DecisionID + "." + string(w.Channel)}
	if cfg.Spec.Sender != nil {
		msg.Sender = *cfg.Spec.Sender
	}
	var last *Error
providers:
	for pi, p := range set.providers {
		if p.err != nil {
			last = p.err
			d.outcome(ResultFailover, p.name, 0, p.err.Error(), nil, "")
			continue
		}
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			if err := p.limiter.Wait(ctx); err != nil {
				return err
			}
			_ = d.msg.InProgress() // the ack wait restarts with each attempt
			actx, cancel := context.WithTimeout(sendCtx, p.timeout)
			start := time.Now()
			r, err := p.send.Send(actx, msg)
			cancel()
			took := time.Since(start)
			if err == nil {
				cost := p.cost
				if r.Units > 1 {
					cost.Micros *= int64(r.Units)
				}
				d.outcome(ResultSent, p.name, attempt, "", &cost, r.ProviderID)
				if r.Track && r.ProviderID != "" && bus.ValidToken(r.ProviderID) {
					raw, _ := json.Marshal(bus.Link{Brand: job.Brand, Player: job.Player, Decision: job.DecisionID, Campaign: job.Campaign, Channel: w.Channel})
					msg := nats.NewMsg("$KV." + bus.BucketLinks + "." + TrackKey(w.Channel, r.ProviderID))
					msg.Data = raw
					d.publish(msg, "")
				}
				if w.Observe != nil {
					w.Observe(w.Channel, p.name, ResultSent, took)
				}
				if cost.Micros > 0 && !job.Test {
					d.report(ingest.TypeCostSettled, map[string]string{"decisionId": job.DecisionID,
						"amount": money.FormatMicros(cost.Micros), "currency": cost.Currency})
				}
				return d.wait(sendCtx)
			}
			last = AsError(err)
			if w.Observe != nil {
				w.Observe(w.Channel, p.name, last.Kind.String(), took)
			}
			switch {
			case last.Kind == Rejected:
				d.outcome(ResultFailed, p.name, attempt, last.Error(), nil, "")
				break providers
			case last.Kind == ProviderFailed || attempt == maxAttempts || last.RetryAfter > maxBackoff:
				if last.Kind == ProviderFailed {
					w.markBroken(set) // rotated credentials: build again soon
				}
				if pi < len(set.providers)-1 {
					d.outcome(ResultFailover, p.name, attempt, last.Error(), nil, "")
				} else {
					d.outcome(ResultFailed, p.name, attempt, last.Error(), nil, "")
				}
				continue providers
			}
			d.outcome(ResultRetry, p.name, attempt, last.Error(), nil, "")
			wait := max(backoff(attempt, initial, maxBackoff), last.RetryAfter)
			_ = d.msg.InProgress()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	reason := "no provider"
	if last != nil {
		reason = last.Error()
		if last.TokenInvalid {
			d.report(ingest.TypeTokenInvalid, map[string]string{"channel": string(w.Channel), "token": job.To})
		}
	}
	d.report(ingest.TypeDeliveryFailed, map[string]string{"decisionId": job.DecisionID, "channel": string(w.Channel), "reason": reason})
	return d.wait(sendCtx)
}

// backoff is the wait before retry n (1-based): the initial backoff doubled per retry,
// capped, with jitter over its upper half.
func backoff(n int, initial, maxBackoff time.Duration) time.Duration {
	b := initial << (n - 1)
	if b > maxBackoff || b <= 0 {
		b = maxBackoff
	}
	return b/2 + rand.N(b/2+1)
}

func retryPolicy(r *crmv1.RetryPolicy) (attempts int, initial, maxBackoff time.Duration) {
	attempts, initial, maxBackoff = DefaultMaxAttempts, DefaultInitialBackoff, DefaultMaxBackoff
	if r == nil {
		return
	}
	if r.MaxAttempts > 0 {
		attempts = int(r.MaxAttempts)
	}
	if r.InitialBackoff != nil && r.InitialBackoff.Duration > 0 {
		initial = r.InitialBackoff.Duration
	}
	if r.MaxBackoff != nil && r.MaxBackoff.Duration > 0 {
		maxBackoff = r.MaxBackoff.Duration
	}
	return
}

// outcome records an attempt in OUTCOMES: no body, no address.
func (d *delivery) outcome(result, prov string, attempt int, detail string, cost *bus.MicroAmount, providerID string) {
	j := d.job
	o := bus.Outcome{Time: d.w.Clock.Now().UTC(), DecisionID: j.DecisionID, Brand: j.Brand, Player: j.Player, Campaign: j.Campaign,
		Step: j.Step, Kind: bus.OutcomeAttempt, Category: j.Data["category"], Result: result, Reason: result, Detail: detail,
		Channel: d.w.Channel, Provider: prov, TemplateID: j.TemplateID, Locale: j.Locale, ContentHash: j.ContentHash,
		Attempt: attempt, ProviderID: providerID, Test: j.Test}
	if cost != nil && cost.Micros > 0 {
		o.ProviderCost = cost
	}
	b, _ := bus.Encode(o)
	msg := nats.NewMsg(d.outcomeSubject())
	msg.Data = b
	d.publish(msg, fmt.Sprintf("%s.%s.%s.%s.%d%s", j.DecisionID, d.w.Channel, prov, result, attempt, roundSuffix(j.Round)))
}

func (d *delivery) outcomeSubject() string {
	return bus.Root + ".outcomes." + d.job.Brand + "." + partOf(d.msg.Subject()) + "." + d.job.Player
}

// sentBefore returns the sent attempt of a redelivered job, if it has one, from the
// player's outcomes since the job was stored.
func (d *delivery) sentBefore(ctx context.Context) (*bus.Outcome, error) {
	meta, err := d.msg.Metadata()
	if err != nil || meta.NumDelivered <= 1 {
		return nil, nil
	}
	start := meta.Timestamp
	c, err := d.w.JS.OrderedConsumer(ctx, bus.StreamOutcomes, jetstream.OrderedConsumerConfig{FilterSubjects: []string{d.outcomeSubject()},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		InactiveThreshold: 10 * time.Second}) // gone soon after: a crash redelivers hundreds of jobs
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	for left := int(info.NumPending); left > 0; {
		batch, err := c.Fetch(min(left, 256), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var o bus.Outcome
			if json.Unmarshal(m.Data(), &o) == nil && o.DecisionID == d.job.DecisionID && o.Channel == d.w.Channel && o.Result == ResultSent {
				return &o, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		left -= n
	}
	return nil, nil
}

// report publishes an event for the player's partition owner.
func (d *delivery) report(typ string, data map[string]string) {
	j := d.job
	raw, _ := json.Marshal(data)
	id := typ + "/" + j.DecisionID + "." + string(d.w.Channel) + roundSuffix(j.Round)
	ev := bus.CloudEvent{SpecVersion: "1.0", ID: id, Source: ingest.SourceCroupier, Type: typ, Subject: j.Player,
		Time: d.w.Clock.Now().UTC(), Data: raw}
	b, _ := json.Marshal(ev)
	msg := nats.NewMsg(bus.EventSubject(j.Brand, j.Player, typ))
	msg.Data = b
	d.publish(msg, id)
}

// roundSuffix tells the records of a mandatory chain's later rounds from the first's.
func roundSuffix(round int) string {
	if round == 0 {
		return ""
	}
	return ".r" + strconv.Itoa(round)
}

func (d *delivery) publish(msg *nats.Msg, id string) {
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(30 * time.Second)}
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	f, err := d.w.JS.PublishMsgAsync(msg, opts...)
	if err != nil {
		d.err = err
		return
	}
	d.pending = append(d.pending, f)
}

// wait returns once every outcome and report of the delivery is stored.
func (d *delivery) wait(ctx context.Context) error {
	if d.err != nil {
		return d.err
	}
	return awaitAll(ctx, d.pending)
}

// awaitAll waits for every asynchronous publish to be stored.
func awaitAll(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// partOf is the partition token of croupier.deliveries.<channel>.<brand>.<part>.<player>.
func partOf(subject string) string {
	tokens := strings.SplitN(subject, ".", 7)
	if len(tokens) < 6 {
		return "0"
	}
	return tokens[4]
}

// providersFor returns the brand's providers for the channel, built again when its
// ChannelPolicy changed. Rate limiters outlive a rebuild, so a change never resets pacing.
func (w *Worker) providersFor(ctx context.Context, brand string, cfg *bus.ChannelPolicyConfig) *providerSet {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sets == nil {
		w.sets, w.limiters = map[string]*providerSet{}, map[string]*rate.Limiter{}
	}
	if s := w.sets[brand]; s != nil && s.cfg == cfg && (!s.broken || time.Since(s.built) < rebuildBroken) {
		return s
	}
	if old := w.sets[brand]; old != nil {
		for _, p := range old.providers {
			if c, ok := p.send.(Closer); ok {
				_ = c.Close()
			}
		}
	}
	set := &providerSet{cfg: cfg, built: time.Now()}
	for _, pr := range cfg.Spec.Providers {
		p := &provider{name: pr.Name, cost: cfg.ProviderCosts[pr.Name], timeout: DefaultTimeout}
		if pr.Timeout != nil && pr.Timeout.Duration > 0 {
			p.timeout = pr.Timeout.Duration
		}
		key := brand + "/" + string(w.Channel) + "/" + pr.Name
		lim := w.limiters[key]
		if lim == nil {
			lim = rate.NewLimiter(rate.Inf, 1)
			w.limiters[key] = lim
		}
		if rl := pr.RateLimit; rl != nil && rl.PerSecond > 0 {
			burst := rl.Burst
			if burst <= 0 {
				burst = rl.PerSecond
			}
			lim.SetLimit(rate.Limit(rl.PerSecond))
			lim.SetBurst(int(burst))
		} else {
			lim.SetLimit(rate.Inf)
		}
		p.limiter = lim
		p.send, p.err = w.build(ctx, brand, cfg, pr, p.timeout)
		set.broken = set.broken || p.err != nil
		set.providers = append(set.providers, p)
	}
	w.sets[brand] = set
	return set
}

func (w *Worker) markBroken(set *providerSet) {
	w.mu.Lock()
	set.broken = true
	w.mu.Unlock()
}

func (w *Worker) build(ctx context.Context, brand string, cfg *bus.ChannelPolicyConfig, pr crmv1.Provider, timeout time.Duration) (Provider, *Error) {
	f := w.Factories[pr.Type]
	if f == nil {
		return nil, Errorf(ProviderFailed, "provider type %s is not built into this dispatcher", pr.Type)
	}
	c := Config{Brand: brand, Channel: w.Channel, Provider: pr, HTTP: w.HTTP, Timeout: timeout}
	if cfg.Spec.Sender != nil {
		c.Sender = *cfg.Spec.Sender
	}
	if pr.SecretRef != nil {
		if w.Secrets == nil {
			return nil, Errorf(ProviderFailed, "secret %s: no Kubernetes access to read it", pr.SecretRef.Name)
		}
		data, err := w.Secrets.Secret(ctx, brand, pr.SecretRef.Name)
		if err != nil {
			// The error names the Secret, never its content.
			return nil, Errorf(ProviderFailed, "secret %s: %v", pr.SecretRef.Name, err)
		}
		c.Secret = data
	}
	p, err := f(c)
	if err != nil {
		return nil, Errorf(ProviderFailed, "provider %s: %v", pr.Name, err)
	}
	return p, nil
}

// SendStaff sends a message that is not to a player (a scheduled report to staff) through
// the brand's providers of the worker's channel, with the policy's retries, backoff and
// failover. Nothing is written to OUTCOMES and nothing is counted: staff are not players.
// It returns the provider that accepted the message, or the last refusal.
func (w *Worker) SendStaff(ctx context.Context, brand string, m *Message) (string, error) {
	cfg := w.Policies.ChannelPolicy(brand, w.Channel)
	if cfg == nil {
		return "", Errorf(ProviderFailed, "no %s ChannelPolicy is published in %s", w.Channel, brand)
	}
	if cfg.Spec.Sender != nil {
		m.Sender = *cfg.Spec.Sender
	}
	set := w.providersFor(ctx, brand, cfg)
	attempts, initial, maxBackoff := retryPolicy(cfg.Spec.Retry)
	var last *Error
	for _, p := range set.providers {
		if p.err != nil {
			last = p.err
			continue
		}
		for attempt := 1; attempt <= attempts; attempt++ {
			if err := p.limiter.Wait(ctx); err != nil {
				return "", err
			}
			actx, cancel := context.WithTimeout(ctx, p.timeout)
			_, err := p.send.Send(actx, m)
			cancel()
			if err == nil {
				return p.name, nil
			}
			last = AsError(err)
			if last.Kind == Rejected {
				return "", last
			}
			if last.Kind == ProviderFailed || attempt == attempts || last.RetryAfter > maxBackoff {
				if last.Kind == ProviderFailed {
					w.markBroken(set)
				}
				break
			}
			select {
			case <-time.After(max(backoff(attempt, initial, maxBackoff), last.RetryAfter)):
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}
	if last == nil {
		return "", Errorf(ProviderFailed, "no provider")
	}
	return "", last
}
