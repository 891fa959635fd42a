package render_test

import (
	"errors"
	"strings"
	"testing"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/render"
	"github.com/croupier-crm/croupier/internal/bus"
)

func welcome(t *testing.T) *render.Content {
	t.Helper()
	cfg := &bus.CampaignConfig{ContentHashes: map[string]string{"welcome": "h1"}, Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{{Name: "welcome", Messages: []crmv1.Message{
		{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Xoş gəldiniz, {{ .Player.FirstName }}!", Format: crmv1.FormatHTML,
			Body: `<p>Salam {{ .Player.FirstName }}, <a href="{{ .Links.Unsubscribe }}">abunəlikdən çıx</a></p>`},
		{Channel: crmv1.ChannelEmail, Locale: "ru", Subject: "Добро пожаловать", Format: crmv1.FormatHTML, Body: `<p>Привет {{ .Player.FirstName }}</p>`},
		{Channel: crmv1.ChannelSMS, Locale: "en-GB", Body: "Hi {{ .Player.FirstName }}, your {{ .Event.amount }} {{ .Event.currency }} deposit is in. {{ .Campaign }}"},
		{Channel: crmv1.ChannelPush, Locale: "pt", Subject: "Olá", Body: "{{ default \"amigo\" .Player.nickname }}", DeepLink: "casino://lobby", ButtonText: "Jogar"},
	}}}}}
	contents, err := render.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := contents["welcome"]
	if c == nil || c.Hash != "h1" {
		t.Fatalf("compiled %+v", contents)
	}
	return c
}

func TestPickFallsBackThroughLanguages(t *testing.T) {
	c := welcome(t)
	for _, tc := range []struct {
		ch    crmv1.Channel
		langs []string
		want  string
	}{
		{crmv1.ChannelEmail, []string{"ru", "az"}, "ru"},
		{crmv1.ChannelEmail, []string{"", "az"}, "az"},     // no language chosen for the channel
		{crmv1.ChannelEmail, []string{"fr", "az"}, "az"},   // the brand's default next
		{crmv1.ChannelEmail, []string{"fr"}, "az"},         // any locale of the channel last
		{crmv1.ChannelSMS, []string{"en"}, "en-GB"},        // a base language matches a region
		{crmv1.ChannelPush, []string{"pt-BR", "az"}, "pt"}, // and a region its base
		{crmv1.ChannelEmail, []string{"ru-RU", "az"}, "ru"},
	} {
		m := c.Pick(tc.ch, tc.langs...)
		if m == nil || m.Locale != tc.want {
			t.Errorf("%s %v: %+v, want %s", tc.ch, tc.langs, m, tc.want)
		}
	}
	if c.Pick(crmv1.ChannelViber, "az") != nil {
		t.Error("a channel the content has no message for")
	}
	if !c.Offered.Has(crmv1.ChannelEmail) || !c.Offered.Has(crmv1.ChannelPush) || c.Offered.Has(crmv1.ChannelViber) || c.Offered.Has(crmv1.ChannelInApp) {
		t.Errorf("offered %08b", c.Offered)
	}
}

