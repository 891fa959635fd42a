package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/dispatcher/channel/viber"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

type emailPolicy struct{ cfg *bus.ChannelPolicyConfig }

func (p emailPolicy) ChannelPolicy(string, crmv1.Channel) *bus.ChannelPolicyConfig { return p.cfg }

func TestEmailProviderWebhooksRecordBouncesAndComplaints(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	service, _ := preferenceService(t, js, 4)

	sgKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&sgKey.PublicKey)
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelEmail, Providers: []crmv1.Provider{
		{Name: "sendgrid", Type: crmv1.ProviderSendGrid, SecretRef: &crmv1.LocalObjectReference{Name: "sg"}},
		{Name: "mailgun", Type: crmv1.ProviderMailgun, SecretRef: &crmv1.LocalObjectReference{Name: "mg"}},
	}}}
	secrets := channel.StaticSecrets{"baku/sg": {api.SecretSendGridVerificationKey: []byte(base64.StdEncoding.EncodeToString(pub))},
		"baku/mg": {api.SecretMailgunSigningKey: []byte("mg-signing")}}
	mux := http.NewServeMux()
	(&api.ProviderHooks{JS: js, Policies: emailPolicy{cfg}, Secrets: secrets, Prefs: service, Partitions: 4}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path string, body []byte, h http.Header) (int, string) {
		return send(t, "POST", srv.URL+path, h, body)
	}
	signSG := func(body []byte) http.Header {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		sum := sha256.Sum256(append([]byte(ts), body...))
		sig, _ := ecdsa.SignASN1(rand.Reader, sgKey, sum[:])
		return http.Header{api.SendGridSignatureHeader: {base64.StdEncoding.EncodeToString(sig)}, api.SendGridTimestampHeader: {ts}}
	}
	now := time.Now().Unix()
	events := []byte(fmt.Sprintf(`[
 {"email":"p-1@example.az","timestamp":%d,"event":"delivered","decision_id":"d-1","player":"p-1","brand":"baku"},
 {"email":"p-1@example.az","timestamp":%d,"event":"bounce","type":"bounce","reason":"550 5.1.1 no such user","decision_id":"d-2","player":"p-1"},
 {"email":"p-1@example.az","timestamp":%d,"event":"bounce","type":"blocked","decision_id":"d-4","player":"p-1"},
 {"email":"p-2@example.az","timestamp":%d,"event":"spamreport","decision_id":"d-3","player":"p-2"},
 {"email":"x@example.az","timestamp":%d,"event":"open"}
]`, now, now, now, now, now))
	if st, body := post("/v1/brands/baku/webhooks/sendgrid/sendgrid", events, http.Header{api.SendGridSignatureHeader: {"MEUCIQ=="}, api.SendGridTimestampHeader: {"1"}}); st != 401 {
		t.Fatalf("forged SendGrid signature: %d %s", st, body)
	}
	if st, body := post("/v1/brands/baku/webhooks/sendgrid/mailgun", events, signSG(events)); st != 401 {
		t.Fatalf("the Mailgun provider's name on the SendGrid route: %d %s", st, body)
	}
	if n := len(bustest.ReadAll(t, js, bus.StreamOutcomes, "croupier.outcomes.>")); n != 0 {
		t.Fatalf("a refused webhook stored %d outcomes", n)
	}
	for range 2 { // SendGrid retries a batch; the second delivery stores nothing new
		if st, body := post("/v1/brands/baku/webhooks/sendgrid/sendgrid", events, signSG(events)); st != 200 || !strings.Contains(body, `"recorded":3`) {
			t.Fatalf("SendGrid events: %d %s", st, body)
		}
	}
	oc := bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-1", 4), "p-1"))
	if len(oc) != 2 || oc[0].Result != bus.ReportDelivered || oc[1].Result != bus.ReportHard || oc[1].Kind != bus.OutcomeReport || oc[1].Provider != "sendgrid" {
		t.Fatalf("p-1 outcomes %+v", oc)
	}
	bounces := bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-1", 4), "p-1", "email.bounced"))
	if len(bounces) != 1 || !strings.Contains(string(bounces[0].Data), `"kind":"hard"`) {
		t.Fatalf("email.bounced %+v", bounces)
	}
	raw, _ := json.Marshal(bounces[0])
	if _, err := ingest.Decode("baku", "p-1", "email.bounced", raw); err != nil {
		t.Fatalf("the owner would refuse the bounce: %v", err)
	}
	if c := bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-2", 4), "p-2", "email.bounced")); len(c) != 1 || !strings.Contains(string(c[0].Data), `"kind":"complaint"`) {
		t.Fatalf("the complaint reported %+v", c)
	}
	ledger := consent(t, js, "p-2")
	if len(ledger) != 1 || ledger[0].Granted || ledger[0].Channel != crmv1.ChannelEmail || ledger[0].Category != crmv1.CategoryMarketing || ledger[0].Source != prefs.SourceComplaint {
		t.Fatalf("p-2 ledger after a complaint %+v", ledger)
	}

	// Mailgun: HMAC of timestamp + token, at most five minutes old.
	mg := func(ts int64, key, event, severity string) []byte {
		token := "tok-" + strconv.FormatInt(ts, 10) + event
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(strconv.FormatInt(ts, 10) + token))
		return []byte(fmt.Sprintf(`{"signature":{"timestamp":"%d","token":%q,"signature":%q},
 "event-data":{"event":%q,"severity":%q,"timestamp":%d,"reason":"suppress-bounce","recipient":"p-3@example.az",
 "user-variables":{"decision_id":"d-5","player":"p-3","brand":"baku"}}}`, ts, token, hex.EncodeToString(mac.Sum(nil)), event, severity, ts))
	}
	if st, _ := post("/v1/brands/baku/webhooks/mailgun/mailgun", mg(now, "wrong", "failed", "permanent"), nil); st != 401 {
		t.Fatalf("wrong Mailgun key: %d", st)
	}
	if st, _ := post("/v1/brands/baku/webhooks/mailgun/mailgun", mg(now-3600, "mg-signing", "failed", "permanent"), nil); st != 401 {
		t.Fatalf("an hour-old Mailgun signature: %d", st)
	}
	if st, body := post("/v1/brands/baku/webhooks/mailgun/mailgun", mg(now, "mg-signing", "failed", "temporary"), nil); st != 200 || !strings.Contains(body, `"recorded":1`) {
		t.Fatalf("Mailgun soft bounce: %d %s", st, body)
	}
	if st, body := post("/v1/brands/baku/webhooks/mailgun/mailgun", mg(now, "mg-signing", "failed", "permanent"), nil); st != 200 {
		t.Fatalf("Mailgun hard bounce: %d %s", st, body)
	}
	kinds := ""
	for _, e := range bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-3", 4), "p-3", "email.bounced")) {
		kinds += string(e.Data)
	}
	if !strings.Contains(kinds, `"kind":"soft"`) || !strings.Contains(kinds, `"kind":"hard"`) {
		t.Fatalf("Mailgun bounces %s", kinds)
	}
	bustest.AssertNowhere(t, js, "@example.az")
}

