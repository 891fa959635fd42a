package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func TestPreferenceCentreAndOptOuts(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	ctx := context.Background()
	service, catalog := preferenceService(t, js, 4)
	cache := service.Cache
	keys := ingest.StaticKeys{"baku": {JWT: [][]byte{[]byte("jwt-secret")}, Link: []byte("link-secret"), Bearer: []string{"intake-token"}}}
	mux := http.NewServeMux()
	p := &api.Preferences{Service: service, Keys: keys, Log: quiet}
	p.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p.PublicURL = srv.URL
	in := &api.Insight{JS: js, Catalog: catalog, Prefs: service, Partitions: 4, DataKeys: bustest.DataKeys(t, js, 4)}

	token := func(sub string, key string, exp time.Duration) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp).Unix()}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	do := func(method, path, auth, body string) (int, string) {
		h := http.Header{"Content-Type": {"application/json"}}
		if auth != "" {
			h.Set("Authorization", "Bearer "+auth)
		}
		return send(t, method, srv.URL+path, h, []byte(body))
	}
	leyla := token("p-7", "jwt-secret", time.Hour)

	// Authentication: the brand's key, not expired, present.
	for _, c := range []struct{ name, auth string }{{"no token", ""}, {"wrong key", token("p-7", "other", time.Hour)}, {"expired", token("p-7", "jwt-secret", -time.Hour)}} {
		if st, body := do("GET", "/v1/brands/baku/me/preferences", c.auth, ""); st != 401 {
			t.Fatalf("%s: %d %s", c.name, st, body)
		}
	}
	st, body := do("GET", "/v1/brands/baku/me/preferences", leyla, "")
	var v api.View
	if err := json.Unmarshal([]byte(body), &v); st != 200 || err != nil {
		t.Fatalf("get: %d %s", st, body)
	}
	find := func(v api.View, cat crmv1.Category, ch crmv1.Channel) prefs.Effective {
		for _, e := range v.Matrix {
			if e.Category == cat && e.Channel == ch {
				return e
			}
		}
		t.Fatalf("no %s/%s in %+v", cat, ch, v.Matrix)
		return prefs.Effective{}
	}
	if e := find(v, crmv1.CategoryMarketing, crmv1.ChannelPush); e.State != prefs.Granted || !e.Default {
		t.Fatalf("marketing push default %+v", e)
	}
	if e := find(v, crmv1.CategoryService, crmv1.ChannelSMS); !e.Mandatory || e.State != prefs.Granted {
		t.Fatalf("service sms %+v", e)
	}

	// Bad changes name the field; mandatory categories cannot be switched off.
	for _, c := range []struct {
		body, field string
		status      int
	}{
		{`{"choices":[{"category":"service","channel":"sms","state":"withdrawn"}]}`, "choices[0].state", 409},
		{`{"languages":[{"channel":"sms","language":"fr"}]}`, "languages[0].language", 422},
		{`{"choices":[{"category":"marketing","channel":"webhook","state":"granted"}]}`, "choices[0].channel", 422},
		{`{"quietHours":{"start":"25:00","end":"07:00"}}`, "quietHours.start", 422},
		{`{"caps":[{"category":"marketing","max":0,"window":"24h"}]}`, "caps[0].max", 422},
		{`{"choices":[{"category":"marketing","channel":"push","state":"maybe"}]}`, "choices[0].state", 400},
		{`{"colour":"red"}`, "", 400},
		// Over the route's limit: 413, not a truncated body's "unexpected EOF".
		{`{"choices":[` + strings.Repeat(`{"category":"marketing","channel":"push","state":"granted"},`, 2000) + `{}]}`, "larger than", 413},
	} {
		st, body := do("PUT", "/v1/brands/baku/me/preferences", leyla, c.body)
		if st != c.status || !strings.Contains(body, c.field) {
			t.Fatalf("%.200s: %d %s", c.body, st, body)
		}
	}
	// A withdrawal on push: saved, in the ledger with its source, audited.
	st, body = do("PUT", "/v1/brands/baku/me/preferences", leyla, `{"choices":[{"category":"marketing","channel":"push","state":"withdrawn"}],"languages":[{"channel":"sms","language":"ru"}],"quietHours":{"start":"22:00","end":"09:00"}}`)
	if st != 200 {
		t.Fatalf("withdraw: %d %s", st, body)
	}
	if pp := cache.Get("baku", bus.Partition("p-7", 4), "p-7"); pp == nil || pp.Language(crmv1.ChannelSMS) != "ru" || pp.QuietWindow() == nil {
		t.Fatalf("routing's cache has %+v", pp)
	}
	ledger := consent(t, js, "p-7")
	if len(ledger) != 1 || ledger[0].Granted || ledger[0].Channel != crmv1.ChannelPush || ledger[0].Source != prefs.SourceApp || ledger[0].Actor != "player" {
		t.Fatalf("ledger %+v", ledger)
	}
	audits, err := api.ReadSubject(ctx, js, bus.StreamAudit, bus.AuditSubject("baku", prefs.KindPreferences, "p-7"))
	if err != nil || len(audits) != 1 || !strings.Contains(string(audits[0]), `withdrawn`) {
		t.Fatalf("audit %d %v", len(audits), err)
	}

	// Marketing email needs double opt-in: pending, a confirmation intent, then granted.
	st, body = do("PUT", "/v1/brands/baku/me/preferences", leyla, `{"choices":[{"category":"marketing","channel":"email","state":"granted"}]}`)
	if st != 200 || find(decode(t, body), crmv1.CategoryMarketing, crmv1.ChannelEmail).State != prefs.Pending {
		t.Fatalf("double opt-in: %d %s", st, body)
	}
	intents, _ := api.ReadSubject(ctx, js, bus.StreamIntents, bus.IntentSubject("baku", bus.Partition("p-7", 4), "p-7"))
	if len(intents) != 1 {
		t.Fatalf("%d confirmation intents", len(intents))
	}
	it, _ := bus.Decode[bus.Intent](intents[0])
	confirm := it.Links["Confirm"]
	if it.Campaign != api.ConfirmationCampaign || it.Category != crmv1.CategoryService || !strings.HasPrefix(confirm, srv.URL) {
		t.Fatalf("confirmation intent %+v", it)
	}
	if len(consent(t, js, "p-7")) != 1 {
		t.Fatal("a pending grant was recorded as consent")
	}
	if st, body := do("POST", strings.TrimPrefix(confirm, srv.URL), "", ""); st != 200 {
		t.Fatalf("confirm: %d %s", st, body)
	}
	ledger = consent(t, js, "p-7")
	if len(ledger) != 2 || !ledger[1].Granted || ledger[1].Source != prefs.SourceDoubleOptIn {
		t.Fatalf("ledger after confirmation %+v", ledger)
	}

	// One-click unsubscribe: a GET only asks, a POST withdraws; a forged link is refused.
	link, _ := p.Link(ctx, "unsubscribe", "baku", "p-7", crmv1.CategoryMarketing, crmv1.ChannelEmail)
	path := strings.TrimPrefix(link, srv.URL)
	if st, _ := do("GET", path, "", ""); st != 200 || len(consent(t, js, "p-7")) != 2 {
		t.Fatalf("GET unsubscribed: %d", st)
	}
	if st, _ := do("POST", path[:len(path)-3]+"xyz", "", "List-Unsubscribe=One-Click"); st != 400 {
		t.Fatalf("forged link: %d", st)
	}
	if st, body := do("POST", path, "", "List-Unsubscribe=One-Click"); st != 200 {
		t.Fatalf("one-click: %d %s", st, body)
	}
	ledger = consent(t, js, "p-7")
	if last := ledger[len(ledger)-1]; last.Granted || last.Channel != crmv1.ChannelEmail || last.Source != prefs.SourceUnsubscribe {
		t.Fatalf("after unsubscribe %+v", last)
	}
	// A message's link names its campaign and decision: the unsubscribe is reported to
	// the player's partition owner once, however often the link is used.
	msgLink := p.UnsubscribeLink(ctx, "baku", "p-7", crmv1.CategoryMarketing, crmv1.ChannelSMS, "weekly-cashback", "d-unsub-1")
	for range 2 {
		if st, body := do("POST", strings.TrimPrefix(msgLink, srv.URL), "", "List-Unsubscribe=One-Click"); st != 200 {
			t.Fatalf("one-click from a message: %d %s", st, body)
		}
	}
	var reports []bus.Outcome
	for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-7", parts), "p-7")) {
		if o.Result == bus.ReportUnsubscribed {
			reports = append(reports, o)
		}
	}
	if len(reports) != 1 || reports[0].Campaign != "weekly-cashback" || reports[0].DecisionID != "d-unsub-1" || reports[0].Channel != crmv1.ChannelSMS || reports[0].Kind != bus.OutcomeReport {
		t.Fatalf("unsubscribe reports: %+v", reports)
	}

	// SMS STOP in Russian from a differently written number suppresses the address.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/brands/baku/inbound/sms", strings.NewReader(`{"from":"+994 (50) 123-45-67","text":" стоп "}`))
	req.Header.Set("Authorization", "Bearer intake-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sms stop: %v %v", resp, err)
	}
	resp.Body.Close()
	bustest.Eventually(t, 5*time.Second, "the suppression in routing's cache", func() bool {
		return cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelSMS: "+994501234567"}).Has(crmv1.ChannelSMS)
	})
	if cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelSMS: "+994501234568"}) != 0 {
		t.Fatal("another number is suppressed")
	}
	if st, _ := do("POST", "/v1/brands/baku/inbound/sms", "wrong", `{"from":"+1","text":"STOP"}`); st != 401 {
		t.Fatalf("unauthenticated STOP: %d", st)
	}
	bustest.AssertNowhere(t, js, "994501234567")
	// The form most SMS gateways post; a reply that is not a stop word changes nothing.
	inbound := func(path, contentType, body string) (int, string) {
		return send(t, "POST", srv.URL+path, http.Header{"Authorization": {"Bearer intake-token"}, "Content-Type": {contentType}}, []byte(body))
	}
	if st, body := inbound("/v1/brands/baku/inbound/sms", "application/x-www-form-urlencoded", "From=%2B994551112233&Body=thanks"); st != 200 || !strings.Contains(body, `"stopped":false`) {
		t.Fatalf("a reply that is not STOP: %d %s", st, body)
	}
	if st, body := inbound("/v1/brands/baku/inbound/sms", "application/x-www-form-urlencoded", "From=%2B994551112233&Body=Dayan"); st != 200 || !strings.Contains(body, `"stopped":true`) {
		t.Fatalf("DAYAN by form: %d %s", st, body)
	}
	if st, body := inbound("/v1/brands/baku/inbound/sms", "application/json", `{"text":"STOP"}`); st != 400 || !strings.Contains(body, `"field":"from"`) {
		t.Fatalf("STOP without a sender: %d %s", st, body)
	}
	// Viber: only the unsubscribed event suppresses, and it needs the user id.
	for _, c := range []struct {
		body, want string
		status     int
	}{
		{`{"event":"delivered","user_id":"vb-1"}`, `"stopped":false`, 200},
		{`{"event":"unsubscribed"}`, `"field":"user_id"`, 400},
		{`{"event":"unsubscribed","user_id":"vb-1","timestamp":1763800000000}`, `"stopped":true`, 200},
	} {
		if st, body := inbound("/v1/brands/baku/inbound/viber", "application/json", c.body); st != c.status || !strings.Contains(body, c.want) {
			t.Fatalf("viber %s: %d %s", c.body, st, body)
		}
	}
	bustest.Eventually(t, 5*time.Second, "the Viber and form-posted suppressions in routing's cache", func() bool {
		return cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelViber: "vb-1", crmv1.ChannelSMS: "+994 55 111 22 33"}) ==
			prefs.Set(0).With(crmv1.ChannelViber).With(crmv1.ChannelSMS)
	})

	// The consent report: a marketing push after the withdrawal is a violation.
	rep, err := in.ConsentReport(ctx, "baku", "")
	// Withdrawals: the two above and the SMS one-click of a message.
	if err != nil || !rep.OK || rep.Withdrawals != 3 || rep.Suppressed != 3 {
		t.Fatalf("report %+v %v", rep, err)
	}
	withdrawnAt := ledger[0].Time
	for _, o := range []bus.Outcome{
		{Time: withdrawnAt.Add(-time.Minute), DecisionID: "before", Brand: "baku", Player: "p-7", Category: "marketing", Result: "send", Channel: crmv1.ChannelPush, Campaign: "daily-spins"},
		{Time: withdrawnAt.Add(time.Minute), DecisionID: "after", Brand: "baku", Player: "p-7", Category: "marketing", Result: "send", Channel: crmv1.ChannelPush, Campaign: "daily-spins"},
		{Time: withdrawnAt.Add(time.Minute), DecisionID: "service", Brand: "baku", Player: "p-7", Category: "service", Result: "send", Channel: crmv1.ChannelPush},
	} {
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", bus.Partition("p-7", 4), "p-7"), b); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = in.ConsentReport(ctx, "baku", "p-7")
	if err != nil || rep.OK || len(rep.Violations) != 1 || rep.Violations[0].DecisionID != "after" || rep.Checked != 2 {
		t.Fatalf("report %+v %v", rep, err)
	}
}

