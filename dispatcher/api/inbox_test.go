package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func TestInboxListReadAndLiveFeed(t *testing.T) {
	nats := bustest.Start(t, 4)
	_, js := nats.Connect(t)
	store := &inapp.Store{KV: bustest.KV(t, js, bus.BucketInbox), Partitions: 4}
	prov, err := inapp.Factory(store)(channel.Config{Provider: crmv1.Provider{Name: "inbox", Type: crmv1.ProviderInApp}})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(player, id, text string) {
		t.Helper()
		if _, err := prov.Send(context.Background(), &channel.Message{Job: &bus.DeliveryJob{DecisionID: id, Brand: "baku", Player: player,
			Campaign: "daily-spins", Locale: "az", Text: text, Data: map[string]string{"category": "marketing"}}}); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	p := &api.Preferences{Keys: ingest.StaticKeys{"baku": {JWT: [][]byte{[]byte("jwt-secret")}}}, Log: quiet}
	done := make(chan struct{})
	defer close(done)
	(&api.Inbox{Store: store, Heartbeat: 50 * time.Millisecond, Done: done}).Register(mux, p)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	token := func(sub string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("jwt-secret"))
		return s
	}
	do := func(method, path, tok string) (int, api.InboxView, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v api.InboxView
		_ = json.Unmarshal(b, &v)
		return resp.StatusCode, v, string(b)
	}
	leyla, other := token("p-1"), token("p-2")
	deliver("p-1", "d-1", "20 pulsuz fırlanma")
	deliver("p-1", "d-2", "Cashback 10%")
	if st, v, body := do("GET", "/v1/brands/baku/me/inbox", leyla); st != 200 || v.Unread != 2 || len(v.Messages) != 2 || v.Messages[0].ID != "d-2" {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, v, _ := do("GET", "/v1/brands/baku/me/inbox", other); st != 200 || len(v.Messages) != 0 {
		t.Fatalf("another player sees %d messages", len(v.Messages))
	}
	if st, _, _ := do("GET", "/v1/brands/baku/me/inbox", ""); st != 401 {
		t.Fatalf("no token: %d", st)
	}
	if st, v, body := do("POST", "/v1/brands/baku/me/inbox/d-1/read", leyla); st != 200 || v.Unread != 1 || v.Messages[1].Read == nil {
		t.Fatalf("read: %d %s", st, body)
	}
	if st, _, body := do("POST", "/v1/brands/baku/me/inbox/d-9/read", leyla); st != 404 || !strings.Contains(body, `"field":"id"`) {
		t.Fatalf("unknown id: %d %s", st, body)
	}
	if st, _, _ := do("POST", "/v1/brands/baku/me/inbox/d-2/read", other); st != 404 {
		t.Fatalf("another player marked p-1's message: %d", st)
	}

	// The live feed: the token in the URL (EventSource), the inbox at once, then each change.
	if st, _, _ := do("GET", "/v1/brands/baku/me/inbox/stream?access_token=forged", ""); st != 401 {
		t.Fatalf("forged feed token: %d", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/brands/baku/me/inbox/stream?access_token="+leyla, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("feed: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan api.InboxView, 8)
	beats := make(chan struct{}, 8)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, ": keep-alive") {
				select {
				case beats <- struct{}{}:
				default:
				}
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var v api.InboxView
				_ = json.Unmarshal([]byte(data), &v)
				events <- v
			}
		}
		close(events)
	}()
	next := func(what string) api.InboxView {
		select {
		case v, ok := <-events:
			if !ok {
				t.Fatalf("%s: the feed closed", what)
			}
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", what)
		}
		return api.InboxView{}
	}
	if v := next("the snapshot"); v.Unread != 1 || len(v.Messages) != 2 {
		t.Fatalf("snapshot %+v", v)
	}
	deliver("p-2", "d-other", "not for p-1")
	deliver("p-1", "d-3", "Turnir başladı")
	if v := next("the new message"); v.Unread != 2 || v.Messages[0].ID != "d-3" || v.Messages[0].Text != "Turnir başladı" {
		t.Fatalf("after delivery %+v", v)
	}
	select {
	case <-beats:
	case <-time.After(2 * time.Second):
		t.Fatal("no keep-alive on an idle feed")
	}
	if st, _, _ := do("POST", "/v1/brands/baku/me/inbox/read", leyla); st != 200 {
		t.Fatalf("read all: %d", st)
	}
	if v := next("read all"); v.Unread != 0 {
		t.Fatalf("after read all %+v", v)
	}
}
