package sms_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/internal/bus"
)

var factories = map[crmv1.ProviderType]channel.Factory{crmv1.ProviderTwilio: sms.NewTwilio, crmv1.ProviderSMSRest: sms.NewREST}

func policy(providers ...crmv1.Provider) *bus.ChannelPolicyConfig {
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS, Providers: providers,
		Sender: &crmv1.SenderDefaults{SenderID: "BakuCasino"},
		Retry:  &crmv1.RetryPolicy{MaxAttempts: 3, InitialBackoff: &metav1.Duration{Duration: 20 * time.Millisecond}}},
		ProviderCosts: map[string]bus.MicroAmount{}}
	for _, p := range providers {
		cfg.ProviderCosts[p.Name] = bus.MicroAmount{Micros: 20_000, Currency: "AZN"}
	}
	return cfg
}

// receipt is 100 Azerbaijani characters: UCS-2, two segments.
var receipt = "BakuCasino: 50.00 AZN depozit qəbul edildi. " + strings.Repeat("ə", 55)

func TestTwilioShapeSegmentsAndErrors(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	var keys []string
	tw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || user != "AC123" || pass != "tw-token" || r.ParseForm() != nil {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		to := r.PostForm.Get("To")
		if to != "+10000000000" {
			forms, keys = append(forms, r.PostForm), append(keys, r.Header.Get("I-Twilio-Idempotency-Token"))
		}
		n := len(forms)
		mu.Unlock()
		switch {
		case to == "+10000000000":
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`))
		case n == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		default:
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"sid":"SM` + r.PostForm.Get("To")[1:] + `","status":"queued","num_segments":"2"}`))
		}
	}))
	defer tw.Close()
	r := channeltest.Run(t, policy(crmv1.Provider{Name: "twilio", Type: crmv1.ProviderTwilio, Endpoint: tw.URL,
		SecretRef: &crmv1.LocalObjectReference{Name: "tw"}, Options: map[string]string{sms.OptionStatusCallback: "https://crm.example-casino.az/v1/brands/baku/webhooks/twilio/twilio"}}),
		factories, channel.StaticSecrets{"baku/tw": {sms.SecretAccountSID: []byte("AC123"), sms.SecretAuthToken: []byte("tw-token")}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-1", Player: "p-1", Campaign: "deposit-receipt", To: "+994501234567", Text: receipt})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-2", Player: "p-2", Campaign: "deposit-receipt", To: "+10000000000", Text: "x"})
	r.Drained(t)
	oc := r.Attempts(t, "p-1")
	if channeltest.Results(oc) != "twilio:retry:1 twilio:sent:2" || oc[1].ProviderID != "SM994501234567" || oc[1].ProviderCost == nil || oc[1].ProviderCost.Micros != 40_000 {
		t.Fatalf("p-1 attempts %+v", oc)
	}
	if got := channeltest.Results(r.Attempts(t, "p-2")); got != "twilio:failed:1" {
		t.Fatalf("an invalid number: %s", got)
	}
	if f := r.Events(t, "p-2", "delivery.failed"); len(f) != 1 || !strings.Contains(string(f[0].Data), "Twilio error 21211") {
		t.Fatalf("delivery.failed %+v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	f := forms[1]
	if f.Get("From") != "BakuCasino" || f.Get("Body") != receipt || f.Get("StatusCallback") != "https://crm.example-casino.az/v1/brands/baku/webhooks/twilio/twilio?d=d-1&p=p-1" || keys[0] != "d-1.sms" || keys[1] != "d-1.sms" {
		t.Fatalf("Twilio form %v, keys %v", f, keys)
	}
}

func TestGenericAggregatorMapping(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]string
	agg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "agg-key" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(403)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var b map[string]string
		if json.Unmarshal(raw, &b) != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"ok","data":{"messages":[{"msg_id":"agg-7","parts":2}]}}`))
	}))
	defer agg.Close()
	r := channeltest.Run(t, policy(crmv1.Provider{Name: "aggregator", Type: crmv1.ProviderSMSRest, Endpoint: agg.URL + "/send",
		SecretRef: &crmv1.LocalObjectReference{Name: "agg"}, Options: map[string]string{
			sms.OptionAuth: "header", sms.OptionTo: "msisdn", sms.OptionFrom: "sender", sms.OptionText: "message", sms.OptionReference: "client_ref",
			sms.OptionIDPath: "data.messages.0.msg_id", sms.OptionSegments: "data.messages.0.parts", "field.route": "premium"}}),
		factories, channel.StaticSecrets{"baku/agg": {sms.SecretToken: []byte("agg-key")}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-3", Player: "p-3", Campaign: "cashback", To: "+994551112233", Text: receipt})
	r.Drained(t)
	oc := r.Attempts(t, "p-3")
	if channeltest.Results(oc) != "aggregator:sent:1" || oc[0].ProviderID != "agg-7" || oc[0].ProviderCost.Micros != 40_000 {
		t.Fatalf("attempts %+v", oc)
	}
	mu.Lock()
	defer mu.Unlock()
	b := bodies[0]
	if b["msisdn"] != "+994551112233" || b["sender"] != "BakuCasino" || b["message"] != receipt || b["client_ref"] != "d-3:p-3" || b["route"] != "premium" {
		t.Fatalf("aggregator body %v", b)
	}
	if _, err := sms.NewREST(channel.Config{Provider: crmv1.Provider{Endpoint: "https://x", Options: map[string]string{sms.OptionAuth: "magic"}}}); err == nil ||
		!strings.Contains(err.Error(), "options.auth") {
		t.Fatalf("a bad auth option: %v", err)
	}
}