func decode(t *testing.T, body string) api.View {
	var v api.View
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func consent(t *testing.T, js jetstream.JetStream, player string) []bus.ConsentEntry {
	t.Helper()
	raw, err := api.ReadSubject(context.Background(), js, bus.StreamConsent, bus.ConsentSubject("baku", bus.Partition(player, 4), player))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bus.ConsentEntry, len(raw))
	for i, b := range raw {
		if out[i], err = bus.Decode[bus.ConsentEntry](b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// preferenceService runs the preference cache on js until the test ends and returns a
// Service on the Baku sample policy, with the catalog it reads.
func preferenceService(t *testing.T, js jetstream.JetStream, partitions int) (*prefs.Service, *flow.Catalog) {
	t.Helper()
	catalog := &flow.Catalog{Log: quiet}
	catalog.Put(bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku-casino"), bustest.SamplePolicyRecord(t, "baku"))
	cache := prefs.NewCache()
	ready := make(chan struct{})
	go func() { _ = cache.Run(t.Context(), bustest.KV(t, js, bus.BucketPrefs), ready) }()
	<-ready
	return &prefs.Service{JS: js, KV: bustest.KV(t, js, bus.BucketPrefs), Cache: cache, Policy: catalog.Policy, Partitions: partitions}, catalog
}

// send makes one request and returns the status and body.
func send(t *testing.T, method, url string, h http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