type channelPolicies map[crmv1.Channel]*bus.ChannelPolicyConfig

func (p channelPolicies) ChannelPolicy(_ string, ch crmv1.Channel) *bus.ChannelPolicyConfig {
	return p[ch]
}

func TestTwilioDeliveryReports(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	public := "https://crm.example-casino.az/v1/brands/baku/webhooks/twilio/twilio"
	pols := channelPolicies{crmv1.ChannelSMS: {Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS, Providers: []crmv1.Provider{
		{Name: "twilio", Type: crmv1.ProviderTwilio, SecretRef: &crmv1.LocalObjectReference{Name: "tw"},
			Options: map[string]string{sms.OptionStatusCallback: public, api.OptionInboundURL: public + "/inbound"}}}}}}
	mux := http.NewServeMux()
	service, _ := preferenceService(t, js, 4)
	(&api.ProviderHooks{JS: js, Policies: pols, Secrets: channel.StaticSecrets{"baku/tw": {sms.SecretAuthToken: []byte("tw-token")}}, Prefs: service, Partitions: 4}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	report := func(query string, form url.Values, sig string) (int, string) {
		if sig == "" {
			sig = sms.Signature("tw-token", public+"?"+query, form)
		}
		return send(t, "POST", srv.URL+"/v1/brands/baku/webhooks/twilio/twilio?"+query,
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {sig}}, []byte(form.Encode()))
	}
	delivered := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "To": {"+994501234567"}}
	if st, body := report("d=d-1&p=p-1", delivered, "forged"); st != 401 {
		t.Fatalf("forged signature: %d %s", st, body)
	}
	if st, body := report("d=d-1&p=p-9", delivered, sms.Signature("tw-token", public+"?d=d-1&p=p-1", delivered)); st != 401 {
		t.Fatalf("a query changed after signing: %d %s", st, body)
	}
	if st, body := report("d=d-1&p=p-1", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sent"}}, ""); st != 200 || !strings.Contains(body, `"recorded":0`) {
		t.Fatalf("progress: %d %s", st, body)
	}
	if st, body := report("d=d-1&p=p-1", delivered, ""); st != 200 || !strings.Contains(body, `"recorded":1`) {
		t.Fatalf("delivered: %d %s", st, body)
	}
	if st, body := report("d=d-2&p=p-1", url.Values{"MessageSid": {"SM2"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}}, ""); st != 200 {
		t.Fatalf("undelivered: %d %s", st, body)
	}
	oc := bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-1", 4), "p-1"))
	if len(oc) != 2 || oc[0].Result != bus.ReportDelivered || oc[0].Channel != crmv1.ChannelSMS || oc[1].Result != bus.ReportUndelivered || oc[1].Detail != "Twilio error 30003" {
		t.Fatalf("outcomes %+v", oc)
	}
	f := bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-1", 4), "p-1", "delivery.failed"))
	if len(f) != 1 || !strings.Contains(string(f[0].Data), `"decisionId":"d-2"`) || !strings.Contains(string(f[0].Data), `"channel":"sms"`) {
		t.Fatalf("delivery.failed %+v", f)
	}
	raw, _ := json.Marshal(f[0])
	if _, err := ingest.Decode("baku", "p-1", "delivery.failed", raw); err != nil {
		t.Fatalf("the owner would refuse the report: %v", err)
	}

	// A STOP reply through Twilio's inbound webhook suppresses the sender's number.
	inbound := url.Values{"From": {"+994501234567"}, "Body": {" Stop "}, "MessageSid": {"SM9"}}
	inURL := srv.URL + "/v1/brands/baku/webhooks/twilio/twilio/inbound"
	if st, _ := send(t, "POST", inURL, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {"forged"}}, []byte(inbound.Encode())); st != 401 {
		t.Fatalf("a forged inbound: %d", st)
	}
	st, body := send(t, "POST", inURL, http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
		"X-Twilio-Signature": {sms.Signature("tw-token", public+"/inbound", inbound)}}, []byte(inbound.Encode()))
	if st != 200 || !strings.Contains(body, "<Response>") {
		t.Fatalf("inbound STOP: %d %s", st, body)
	}
	if sup := bustest.ReadAll(t, js, bus.StreamConsent, bus.SuppressionConsentSubject("baku", prefs.AddressHash(crmv1.ChannelSMS, "+994501234567"))); len(sup) != 1 {
		t.Fatalf("%d suppression ledger entries", len(sup))
	}
	bustest.AssertNowhere(t, js, "994501234567")
}

