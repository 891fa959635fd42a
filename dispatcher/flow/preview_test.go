package flow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// A preview asks both dispatchers (one partition each) over NATS request-reply and sums
// their dry runs: the audience, what would be sent on which channel and what routing
// would suppress and why; nothing is sent, decided or recorded.
func TestPreviewAcrossTwoDispatchers(t *testing.T) {
	srv := bustest.Start(t, 2)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "vip-notice", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Audience: &crmv1.Audience{Rule: `player.country == "AZ"`},
		Trigger:  crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}},
		Steps:    []crmv1.Step{{Name: "tell", Send: &crmv1.SendStep{Content: "tell", Channels: []crmv1.Channel{crmv1.ChannelSMS}}}},
		Contents: []crmv1.Content{{Name: "tell", Messages: []crmv1.Message{
			{Channel: crmv1.ChannelSMS, Locale: "az", Body: "Salam"}, {Channel: crmv1.ChannelSMS, Locale: "ru", Body: "Привет"}}}}})
	noon := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) // 12:00 in Baku
	for part, replica := range []string{"a", "b"} {
		clk := &fakeClock{}
		clk.set(noon)
		s := newStack(t, srv, replica, clk)
		cb := s.runner.Callbacks()
		cb.Acquired(context.Background(), part, 1)
		t.Cleanup(func() { cb.Released(part) })
		ncs := make(chan *nats.Conn, 1)
		nc, _ := srv.Connect(t)
		ncs <- nc
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cnc, _ := srv.Connect(t)
		go func() { _ = flow.ServePreviews(ctx, <-ncs, s.owner) }()
		go func() { _ = flow.ServeCounts(ctx, cnc, s.owner) }()
	}
	// Six Azerbaijani players (two without a phone: no SMS) and two from elsewhere.
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("p-v%d", i)
		ids = append(ids, id)
		country := "AZ"
		if i >= 6 {
			country = "TR"
		}
		// Reachable players 1 and 5 read Russian, 4 Azerbaijani, 2 English (no English
		// message: the brand's default language, az).
		lang := map[int]string{1: "ru", 2: "en", 5: "ru"}[i]
		if lang == "" {
			lang = "az"
		}
		data := map[string]any{"country": country, "language": lang, "timeZone": "Asia/Baku", "currency": "AZN"}
		if i%3 != 0 {
			data["phone"] = fmt.Sprintf("+99450000%04d", i)
		}
		publishEvent(t, js, id, "player.registered", "reg-"+id, noon, data)
	}
	nc, _ := srv.Connect(t)
	var p *bus.Preview
	bustest.Eventually(t, 10*time.Second, "the preview", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		p, err = flow.GatherPreview(ctx, nc, "baku", "vip-notice", 2)
		return err == nil && len(p.Missing) == 0 && p.Audience == 6
	})
	// Players 0, 3 (no phone) and 6, 7 (not AZ): 6 in the audience, 4 reachable by SMS.
	if p.WouldSend != 4 || p.ByChannel["sms"] != 4 || p.Suppressed[string(route.ReasonNoChannel)] != 2 ||
		fmt.Sprint(p.Partitions) != "[0 1]" || p.Step != "tell" {
		t.Fatalf("preview %+v", p)
	}
	if len(p.ByLocale) != 2 || p.ByLocale["sms/ru"] != 2 || p.ByLocale["sms/az"] != 2 {
		t.Fatalf("locales %v, want sms/ru 2 and sms/az 2 (one of them the English reader's fallback)", p.ByLocale)
	}
	if n := len(bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, "croupier.outcomes.>")); n != 0 {
		t.Fatalf("the preview recorded %d outcomes", n)
	}
	// An unknown campaign previews as empty, not as an error.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := flow.GatherPreview(ctx, nc, "baku", "nope", 2); err != nil || q.Audience != 0 {
		t.Fatalf("unknown campaign: %+v %v", q, err)
	}
	// A Segment's rule being written, counted over both partitions: the six Azerbaijani
	// players; those of them reading Russian: players 1 and 5.
	for rule, want := range map[string]int64{`player.country == "AZ"`: 6, `player.country == "AZ" && player.language == "ru"`: 2, `player.vipLevel > 100`: 0} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		q, err := flow.GatherCount(ctx, nc, "baku", rule, 2)
		cancel()
		if err != nil || q.Audience != want || len(q.Missing) != 0 || fmt.Sprint(q.Partitions) != "[0 1]" {
			t.Fatalf("count of %s: %+v %v, want %d", rule, q, err, want)
		}
	}
}
