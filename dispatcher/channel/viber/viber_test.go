package viber_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/viber"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func TestViberMessagesAndStatuses(t *testing.T) {
	var mu sync.Mutex
	var got []viber.Message
	busy := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pa/send_message" || r.Header.Get("X-Viber-Auth-Token") != "vb-token" {
			_, _ = w.Write([]byte(`{"status":2,"status_message":"invalidAuthToken"}`))
			return
		}
		var m viber.Message
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case m.Receiver == "vb-gone":
			_, _ = w.Write([]byte(`{"status":6,"status_message":"receiverNotSubscribed"}`))
		case m.Receiver == "vb-busy" && !busy[m.Receiver]:
			busy[m.Receiver] = true
			_, _ = w.Write([]byte(`{"status":12,"status_message":"tooManyRequests"}`))
		default:
			got = append(got, m)
			token := "5098034272017990001"
			if m.Receiver == "vb-busy" {
				token = "5098034272017990003"
			}
			_, _ = w.Write([]byte(`{"status":0,"status_message":"ok","message_token":` + token + `,"chat_hostname":"SN-CHAT-05_"}`))
		}
	}))
	defer srv.Close()
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelViber, Sender: &crmv1.SenderDefaults{SenderID: "Baku Casino"},
		Providers: []crmv1.Provider{{Name: "viber", Type: crmv1.ProviderViber, Endpoint: srv.URL, SecretRef: &crmv1.LocalObjectReference{Name: "vb"}}},
		Retry:     &crmv1.RetryPolicy{MaxAttempts: 3, InitialBackoff: &metav1.Duration{Duration: 20 * time.Millisecond}}}}
	r := channeltest.Run(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderViber: viber.New},
		channel.StaticSecrets{"baku/vb": {viber.SecretAuthToken: []byte("vb-token")}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-1", Player: "p-1", Campaign: "win-back", To: "vb-1", Text: "Sizi darıxmışıq: 15 AZN bonus",
		Data: map[string]string{"category": "marketing", "imageURL": "https://cdn.example-casino.az/winback.png", "deepLink": "https://example-casino.az/bonus", "buttonText": "Götür"}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-2", Player: "p-2", Campaign: "win-back", To: "vb-gone", Text: "x", Data: map[string]string{"category": "marketing"}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-3", Player: "p-3", Campaign: "win-back", To: "vb-busy", Text: "y", Data: map[string]string{"category": "marketing"}})
	r.Drained(t)
	oc := r.Attempts(t, "p-1")
	if channeltest.Results(oc) != "viber:sent:1" || oc[0].ProviderID != "5098034272017990001" {
		t.Fatalf("p-1 attempts %+v", oc)
	}
	// The token is remembered for Viber's delivery callbacks.
	e, err := bustest.KV(t, r.JS, bus.BucketLinks).Get(t.Context(), channel.TrackKey(crmv1.ChannelViber, "5098034272017990001"))
	if err != nil || !strings.Contains(string(e.Value()), `"decision":"d-1"`) || !strings.Contains(string(e.Value()), `"player":"p-1"`) {
		t.Fatalf("tracked token: %v", err)
	}
	if got := channeltest.Results(r.Attempts(t, "p-3")); got != "viber:retry:1 viber:sent:2" {
		t.Fatalf("too many requests: %s", got)
	}
	inv := r.Events(t, "p-2", ingest.TypeTokenInvalid)
	if len(inv) != 1 || !strings.Contains(string(inv[0].Data), `"channel":"viber"`) || len(r.Events(t, "p-2", ingest.TypeDeliveryFailed)) != 1 {
		t.Fatalf("an unsubscribed receiver: %+v", inv)
	}
	mu.Lock()
	defer mu.Unlock()
	var m viber.Message
	for _, x := range got {
		if x.Receiver == "vb-1" {
			m = x
		}
	}
	if m.Type != "picture" || m.Media != "https://cdn.example-casino.az/winback.png" || m.Text != "Sizi darıxmışıq: 15 AZN bonus" || m.Sender.Name != "Baku Casino" ||
		m.TrackingData != "d-1/p-1" || m.Keyboard == nil || m.Keyboard.Buttons[0].ActionBody != "https://example-casino.az/bonus" || m.Keyboard.Buttons[0].Text != "Götür" {
		t.Fatalf("Viber message %+v", m)
	}
}
