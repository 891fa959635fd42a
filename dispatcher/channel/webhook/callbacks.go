package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
)

// Callback types, as the casino receives them.
const (
	CallbackSent           = "sent"
	CallbackDelivered      = "delivered"
	CallbackFailed         = "failed"
	CallbackClicked        = "clicked"
	CallbackBonusActivated = "bonusActivated"
	CallbackRewardGranted  = "rewardGranted"
)

// Callback is the body posted to a brand's callback URL.
type Callback struct {
	Type       string        `json:"type"`
	Brand      string        `json:"brand"`
	Player     string        `json:"player"`
	DecisionID string        `json:"decisionId,omitempty"`
	Campaign   string        `json:"campaign,omitempty"`
	Channel    crmv1.Channel `json:"channel,omitempty"`
	Provider   string        `json:"provider,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Bonus      string        `json:"bonusId,omitempty"`
	// Grant is the reward granted (rewardGranted); Bonus is then its id.
	Grant *bus.RewardGrant `json:"grant,omitempty"`
	Time  time.Time        `json:"time"`
}

// Callbacks tell the casino about message events at the URLs of its webhook
// ChannelPolicy (spec.callbacks), signed with that policy's callbacks Secret (hmacKey).
// They follow OUTCOMES (sent attempts, delivered reports, failed decisions, clicks),
// EVENTS (bonus.activated) and REWARDS (the grants, for bonus engines that speak HTTP)
// with durable consumers; a failed post is retried with backoff
// through redelivery and dead-lettered after MaxDeliver attempts.
type Callbacks struct {
	JS       jetstream.JetStream
	Policies channel.Policies
	Secrets  channel.Secrets
	HTTP     *http.Client
	Log      *slog.Logger
	// MaxDeliver is the most posts of one callback (default 10); Backoff the first wait
	// between them (default 1s), doubled each time up to a minute.
	MaxDeliver int
	Backoff    time.Duration
	// InFlight is the most posts at once (default 64).
	InFlight int
}

// Consumer names.
const (
	CallbacksOutcomes = "callbacks-outcomes"
	CallbacksEvents   = "callbacks-events"
	CallbacksRewards  = "callbacks-rewards"
)

// Run follows both sources until ctx ends.
func (c *Callbacks) Run(ctx context.Context) error {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.InFlight <= 0 {
		c.InFlight = 64
	}
	if c.HTTP == nil {
		c.HTTP = http.DefaultClient
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	sources := []struct {
		stream, name, filter string
		parse                func(jetstream.Msg) *Callback
	}{
		{bus.StreamOutcomes, CallbacksOutcomes, bus.Root + ".outcomes.>", fromOutcome},
		{bus.StreamEvents, CallbacksEvents, bus.Root + ".ev.*.*.*." + ingest.TypeBonusActivated, fromEvent},
		{bus.StreamRewards, CallbacksRewards, bus.Root + ".rewards.>", fromGrant},
	}
	errs := make(chan error, len(sources))
	var wg sync.WaitGroup
	for _, s := range sources {
		cons, err := c.JS.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{Durable: s.name, FilterSubject: s.filter,
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxAckPending: 4 * c.InFlight,
			DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			return fmt.Errorf("the %s consumer: %w", s.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.follow(ctx, cons, s.stream, s.parse)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Callbacks) follow(ctx context.Context, cons jetstream.Consumer, stream string, parse func(jetstream.Msg) *Callback) error {
	return channel.Consume(ctx, c.Log, cons, c.InFlight, func(m jetstream.Msg) {
		if cb := parse(m); cb != nil {
			c.deliver(context.WithoutCancel(ctx), m, stream, cb)
		} else {
			_ = m.Ack()
		}
	})
}

// reasonMandatoryUndelivered is flow.ReasonMandatoryUndelivered (flow is not imported
// here): a mandatory message given up at its deadline fails like an exhausted chain.
const reasonMandatoryUndelivered = "MandatoryUndelivered"

// fromOutcome maps the outcomes the casino hears about.
func fromOutcome(m jetstream.Msg) *Callback {
	data := m.Data()
	// Most outcomes are decisions that send: skip them without decoding.
	if !bytes.Contains(data, []byte(`"result":"sent"`)) && !bytes.Contains(data, []byte(`"result":"delivered"`)) &&
		!bytes.Contains(data, []byte(`"result":"clicked"`)) && !bytes.Contains(data, []byte(`AllChannelsFailed`)) &&
		!bytes.Contains(data, []byte(reasonMandatoryUndelivered)) {
		return nil
	}
	var o bus.Outcome
	if json.Unmarshal(data, &o) != nil {
		return nil
	}
	cb := &Callback{Brand: o.Brand, Player: o.Player, DecisionID: o.DecisionID, Campaign: o.Campaign, Channel: o.Channel,
		Provider: o.Provider, Time: o.Time}
	switch {
	case o.Kind == bus.OutcomeAttempt && o.Result == channel.ResultSent:
		cb.Type = CallbackSent
	case o.Kind == bus.OutcomeReport && o.Result == bus.ReportDelivered:
		cb.Type = CallbackDelivered
	case o.Kind == bus.OutcomeReport && o.Result == bus.ReportClicked:
		cb.Type = CallbackClicked
	case o.Reason == string(route.ReasonAllChannelsFailed), o.Reason == reasonMandatoryUndelivered:
		cb.Type, cb.Reason = CallbackFailed, o.Detail
	default:
		return nil
	}
	return cb
}

// fromEvent maps bonus.activated (croupier.ev.<brand>.<part>.<player>.bonus.activated).
func fromEvent(m jetstream.Msg) *Callback {
	var ev struct {
		bus.CloudEvent
		Data struct {
			BonusID  string `json:"bonusId"`
			Campaign string `json:"campaign"`
		} `json:"data"`
	}
	if json.Unmarshal(m.Data(), &ev) != nil {
		return nil
	}
	tokens := strings.SplitN(m.Subject(), ".", 6)
	if len(tokens) < 6 {
		return nil
	}
	return &Callback{Type: CallbackBonusActivated, Brand: tokens[2], Player: tokens[4], Campaign: ev.Data.Campaign, Bonus: ev.Data.BonusID, Time: ev.Time}
}

// fromGrant maps a reward grant on REWARDS.
func fromGrant(m jetstream.Msg) *Callback {
	g, err := bus.Decode[bus.RewardGrant](m.Data())
	if err != nil || g.ID == "" {
		return nil
	}
	return &Callback{Type: CallbackRewardGranted, Brand: g.Brand, Player: g.Player, Campaign: g.Campaign, Bonus: g.ID, Grant: &g, Time: g.Granted}
}

func url(cfg *crmv1.Callbacks, typ string) string {
	switch typ {
	case CallbackSent:
		return cfg.Sent
	case CallbackDelivered:
		return cfg.Delivered
	case CallbackFailed:
		return cfg.Failed
	case CallbackClicked:
		return cfg.Clicked
	case CallbackBonusActivated:
		return cfg.BonusActivated
	case CallbackRewardGranted:
		return cfg.RewardGranted
	}
	return ""
}

// deliver posts one callback: acknowledged when the casino answers 2xx (or nobody
// listens), retried later on failure, dead-lettered after MaxDeliver posts.
func (c *Callbacks) deliver(ctx context.Context, m jetstream.Msg, stream string, cb *Callback) {
	pol := c.Policies.ChannelPolicy(cb.Brand, crmv1.ChannelWebhook)
	if pol == nil || pol.Spec.Callbacks == nil || url(pol.Spec.Callbacks, cb.Type) == "" {
		_ = m.Ack()
		return
	}
	cfg := pol.Spec.Callbacks
	err := c.post(ctx, cb, url(cfg, cb.Type), cfg.SecretRef)
	if err == nil {
		_ = m.Ack()
		return
	}
	meta, _ := m.Metadata()
	n := 1
	if meta != nil {
		n = int(meta.NumDelivered)
	}
	if n >= c.MaxDeliver {
		c.Log.Warn("callback given up", "brand", cb.Brand, "type", cb.Type, "attempts", n, "err", err)
		if derr := ingest.DeadLetterNow(ctx, c.JS, stream, m, "callback "+cb.Type+": "+err.Error(), time.Now()); derr == nil {
			_ = m.Term()
			return
		}
	}
	wait := min(c.Backoff<<(n-1), time.Minute)
	_ = m.NakWithDelay(wait)
}

func (c *Callbacks) post(ctx context.Context, cb *Callback, target string, ref *crmv1.LocalObjectReference) error {
	body, _ := json.Marshal(cb)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var key []byte
	if ref != nil && c.Secrets != nil {
		sec, err := c.Secrets.Secret(ctx, cb.Brand, ref.Name)
		if err != nil {
			return fmt.Errorf("secret %s: %v", ref.Name, err)
		}
		key = sec[ingest.SecretHMACKey]
	}
	_, err := postSigned(ctx, c.HTTP, target, key, cb.Type+"/"+cb.DecisionID+"/"+string(cb.Channel)+cb.Bonus, body)
	return err
}
