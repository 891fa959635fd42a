package push_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/push"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// An HTTP/2 TLS server that checks what APNs checks: the ES256 provider token (key id,
// team), the topic, the path's device token.
func TestAPNsOverHTTP2WithTokenAuth(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	var mu sync.Mutex
	var got []map[string]any
	var headers []http.Header
	var expired atomic.Bool
	expired.Store(true) // the first token is refused as expired once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			w.WriteHeader(505)
			return
		}
		raw, _ := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
		tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
		if err != nil || tok.Header["kid"] != "KEY123" || tok.Claims.(jwt.MapClaims)["iss"] != "TEAM456" {
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"reason":"InvalidProviderToken"}`))
			return
		}
		if expired.CompareAndSwap(true, false) {
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"reason":"ExpiredProviderToken"}`))
			return
		}
		device, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
		if !ok || r.Header.Get("apns-topic") != "az.example.casino" {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"reason":"BadTopic"}`))
			return
		}
		if device == "dead" {
			w.WriteHeader(410)
			_, _ = w.Write([]byte(`{"reason":"Unregistered","timestamp":1763800000000}`))
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got, headers = append(got, body), append(headers, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelPush, Providers: []crmv1.Provider{
		{Name: "apns", Type: crmv1.ProviderAPNs, Endpoint: srv.URL, SecretRef: &crmv1.LocalObjectReference{Name: "apns"},
			Options: map[string]string{push.OptionKeyID: "KEY123", push.OptionTeamID: "TEAM456", push.OptionTopic: "az.example.casino"}}}}}
	r := channeltest.Run(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderAPNs: push.NewAPNs},
		channel.StaticSecrets{"baku/apns": {push.SecretAuthKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), push.SecretCACert: ca}})
	const n = 40
	for i := range n {
		r.Publish(t, bus.DeliveryJob{DecisionID: fmt.Sprintf("d-%02d", i), Player: "p-1", Campaign: "slots-race",
			To: fmt.Sprintf("token%02d", i), Subject: "Turnir", Text: "Turnir başladı!",
			Data: map[string]string{"category": "marketing", "deepLink": "casino://race"}})
	}
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-dead", Player: "p-2", Campaign: "slots-race", To: "dead", Text: "x", Data: map[string]string{"category": "marketing"}})
	r.Drained(t)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("APNs received %d of %d", len(got), n)
	}
	aps, _ := got[0]["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != "Turnir" || alert["body"] != "Turnir başladı!" || got[0]["deepLink"] != "casino://race" {
		t.Fatalf("payload %v", got[0])
	}
	h := headers[0]
	if h.Get("apns-push-type") != "alert" || h.Get("apns-collapse-id") != "slots-race" ||
		!regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(h.Get("apns-id")) {
		t.Fatalf("headers %v", h)
	}
	inv := r.Events(t, "p-2", ingest.TypeTokenInvalid)
	if len(inv) != 1 || !strings.Contains(string(inv[0].Data), `"token":"dead"`) {
		t.Fatalf("channel.token.invalid %+v", inv)
	}
	for _, o := range r.Attempts(t, "p-1") {
		if o.Result != channel.ResultSent {
			t.Fatalf("an attempt that was not sent: %+v (the expired token is renewed within the attempt)", o)
		}
	}
}