func TestViberCallbacksAreSigned(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	service, _ := preferenceService(t, js, 4)
	pols := channelPolicies{crmv1.ChannelViber: {Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelViber, Providers: []crmv1.Provider{
		{Name: "viber", Type: crmv1.ProviderViber, SecretRef: &crmv1.LocalObjectReference{Name: "vb"}}}}}}
	mux := http.NewServeMux()
	(&api.ProviderHooks{JS: js, Links: bustest.KV(t, js, bus.BucketLinks), Policies: pols, Secrets: channel.StaticSecrets{"baku/vb": {viber.SecretAuthToken: []byte("vb-token")}},
		Prefs: service, Partitions: 4}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := []byte(`{"event":"unsubscribed","timestamp":1763800000000,"user_id":"01234567890A=","message_token":4912661846655238145}`)
	post := func(sig string) int {
		st, _ := send(t, "POST", srv.URL+"/v1/brands/baku/webhooks/viber/viber", http.Header{"X-Viber-Content-Signature": {sig}}, body)
		return st
	}
	if st := post("0000"); st != 401 {
		t.Fatalf("forged signature: %d", st)
	}
	if st := post(viber.Signature("vb-token", body)); st != 200 {
		t.Fatalf("signed unsubscribe: %d", st)
	}
	bustest.Eventually(t, 5*time.Second, "the Viber id suppressed", func() bool {
		return service.Cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelViber: "01234567890A="}).Has(crmv1.ChannelViber)
	})
	bustest.AssertNowhere(t, js, "01234567890A=")

	// A failed delivery, for a token the worker remembered, is recorded and reported.
	links := bustest.KV(t, js, bus.BucketLinks)
	rec, _ := json.Marshal(bus.Link{Brand: "baku", Player: "p-5", Decision: "d-5", Campaign: "win-back", Channel: crmv1.ChannelViber})
	if _, err := links.Put(t.Context(), channel.TrackKey(crmv1.ChannelViber, "5098034272017990000"), rec); err != nil {
		t.Fatal(err)
	}
	body = []byte(`{"event":"failed","timestamp":1763800000000,"message_token":5098034272017990000,"user_id":"01234567890A=","desc":"failure description"}`)
	if st := post(viber.Signature("vb-token", body)); st != 200 {
		t.Fatalf("failed callback: %d", st)
	}
	oc := bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-5", 4), "p-5"))
	if len(oc) != 1 || oc[0].Result != bus.ReportUndelivered || oc[0].DecisionID != "d-5" || oc[0].Channel != crmv1.ChannelViber {
		t.Fatalf("outcomes %+v", oc)
	}
	if f := bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-5", 4), "p-5", "delivery.failed")); len(f) != 1 {
		t.Fatalf("%d delivery.failed", len(f))
	}
}

