package push_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/push"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// fakeGoogle is an OAuth2 token endpoint and an FCM v1 endpoint on loopback that check
// what the real ones check: the service account's signed assertion, then the bearer token.
func TestFCMServiceAccountTokenAndMessages(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	var tokenCalls atomic.Int32
	var mu sync.Mutex
	var sent []push.FCMMessage
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			_ = r.ParseForm()
			claims := jwt.MapClaims{}
			_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
				jwt.WithValidMethods([]string{"RS256"}))
			if err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" ||
				claims["iss"] != "crm@casino-app.iam.gserviceaccount.com" || claims["scope"] != push.FCMScope || claims["aud"] != srv.URL+"/token" {
				w.WriteHeader(400)
				return
			}
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"ya29.test","expires_in":3600,"token_type":"Bearer"}`))
		case "/v1/projects/casino-app/messages:send":
			if r.Header.Get("Authorization") != "Bearer ya29.test" {
				w.WriteHeader(401)
				return
			}
			var m push.FCMMessage
			if json.NewDecoder(r.Body).Decode(&m) != nil {
				w.WriteHeader(400)
				return
			}
			mu.Lock()
			sent = append(sent, m)
			n := len(sent)
			mu.Unlock()
			switch {
			case m.Message.Token == "gone":
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`))
			case n == 1:
				w.WriteHeader(503)
			default:
				_, _ = w.Write([]byte(`{"name":"projects/casino-app/messages/0:` + m.Message.Data["decisionId"] + `"}`))
			}
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "casino-app", "client_email": "crm@casino-app.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "private_key_id": "k1", "token_uri": srv.URL + "/token"})
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelPush, Providers: []crmv1.Provider{
		{Name: "fcm", Type: crmv1.ProviderFCM, Endpoint: srv.URL, SecretRef: &crmv1.LocalObjectReference{Name: "fcm"}}},
		Retry: &crmv1.RetryPolicy{MaxAttempts: 3, InitialBackoff: &metav1.Duration{Duration: 20 * time.Millisecond}}}}
	r := channeltest.Run(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderFCM: push.NewFCM},
		channel.StaticSecrets{"baku/fcm": {push.SecretServiceAccount: sa}})
	for i, p := range []string{"p-1", "p-2", "p-3"} {
		r.Publish(t, bus.DeliveryJob{DecisionID: "d-" + p, Player: p, Campaign: "daily-spins", To: "tok-" + p, Subject: "Pulsuz fırlanmalar",
			Text: "20 pulsuz fırlanma!", Data: map[string]string{"category": "marketing", "deepLink": "casino://spins"}})
		if i == 0 {
			r.Drained(t) // the first one meets the 503
		}
	}
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-p-4", Player: "p-4", Campaign: "daily-spins", To: "gone", Text: "x", Data: map[string]string{"category": "marketing"}})
	r.Drained(t)
	if got := channeltest.Results(r.Attempts(t, "p-1")); got != "fcm:retry:1 fcm:sent:2" {
		t.Fatalf("p-1 attempts %s", got)
	}
	if oc := r.Attempts(t, "p-2"); len(oc) != 1 || oc[0].ProviderID != "projects/casino-app/messages/0:d-p-2" {
		t.Fatalf("p-2 attempts %+v", oc)
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Fatalf("%d access-token requests for 5 sends: the token is not reused", n)
	}
	inv := r.Events(t, "p-4", ingest.TypeTokenInvalid)
	if len(inv) != 1 || !strings.Contains(string(inv[0].Data), `"token":"gone"`) || !strings.Contains(string(inv[0].Data), `"channel":"push"`) {
		t.Fatalf("channel.token.invalid %+v", inv)
	}
	raw, _ := json.Marshal(inv[0])
	if _, err := ingest.Decode("baku", "p-4", ingest.TypeTokenInvalid, raw); err != nil {
		t.Fatalf("the owner would refuse the report: %v", err)
	}
	if f := r.Events(t, "p-4", ingest.TypeDeliveryFailed); len(f) != 1 {
		t.Fatalf("%d delivery.failed for the dead token", len(f))
	}
	mu.Lock()
	defer mu.Unlock()
	m := sent[1].Message
	if m.Token != "tok-p-1" || m.Notification == nil || m.Notification.Title != "Pulsuz fırlanmalar" || m.Data["deepLink"] != "casino://spins" ||
		m.Android == nil || m.Android.CollapseKey != "daily-spins" {
		t.Fatalf("FCM message %+v", m)
	}
}
