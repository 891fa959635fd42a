package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

var key = []byte("baku-hmac-key")

func deposit(id, player string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"pam.baku-casino","type":"deposit.completed","subject":%q,"time":"2026-11-22T21:03:11Z","datacontenttype":"application/json","data":{"amount":"50.00","currency":"AZN","method":"card","depositId":"d-1","extra":{"kept":true}}}`, id, player)
}

func newIntake(t *testing.T) (*httptest.Server, jetstream.JetStream) {
	srv := bustest.Start(t, 4)
	_, js := srv.Connect(t)
	in := &ingest.Intake{JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBody: 1 << 20,
		Keys: ingest.StaticKeys{"baku": {HMAC: [][]byte{key}, Bearer: []string{"bearer-token"}}}}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/brands/{brand}/events", in)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, js
}

func storedEvents(t *testing.T, js jetstream.JetStream) uint64 {
	st, err := js.Stream(context.Background(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestHTTPIntake(t *testing.T) {
	hs, js := newIntake(t)
	now := time.Now()
	signed := func(body string) http.Header {
		return http.Header{"Content-Type": {ingest.ContentTypeStructured}, ingest.SignatureHeader: {ingest.SignatureFor(key, now, []byte(body))}}
	}
	batch := "[" + deposit("b1", "p-1") + "," + deposit("b2", "p-2") + "]"
	twice := "[" + deposit("t1", "p-3") + "," + deposit("t1", "p-3") + "]"
	ahead := strings.Replace(deposit("f1", "p-1"), "2026-11-22T21:03:11Z", now.Add(6*time.Minute).UTC().Format(time.RFC3339), 1)
	ancient := strings.Replace(deposit("f2", "p-1"), "2026-11-22T21:03:11Z", "1970-01-01T00:00:00Z", 1)
	badBatch := "[" + deposit("c1", "p-1") + `,{"specversion":"1.0","id":"c2","source":"pam","type":"deposit.completed","subject":"p-2","data":{"currency":"AZN","method":"card","depositId":"x"}}]`
	cases := []struct {
		name    string
		brand   string
		body    string
		header  http.Header
		status  int
		problem string // substring of the error
		field   string
		stored  uint64 // EVENTS message count after the request
		// duplicates is the accepted answer's duplicate count.
		duplicates int
	}{
		{name: "structured, HMAC", brand: "baku", body: deposit("e1", "p-1"), header: signed(deposit("e1", "p-1")), status: 202, stored: 1},
		{name: "same source+id again is a duplicate", brand: "baku", body: deposit("e1", "p-1"), header: signed(deposit("e1", "p-1")), status: 202, duplicates: 1, stored: 1},
		{name: "bearer token", brand: "baku", body: deposit("e2", "p-1"), header: http.Header{"Content-Type": {ingest.ContentTypeStructured}, "Authorization": {"Bearer bearer-token"}}, status: 202, stored: 2},
		{name: "batch", brand: "baku", body: batch, header: http.Header{"Content-Type": {ingest.ContentTypeBatch}, ingest.SignatureHeader: {ingest.SignatureFor(key, now, []byte(batch))}}, status: 202, stored: 4},
		{name: "binary mode", brand: "baku", body: `{"amount":"5.00","currency":"AZN","method":"card","depositId":"d9"}`, header: http.Header{
			"Content-Type": {"application/json"}, "Authorization": {"Bearer bearer-token"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"bin-1"},
			"Ce-Source": {"pam"}, "Ce-Type": {"deposit.completed"}, "Ce-Subject": {"p-7"}}, status: 202, stored: 5},
		{name: "no credentials", brand: "baku", body: deposit("x1", "p-1"), header: http.Header{"Content-Type": {ingest.ContentTypeStructured}}, status: 401, problem: "unauthenticated", stored: 5},
		{name: "wrong bearer", brand: "baku", body: deposit("x1", "p-1"), header: http.Header{"Content-Type": {ingest.ContentTypeStructured}, "Authorization": {"Bearer nope"}}, status: 401, problem: "bearer token not valid", stored: 5},
		{name: "signature over another body", brand: "baku", body: deposit("x1", "p-1"), header: signed(deposit("x2", "p-1")), status: 401, problem: "does not match", stored: 5},
		{name: "stale signature", brand: "baku", body: deposit("x1", "p-1"), header: http.Header{"Content-Type": {ingest.ContentTypeStructured}, ingest.SignatureHeader: {ingest.SignatureFor(key, now.Add(-6*time.Minute), []byte(deposit("x1", "p-1")))}}, status: 401, problem: "replay window", stored: 5},
		{name: "unknown brand", brand: "other", body: deposit("x1", "p-1"), header: signed(deposit("x1", "p-1")), status: 401, problem: "no intake keys", stored: 5},
		{name: "bad brand token", brand: "bad.brand", body: deposit("x1", "p-1"), header: signed(deposit("x1", "p-1")), status: 400, field: "brand", stored: 5},
		{name: "batch with one bad event changes nothing", brand: "baku", body: badBatch, header: http.Header{"Content-Type": {ingest.ContentTypeBatch}, ingest.SignatureHeader: {ingest.SignatureFor(key, now, []byte(badBatch))}}, status: 400, problem: "event 1 rejected", field: "data.amount", stored: 5},
		{name: "bad player id", brand: "baku", body: deposit("x3", "p 1"), header: signed(deposit("x3", "p 1")), status: 400, field: "subject", stored: 5},
		{name: "internal type refused", brand: "baku", body: `{"specversion":"1.0","id":"i1","source":"croupier","type":"player.inactive","subject":"p-1","data":{"days":7}}`, header: signed(`{"specversion":"1.0","id":"i1","source":"croupier","type":"player.inactive","subject":"p-1","data":{"days":7}}`), status: 400, field: "type", stored: 5},
		{name: "not JSON", brand: "baku", body: "hello", header: signed("hello"), status: 400, field: "event", stored: 5},
		{name: "wrong media type", brand: "baku", body: deposit("x4", "p-1"), header: http.Header{"Content-Type": {"text/plain"}, ingest.SignatureHeader: {ingest.SignatureFor(key, now, []byte(deposit("x4", "p-1")))}}, status: 415, problem: "Content-Type", stored: 5},
		{name: "same id twice in one batch: one stored, one duplicate", brand: "baku", body: twice, header: http.Header{"Content-Type": {ingest.ContentTypeBatch}, ingest.SignatureHeader: {ingest.SignatureFor(key, now, []byte(twice))}}, status: 202, duplicates: 1, stored: 6},
		{name: "time more than 5 minutes ahead", brand: "baku", body: ahead, header: signed(ahead), status: 400, problem: "ahead of the receiver's clock", field: "time", stored: 6},
		{name: "time before 2000", brand: "baku", body: ancient, header: signed(ancient), status: 400, problem: "before 2000-01-01", field: "time", stored: 6},
		{name: "too large", brand: "baku", body: strings.Repeat(" ", 2<<20), header: signed(""), status: 413, problem: "larger than", stored: 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/brands/"+c.brand+"/events", bytes.NewBufferString(c.body))
			req.Header = c.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var p ingest.Problem
			_ = json.Unmarshal(raw, &p)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, raw)
			}
			if c.status == http.StatusAccepted {
				var acc ingest.Accepted
				_ = json.Unmarshal(raw, &acc)
				if acc.Duplicates != c.duplicates {
					t.Errorf("answer %s: %d duplicates, want %d", raw, acc.Duplicates, c.duplicates)
				}
			}
			if !strings.Contains(p.Error, c.problem) || (c.field != "" && p.Field != c.field) {
				t.Errorf("problem %+v; want error containing %q and field %q", p, c.problem, c.field)
			}
			if got := storedEvents(t, js); got != c.stored {
				t.Errorf("EVENTS holds %d messages, want %d", got, c.stored)
			}
		})
	}
	// Stored under the partitioned subject, extra fields kept.
	st, _ := js.Stream(context.Background(), bus.StreamEvents)
	m, err := st.GetLastMsgForSubject(context.Background(), bus.StoredEventSubject("baku", bus.Partition("p-7", 4), "p-7", "deposit.completed"))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := ingest.Decode("baku", "p-7", "deposit.completed", m.Data); err != nil || ev.AmountMinor != 500 {
		t.Errorf("binary-mode event stored as %s (%v)", m.Data, err)
	}
	m, _ = st.GetLastMsgForSubject(context.Background(), bus.StoredEventSubject("baku", bus.Partition("p-2", 4), "p-2", "deposit.completed"))
	if !bytes.Contains(m.Data, []byte(`"kept":true`)) {
		t.Errorf("extra data fields were not kept: %s", m.Data)
	}
}

func TestUntransformedEventsAreDeadLettered(t *testing.T) {
	srv := bustest.Start(t, 4)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ingest.DeadLetterUntransformed(ctx, js, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	for _, subj := range []string{"croupier.events.baku.p-1", "croupier.events.baku"} {
		if _, err := js.Publish(ctx, subj, []byte(deposit("u-"+subj, "p-1"))); err != nil {
			t.Fatal(err)
		}
	}
	dl, _ := js.Stream(ctx, bus.StreamDeadLetter)
	bustest.Eventually(t, 10*time.Second, "both events in DEADLETTER and none left in EVENTS", func() bool {
		info, _ := dl.Info(ctx)
		return info.State.Msgs == 2 && storedEvents(t, js) == 0
	})
	m, err := dl.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := bus.Decode[bus.DeadLetter](m.Data)
	if d.Reason != ingest.ReasonUntransformed || d.Subject != "croupier.events.baku.p-1" || !bytes.Contains(d.Data, []byte(`"id":"u-`)) {
		t.Errorf("dead letter %+v", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
