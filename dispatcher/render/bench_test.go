package render_test

import (
	"slices"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/render"
	"github.com/croupier-crm/croupier/internal/bus"
)

// BenchmarkRender executes pre-parsed templates as the partition owner does per message:
// an HTML welcome email with a subject and an SMS receipt, over a player's fields and the
// triggering event; reports p50 and p99 per message.
func BenchmarkRender(b *testing.B) {
	contents, err := render.Compile(&bus.CampaignConfig{Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{{Name: "welcome", Messages: []crmv1.Message{
		{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "{{ .Player.FirstName }}, 100% bonus sizi gözləyir", Format: crmv1.FormatHTML,
			Body: `<html><body><h1>Salam {{ .Player.FirstName }}!</h1><p>İlk depozitiniz {{ .Event.amount }} {{ .Event.currency }} idi.
{{ if gt .Player.vipLevel 1 }}<p>VIP səviyyəniz: {{ .Player.vipLevel }}</p>{{ end }}
<p><a href="https://example-casino.az/bonus?c={{ .Campaign }}">Bonusu götür</a></p>
<p style="font-size:11px"><a href="{{ .Links.Unsubscribe }}">Abunəlikdən çıx</a></p></body></html>`},
		{Channel: crmv1.ChannelSMS, Locale: "az", Body: "BakuCasino: {{ .Event.amount }} {{ .Event.currency }} depozit qəbul edildi. {{ upper .Player.FirstName }}"},
	}}}}})
	if err != nil {
		b.Fatal(err)
	}
	c := contents["welcome"]
	email, sms := c.Pick(crmv1.ChannelEmail, "az"), c.Pick(crmv1.ChannelSMS, "az")
	data := &render.Data{
		Player:   render.PlayerData(map[string]any{"country": "AZ", "vipLevel": 3, "depositCount": 4}, map[string]string{"firstName": "Leyla", "crmTier": "gold"}),
		Event:    map[string]any{"amount": "50.00", "currency": "AZN", "method": "card"},
		Campaign: "welcome",
		Links:    map[string]string{"Unsubscribe": "https://crm.example-casino.az/v1/brands/baku/unsubscribe?t=eyJhbGciOi"},
	}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := email
		if i%2 == 1 {
			m = sms
		}
		start := time.Now()
		if _, err := m.Execute("welcome", data); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-us")
}
