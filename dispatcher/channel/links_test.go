package channel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func TestLinksAreShortenedTrackedAndRedirected(t *testing.T) {
	ep := newEndpoint(t, nil)
	r := channeltest.New(t, crmv1.ChannelWebhook)
	mux := http.NewServeMux()
	(&api.Redirects{JS: r.JS, Links: bustest.KV(t, r.JS, bus.BucketLinks), Partitions: channeltest.Partitions}).Register(mux)
	redirect := httptest.NewServer(mux)
	defer redirect.Close()
	cfg := policy(1, provider("primary", ep.srv.URL, ""))
	cfg.Spec.Links = &crmv1.LinkPolicy{Shorten: true, BaseURL: redirect.URL, UTM: &crmv1.UTM{Source: "crm"}}
	r.Start(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderWebhook: webhookFactory}, hookSecrets)
	unsubscribe := "https://crm.example-casino.az/v1/brands/baku/unsubscribe?t=abc"
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-1", Player: "p-1", Campaign: "slots-race", Step: "send", Locale: "az",
		HTML: `<p><a href="https://example-casino.az/race?lang=az">Qoşul</a> · <a href="https://example-casino.az/race?lang=az">yenə</a> · <a href="` + unsubscribe + `">çıx</a></p>`,
		Text: "Qoşul: https://example-casino.az/race?lang=az", Data: map[string]string{"category": "marketing", "unsubscribeURL": unsubscribe}})
	r.Drained(t)
	got := ep.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	body := got[0].body
	short := regexp.MustCompile(regexp.QuoteMeta(redirect.URL)+`/l/[A-Za-z0-9_-]{22}`).FindAllString(body.HTML, -1)
	if len(short) != 2 || short[0] != short[1] || !strings.Contains(body.HTML, `href="`+unsubscribe+`"`) || strings.Contains(body.HTML, "example-casino.az/race") {
		t.Fatalf("rewritten HTML %s", body.HTML)
	}
	if body.Text != "Qoşul: "+short[0] {
		t.Fatalf("rewritten text %q", body.Text)
	}
	// Following the link: recorded as a click, redirected with UTM parameters.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(short[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Host != "example-casino.az" || loc.Query().Get("lang") != "az" || loc.Query().Get("utm_source") != "crm" ||
		loc.Query().Get("utm_medium") != "webhook" || loc.Query().Get("utm_campaign") != "slots-race" {
		t.Fatalf("redirect %d to %s", resp.StatusCode, loc)
	}
	var clicks []bus.Outcome
	for _, o := range r.Attempts(t, "p-1") {
		if o.Result == bus.ReportClicked {
			clicks = append(clicks, o)
		}
	}
	if len(clicks) != 1 || clicks[0].DecisionID != "d-1" || clicks[0].Detail != "https://example-casino.az/race" || clicks[0].Campaign != "slots-race" {
		t.Fatalf("clicks %+v", clicks)
	}
	// Guessed and malformed ids lead nowhere.
	for _, id := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "x.y*z"} {
		resp, err := client.Get(redirect.URL + "/l/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("/l/%s: %d", id, resp.StatusCode)
		}
	}

	// An email gets an open pixel; opening it is recorded once per fetch.
	job := bus.DeliveryJob{DecisionID: "d-2", Brand: "baku", Player: "p-1", Campaign: "welcome", HTML: "<html><body><p>Salam</p></body></html>",
		Data: map[string]string{}}
	if err := (&channel.Links{JS: r.JS}).Rewrite(context.Background(), &job, crmv1.ChannelEmail, cfg.Spec.Links); err != nil {
		t.Fatal(err)
	}
	px := regexp.MustCompile(`<img src="(` + regexp.QuoteMeta(redirect.URL) + `/o/[A-Za-z0-9_-]{22})" width="1" height="1"`).FindStringSubmatch(job.HTML)
	if px == nil || !strings.HasSuffix(job.HTML, "</body></html>") {
		t.Fatalf("no pixel in %s", job.HTML)
	}
	resp, err = client.Get(px[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" {
		t.Fatalf("pixel %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	bustest.Eventually(t, 5*time.Second, "the open", func() bool {
		for _, o := range r.Attempts(t, "p-1") {
			if o.Result == bus.ReportOpened && o.DecisionID == "d-2" {
				return true
			}
		}
		return false
	})
}
