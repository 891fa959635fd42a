package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/internal/bus"
)

// FuzzRESTAnswer feeds an aggregator's answer (status and body) to the smsRest provider:
// it never panics, a 2xx with the id where idPath says is a receipt with that id, and
// everything else is a classified channel error.
func FuzzRESTAnswer(f *testing.F) {
	f.Add(200, `{"id":"m-1"}`)
	f.Add(200, `{"data":{"messages":[{"msg_id":"agg-7","parts":2}]}}`)
	f.Add(200, `not json`)
	f.Add(500, `{"error":"busy"}`)
	f.Add(429, ``)
	f.Add(400, `{"error":{"code":21211}}`)
	f.Add(200, `{"id":{"nested":true}}`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 599 {
			return // 1xx are informational: the server sends a final status after them
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		defer srv.Close()
		p, err := sms.NewREST(channel.Config{Provider: crmv1.Provider{Name: "agg", Type: crmv1.ProviderSMSRest, Endpoint: srv.URL},
			Secret: map[string][]byte{sms.SecretToken: []byte("k")}, HTTP: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := p.Send(context.Background(), &channel.Message{Job: &bus.DeliveryJob{DecisionID: "d", Player: "p", To: "+994551112233", Text: "Salam"}})
		var ce *channel.Error
		switch {
		case err == nil && (status < 200 || status > 299):
			t.Fatalf("status %d accepted as %+v", status, rc)
		case err != nil && !errors.As(err, &ce):
			t.Fatalf("unclassified error %v", err)
		}
		var ans map[string]any
		if err == nil && json.Unmarshal([]byte(body), &ans) == nil {
			if id, ok := ans["id"].(string); ok && id != "" && rc.ProviderID != id {
				t.Fatalf("the id of %q came back as %q", body, rc.ProviderID)
			}
		}
	})
}

// FuzzSegments: the segment count matches the encoding's limits for any text.
func FuzzSegments(f *testing.F) {
	for _, s := range []string{"", "Salam", "Sizin üçün 10 pulsuz fırlanma", "Привет!", strings.Repeat("a", 161), "{[~]}€", "ə"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		enc, n := sms.Segments(text)
		if text == "" {
			return
		}
		if n < 1 {
			t.Fatalf("%q: %d segments", text, n)
		}
		units := len([]rune(text))
		if enc == sms.UCS2 {
			units = len(utf16units(text))
			if units <= 70 && n != 1 {
				t.Fatalf("%q: %d UCS-2 units in %d segments", text, units, n)
			}
		}
		if n > units+1 {
			t.Fatalf("%q: %d segments for %d units", text, n, units)
		}
	})
}

func utf16units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			out = append(out, 0, 0)
		} else {
			out = append(out, 0)
		}
	}
	return out
}

// FuzzReference: a reference splits back into its decision and player.
func FuzzReference(f *testing.F) {
	f.Add("d-1", "p-1")
	f.Add("", "")
	f.Add("a:b", "c")
	f.Fuzz(func(t *testing.T, decision, player string) {
		if strings.Contains(decision, ":") {
			return // decision ids are hex hashes: never a colon
		}
		d, p, ok := sms.ParseReference(sms.Reference(decision, player))
		if !ok || d != decision || p != player {
			t.Fatalf("%q %q -> %q %q %v", decision, player, d, p, ok)
		}
	})
}
