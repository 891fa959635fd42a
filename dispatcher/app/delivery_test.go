package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/email"
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
	stop := startWith(t, srv, app.Options{})
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
	store := &inapp.Store{KV: bustest.KV(t, js, bus.BucketInbox), Partitions: parts, Keys: bustest.DataKeys(t, js, parts)}
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

// TestAFailedChannelFailsOverToTheNextThroughTheOwner: the email provider refuses the
// message, the email worker reports delivery.failed, and the partition owner issues the
// next candidate's job, which lands in the inbox.
func TestAFailedChannelFailsOverToTheNextThroughTheOwner(t *testing.T) {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	ctx := context.Background()
	var refused atomic.Int32
	sg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		w.WriteHeader(400) // the message itself is refused: no retry, no other provider
	}))
	defer sg.Close()
	cfg := bustest.KV(t, js, bus.BucketConfig)
	rec, err := bus.Decode[bus.ConfigRecord](bustest.SamplePolicyRecord(t, "baku"))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range rec.PreferencePolicy.Spec.Categories {
		if c.Category == crmv1.CategoryResponsibleGaming { // email first, then in-app
			rec.PreferencePolicy.Spec.Categories[i].Channels = []crmv1.CategoryChannel{{Channel: crmv1.ChannelEmail, Default: crmv1.OptedIn}, {Channel: crmv1.ChannelInApp, Default: crmv1.OptedIn}}
		}
	}
	records := []bus.ConfigRecord{rec,
		{Kind: "ChannelPolicy", Brand: "baku", Name: "inapp", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelInApp,
			Providers: []crmv1.Provider{{Name: "inbox", Type: crmv1.ProviderInApp}}}}},
		{Kind: "ChannelPolicy", Brand: "baku", Name: "email", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelEmail,
			Sender:    &crmv1.SenderDefaults{From: "rg@example-casino.az"},
			Providers: []crmv1.Provider{{Name: "sendgrid", Type: crmv1.ProviderSendGrid, Endpoint: sg.URL, SecretRef: &crmv1.LocalObjectReference{Name: "sg"}}}}}},
		{Kind: "Campaign", Brand: "baku", Name: "rg-soft", UID: "uid-rg", Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryResponsibleGaming, Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "limit.approaching"}},
			Steps: []crmv1.Step{{Name: "notice", Send: &crmv1.SendStep{Content: "notice"}}},
			Contents: []crmv1.Content{{Name: "notice", Messages: []crmv1.Message{
				{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Limit", Body: "Limitinizə yaxınlaşırsınız."},
				{Channel: crmv1.ChannelInApp, Locale: "az", Subject: "Limit", Body: "Limitinizə yaxınlaşırsınız."}}}}}}},
	}
	putConfig(t, cfg, "baku", records...)
	stop := startWith(t, srv, app.Options{Secrets: channel.StaticSecrets{"baku/sg": {email.SecretAPIKey: []byte("SG.key")}}})
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	for _, ev := range []struct{ typ, body string }{
		{"player.registered", `{"specversion":"1.0","id":"reg-1","source":"pam.baku","type":"player.registered","subject":"p-1","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"p-1@example.az"}}`},
		{"limit.approaching", `{"specversion":"1.0","id":"lim-1","source":"pam.baku","type":"limit.approaching","subject":"p-1","data":{"limitType":"deposit","limit":"500.00","used":"450.00","period":"week"}}`},
	} {
		if _, err := js.Publish(ctx, bus.EventSubject("baku", "p-1", ev.typ), []byte(ev.body)); err != nil {
			t.Fatal(err)
		}
	}
	store := &inapp.Store{KV: bustest.KV(t, js, bus.BucketInbox), Partitions: parts, Keys: bustest.DataKeys(t, js, parts)}
	bustest.Eventually(t, 15*time.Second, "the notice in the inbox after email failed", func() bool {
		in, _, _ := store.Get(ctx, "baku", "p-1")
		return len(in.Messages) == 1
	})
	var trail []string
	for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-1", parts), "p-1")) {
		trail = append(trail, o.Kind+":"+string(o.Channel)+":"+o.Result)
	}
	want := "decision:email:send attempt:email:failed failover:inApp:send attempt:inApp:sent"
	if strings.Join(trail, " ") != want || refused.Load() != 1 {
		t.Fatalf("outcomes %q (want %q), SendGrid asked %d times", strings.Join(trail, " "), want, refused.Load())
	}
}