func TestExecuteFillsPlayerEventAndLinks(t *testing.T) {
	c := welcome(t)
	data := &render.Data{
		Player:   render.PlayerData(map[string]any{"country": "AZ"}, map[string]string{"firstName": `Leyla <script>`}),
		Event:    map[string]any{"amount": "50.00", "currency": "AZN"},
		Campaign: "deposit-receipt",
		Links:    map[string]string{"Unsubscribe": "https://crm.example.az/v1/brands/baku/unsubscribe?t=abc"},
	}
	r, err := c.Pick(crmv1.ChannelEmail, "az").Execute("welcome", data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Xoş gəldiniz, Leyla <script>!" || r.TemplateID != "welcome/email/az" || r.Locale != "az" {
		t.Errorf("subject %q id %q", r.Subject, r.TemplateID)
	}
	if !strings.Contains(r.HTML, "Salam Leyla &lt;script&gt;") || !strings.Contains(r.HTML, `href="https://crm.example.az/v1/brands/baku/unsubscribe?t=abc"`) || r.Text != "" {
		t.Errorf("html %q", r.HTML)
	}
	r, err = c.Pick(crmv1.ChannelSMS, "en").Execute("welcome", data)
	if err != nil || r.Text != "Hi Leyla <script>, your 50.00 AZN deposit is in. deposit-receipt" {
		t.Errorf("sms %q %v", r.Text, err)
	}
	// A field the player does not have prints nothing, never "<no value>".
	r, err = c.Pick(crmv1.ChannelSMS, "en").Execute("welcome", &render.Data{Player: render.PlayerData(nil, nil)})
	if err != nil || r.Text != "Hi , your   deposit is in. " {
		t.Errorf("sms without fields %q %v", r.Text, err)
	}
	r, err = c.Pick(crmv1.ChannelPush, "pt").Execute("welcome", &render.Data{Player: render.PlayerData(nil, nil)})
	if err != nil || r.Text != "amigo" || r.DeepLink != "casino://lobby" || r.Button != "Jogar" || r.Subject != "Olá" {
		t.Errorf("push %+v %v", r, err)
	}
}

func TestCompileNamesTheBrokenTemplate(t *testing.T) {
	_, err := render.Compile(&bus.CampaignConfig{Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{
		{Name: "ok", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "fine"}}},
		{Name: "broken", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "fine"}, {Channel: crmv1.ChannelEmail, Locale: "az", Subject: "{{ .Player.x ", Body: "x"}}},
	}}})
	if err == nil || !strings.Contains(err.Error(), "spec.contents[1].messages[1].subject") {
		t.Fatalf("%v", err)
	}
}

func TestMarkdownEmailAndEmptyMessages(t *testing.T) {
	contents, err := render.Compile(&bus.CampaignConfig{Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{{Name: "race", Messages: []crmv1.Message{
		{Channel: crmv1.ChannelEmail, Locale: "ru", Format: crmv1.FormatMarkdown, Subject: "Турнир",
			Body: "# Привет, {{ .Player.FirstName }}!\n\nВаш приз: **{{ .Event.count }} {{ plural \"ru\" .Event.count \"one=фриспин\" \"few=фриспина\" \"many=фриспинов\" \"other=фриспина\" }}** на {{ amount \"ru\" .Event.amount \"RUB\" }}.\n\n[Играть](https://example-casino.az/race)"},
		{Channel: crmv1.ChannelSMS, Locale: "ru", Body: "{{ .Player.FirstName }}"},
	}}}}})
	if err != nil {
		t.Fatal(err)
	}
	data := &render.Data{Player: render.PlayerData(nil, map[string]string{"firstName": "<b>Олег</b>"}), Event: map[string]any{"count": 5, "amount": "1500"}}
	r, err := contents["race"].Pick(crmv1.ChannelEmail, "ru").Execute("race", data)
	if err != nil {
		t.Fatal(err)
	}
	// Raw HTML (here from a player's field) never reaches the HTML part.
	for _, want := range []string{"<h1>Привет, <!-- raw HTML omitted -->Олег<!-- raw HTML omitted -->!</h1>", "<strong>5 фриспинов</strong>", "1\u00a0500,00\u00a0₽", `<a href="https://example-casino.az/race">Играть</a>`} {
		if !strings.Contains(strings.ReplaceAll(r.HTML, "\u202f", "\u00a0"), want) {
			t.Errorf("HTML %q lacks %q", r.HTML, want)
		}
	}
	if !strings.HasPrefix(r.Text, "# Привет") || strings.Contains(r.HTML, "<b>Олег") {
		t.Errorf("text %q html %q", r.Text, r.HTML)
	}
	// A message whose every field is missing is an error, never an empty send.
	if _, err := contents["race"].Pick(crmv1.ChannelSMS, "ru").Execute("race", &render.Data{Player: render.PlayerData(nil, nil)}); !errors.Is(err, render.ErrEmpty) {
		t.Errorf("an empty SMS: %v", err)
	}
}
