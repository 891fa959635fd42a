package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Redirects serve the short links and open pixels that channel workers put in messages:
// GET /l/{id} records the click and redirects; GET /o/{id} records the open and answers a
// transparent GIF. Both go to OUTCOMES as reports (and from there to the casino's clicked
// callback).
type Redirects struct {
	JS         jetstream.JetStream
	Links      jetstream.KeyValue
	Partitions int
	Clock      clock.Func
}

// Register adds the routes.
func (rd *Redirects) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /l/{id}", rd.click)
	mux.HandleFunc("GET /o/{id}", rd.open)
}

// pixel is a 1x1 transparent GIF.
var pixel, _ = base64.StdEncoding.DecodeString("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

func (rd *Redirects) lookup(ctx context.Context, id string) (*bus.Link, error) {
	if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 16 {
		return nil, jetstream.ErrKeyNotFound
	}
	e, err := rd.Links.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var l bus.Link
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

func (rd *Redirects) record(ctx context.Context, l *bus.Link, kind, detail string) error {
	o := bus.Outcome{Time: rd.Clock.Now().UTC(), DecisionID: l.Decision, Brand: l.Brand, Player: l.Player, Campaign: l.Campaign,
		Kind: bus.OutcomeReport, Result: kind, Reason: kind, Detail: detail, Channel: l.Channel}
	b, _ := bus.Encode(o)
	_, err := rd.JS.Publish(ctx, bus.OutcomeSubject(l.Brand, bus.Partition(l.Player, rd.Partitions), l.Player), b)
	return err
}

func (rd *Redirects) click(w http.ResponseWriter, r *http.Request) {
	l, err := rd.lookup(r.Context(), r.PathValue("id"))
	if err != nil || l.URL == "" {
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
			return
		}
		writePage(w, http.StatusNotFound, "Link expired", "This link is no longer valid.", "", "")
		return
	}
	// The destination without its query (no tracking parameters, no player data) says
	// which link of the message was followed.
	detail := l.URL
	if u, err := url.Parse(l.URL); err == nil {
		detail = u.Scheme + "://" + u.Host + u.Path
	}
	if err := rd.record(r.Context(), l, bus.ReportClicked, detail); err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "recording the click: " + err.Error()})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, l.URL, http.StatusFound)
}

func (rd *Redirects) open(w http.ResponseWriter, r *http.Request) {
	if l, err := rd.lookup(r.Context(), r.PathValue("id")); err == nil && l.URL == "" {
		_ = rd.record(r.Context(), l, bus.ReportOpened, "")
	}
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-store, max-age=0")
	_, _ = w.Write(pixel)
}
