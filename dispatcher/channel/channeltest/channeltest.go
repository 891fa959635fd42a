// Package channeltest runs a channel worker on an embedded NATS server for provider tests:
// publish jobs, read the attempts and reports they left.
package channeltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// Partitions of the test server.
const Partitions = 4

// Brand of every job.
const Brand = "baku"

type policies map[string]*bus.ChannelPolicyConfig

func (p policies) ChannelPolicy(brand string, _ crmv1.Channel) *bus.ChannelPolicyConfig {
	return p[brand]
}

// Rig is a running worker of one channel for Brand.
type Rig struct {
	JS      jetstream.JetStream
	Channel crmv1.Channel
}

// Run starts a server and a worker of cfg's channel; both stop when the test ends.
func Run(t *testing.T, cfg *bus.ChannelPolicyConfig, factories map[crmv1.ProviderType]channel.Factory, secrets channel.Secrets) *Rig {
	r := New(t, cfg.Spec.Channel)
	r.Start(t, cfg, factories, secrets)
	return r
}

// New starts a server only, for a test that publishes before the worker runs.
func New(t *testing.T, ch crmv1.Channel) *Rig {
	srv := bustest.Start(t, Partitions)
	_, js := srv.Connect(t)
	return &Rig{JS: js, Channel: ch}
}

// Start runs a worker of the rig's channel on cfg until the test ends.
func (r *Rig) Start(t *testing.T, cfg *bus.ChannelPolicyConfig, factories map[crmv1.ProviderType]channel.Factory, secrets channel.Secrets) {
	w := &channel.Worker{JS: r.JS, Channel: r.Channel, Policies: policies{Brand: cfg}, Secrets: secrets, Factories: factories,
		Links: &channel.Links{JS: r.JS}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), InFlight: 64}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// Publish puts a job on the channel's subject (its decision id as the message id).
func (r *Rig) Publish(t *testing.T, j bus.DeliveryJob) {
	t.Helper()
	j.Brand, j.Channel = Brand, r.Channel
	if j.Data == nil {
		j.Data = map[string]string{"category": "service"}
	}
	b, _ := bus.Encode(j)
	if _, err := r.JS.Publish(context.Background(), bus.DeliverySubject(string(r.Channel), Brand, bus.Partition(j.Player, Partitions), j.Player), b,
		jetstream.WithMsgID(j.DecisionID+"."+string(r.Channel))); err != nil {
		t.Fatal(err)
	}
}

// Attempts are a player's delivery attempts in OUTCOMES.
func (r *Rig) Attempts(t *testing.T, player string) []bus.Outcome {
	return bustest.Collect[bus.Outcome](t, r.JS, bus.StreamOutcomes, bus.OutcomeSubject(Brand, bus.Partition(player, Partitions), player))
}

// Events are a player's reports of type typ in EVENTS.
func (r *Rig) Events(t *testing.T, player, typ string) []bus.CloudEvent {
	return bustest.Collect[bus.CloudEvent](t, r.JS, bus.StreamEvents, bus.StoredEventSubject(Brand, bus.Partition(player, Partitions), player, typ))
}

// Drained waits until every job is acknowledged.
func (r *Rig) Drained(t *testing.T) {
	t.Helper()
	bustest.Eventually(t, 15*time.Second, "DELIVERIES empty", func() bool {
		st, _ := r.JS.Stream(context.Background(), bus.StreamDeliveries)
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

// Results lists attempts as provider:result:attempt.
func Results(oc []bus.Outcome) string {
	s := make([]string, len(oc))
	for i, o := range oc {
		s[i] = fmt.Sprintf("%s:%s:%d", o.Provider, o.Result, o.Attempt)
	}
	return strings.Join(s, " ")
}
