package inapp_test

import (
	"context"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func TestInAppMessagesLandInTheInbox(t *testing.T) {
	r := channeltest.New(t, crmv1.ChannelInApp)
	store := &inapp.Store{KV: bustest.KV(t, r.JS, bus.BucketInbox), Partitions: channeltest.Partitions}
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelInApp, Providers: []crmv1.Provider{
		{Name: "inbox", Type: crmv1.ProviderInApp, Options: map[string]string{"max": "3", "ttl": "720h"}}}}}
	r.Start(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderInApp: inapp.Factory(store)}, nil)
	for _, c := range []string{"welcome", "daily-spins", "cashback", "slots-race"} {
		r.Publish(t, bus.DeliveryJob{DecisionID: "d-" + c, Player: "p-1", Campaign: c, Step: "send", Locale: "az", Subject: "Salam",
			Text: "mesaj", Data: map[string]string{"category": "marketing", "deepLink": "casino://promo/" + c, "buttonText": "Bax"}})
		r.Drained(t) // one at a time, so the order is known
	}
	in, _, err := store.Get(context.Background(), "baku", "p-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Messages) != 3 || in.Messages[0].ID != "d-slots-race" || in.Messages[2].ID != "d-daily-spins" || in.Unread() != 3 {
		t.Fatalf("inbox %+v", in.Messages)
	}
	m := in.Messages[0]
	if m.DeepLink != "casino://promo/slots-race" || m.Button != "Bax" || m.Category != "marketing" || m.Expires.Sub(m.Created) != 720*time.Hour {
		t.Fatalf("message %+v", m)
	}
	if got := channeltest.Results(r.Attempts(t, "p-1")); got != "inbox:sent:1 inbox:sent:1 inbox:sent:1 inbox:sent:1" {
		t.Fatalf("attempts %s", got)
	}
	// Marking read, and an unknown id.
	if _, err := store.MarkRead(context.Background(), "baku", "p-1", "d-cashback", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MarkRead(context.Background(), "baku", "p-1", "d-nope", time.Now()); err != inapp.ErrNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	in, _, _ = store.Get(context.Background(), "baku", "p-1")
	if in.Unread() != 2 || in.Messages[1].Read == nil {
		t.Fatalf("after marking read %+v", in.Messages)
	}
	// Expired messages are dropped.
	in.Prune(time.Now().Add(721*time.Hour), 100)
	if len(in.Messages) != 0 {
		t.Fatalf("expired messages kept: %d", len(in.Messages))
	}
}