func TestAggregatorDeliveryReports(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	pols := channelPolicies{crmv1.ChannelSMS: {Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS, Providers: []crmv1.Provider{
		{Name: "agg", Type: crmv1.ProviderSMSRest, SecretRef: &crmv1.LocalObjectReference{Name: "agg"},
			Options: map[string]string{sms.OptionDLRRef: "message.client_ref", sms.OptionDLRStatus: "message.state"}}}}}}
	mux := http.NewServeMux()
	(&api.ProviderHooks{JS: js, Policies: pols, Secrets: channel.StaticSecrets{"baku/agg": {sms.SecretDLRToken: []byte("dlr-secret")}}, Partitions: 4}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dlr := func(query, auth, body string) (int, string) {
		h := http.Header{"Content-Type": {"application/json"}}
		if auth != "" {
			h.Set("Authorization", "Bearer "+auth)
		}
		return send(t, "POST", srv.URL+"/v1/brands/baku/webhooks/smsrest/agg"+query, h, []byte(body))
	}
	if st, _ := dlr("", "wrong", `{"message":{"client_ref":"d-1:p-1","state":"DELIVRD"}}`); st != 401 {
		t.Fatalf("a wrong token: %d", st)
	}
	if st, body := dlr("", "dlr-secret", `{"message":{"client_ref":"d-1:p-1","state":"DELIVRD"}}`); st != 200 || !strings.Contains(body, `"recorded":1`) {
		t.Fatalf("delivered: %d %s", st, body)
	}
	if st, body := dlr("?token=dlr-secret", "", `{"message":{"client_ref":"d-2:p-1","state":"UNDELIV"}}`); st != 200 || !strings.Contains(body, `"recorded":1`) {
		t.Fatalf("undelivered: %d %s", st, body)
	}
	if st, body := dlr("", "dlr-secret", `{"message":{"client_ref":"d-3:p-1","state":"ENROUTE"}}`); st != 200 || !strings.Contains(body, `"recorded":0`) {
		t.Fatalf("in progress: %d %s", st, body)
	}
	if st, body := dlr("", "dlr-secret", `{"message":{"state":"DELIVRD"}}`); st != 400 || !strings.Contains(body, `"field":"message.client_ref"`) {
		t.Fatalf("no reference: %d %s", st, body)
	}
	oc := bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition("p-1", 4), "p-1"))
	if len(oc) != 2 || oc[0].Result != bus.ReportDelivered || oc[1].Result != bus.ReportUndelivered || oc[1].Detail != "status UNDELIV" {
		t.Fatalf("outcomes %+v", oc)
	}
	if f := bustest.Collect[bus.CloudEvent](t, js, bus.StreamEvents, bus.StoredEventSubject("baku", bus.Partition("p-1", 4), "p-1", "delivery.failed")); len(f) != 1 {
		t.Fatalf("%d delivery.failed", len(f))
	}
}
