package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// TestEventToInboxThroughTheWholeDispatcher: a limit.approaching event triggers a
// responsible-gaming notice; the partition owner decides and renders it, the in-app
// worker puts it in the player's inbox, and OUTCOMES holds the decision and the attempt.
func TestEventToInboxThroughTheWholeDispatcher(t *testing.T) {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	ctx := context.Background()
	cfg := bustest.KV(t, js, bus.BucketConfig)
	if _, err := cfg.Put(ctx, bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku-casino"), bustest.SamplePolicyRecord(t, "baku")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []bus.ConfigRecord{
		{Kind: "ChannelPolicy", Brand: "baku", Name: "inapp", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelInApp,
			Providers: []crmv1.Provider{{Name: "inbox", Type: crmv1.ProviderInApp}}}}},
		{Kind: "Campaign", Brand: "baku", Name: "rg-soft", UID: "uid-rg", Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryResponsibleGaming, Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "limit.approaching"}},
			Steps: []crmv1.Step{{Name: "notice", Send: &crmv1.SendStep{Content: "notice"}}},
			Contents: []crmv1.Content{{Name: "notice", Messages: []crmv1.Message{{Channel: crmv1.ChannelInApp, Locale: "az", Subject: "Limit",
				Body: "Depozit limitinizin {{ .Event.used }} / {{ .Event.limit }} hissəsindən istifadə etmisiniz."}}}}}}},
	} {
		kind := bus.KindCampaign
		if r.ChannelPolicy != nil {
			kind = bus.KindChannelPolicy
		}
		b, _ := bus.Encode(r)
		if _, err := cfg.Put(ctx, bus.ConfigKey("baku", kind, r.Name), b); err != nil {
			t.Fatal(err)
		}
	}
	stop := start(t, srv, parts, 100, "127.0.0.1:0")
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, ev := range []struct{ typ, body string }{
		{"player.registered", `{"specversion":"1.0","id":"reg-1","source":"pam.baku","type":"player.registered","subject":"p-1","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}}`},
		{"limit.approaching", `{"specversion":"1.0","id":"lim-1","source":"pam.baku","type":"limit.approaching","subject":"p-1","data":{"limitType":"deposit","limit":"500.00","used":"450.00","period":"week"}}`},
	} {
		if _, err := js.Publish(ctx, bus.EventSubject("baku", "p-1", ev.typ), []byte(ev.body)); err != nil {
			t.Fatal(err)
		}
	}
	store := &inapp.Store{KV: bustest.KV(t, js, bus.BucketInbox), Partitions: parts}
	var in *inapp.Inbox
	bustest.Eventually(t, 15*time.Second, "the notice in the inbox", func() bool {
		in, _, _ = store.Get(ctx, "baku", "p-1")
		return len(in.Messages) == 1
	})
	if m := in.Messages[0]; m.Text != "Depozit limitinizin 450.00 / 500.00 hissəsindən istifadə etmisiniz." || m.Category != "responsibleGaming" || m.Campaign != "rg-soft" {
		t.Fatalf("inbox message %+v", m)
	}
	var kinds []string
	bustest.Eventually(t, 5*time.Second, "decision and attempt in OUTCOMES", func() bool {
		kinds = kinds[:0]
		for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-1", parts), "p-1")) {
			kinds = append(kinds, o.Kind+":"+o.Result)
		}
		return strings.Join(kinds, " ") == "decision:send attempt:"+channel.ResultSent
	})
}
