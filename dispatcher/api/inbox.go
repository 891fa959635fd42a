package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Inbox is the player's in-app inbox: list, mark read, and a live feed (Server-Sent
// Events) the casino's front end subscribes to with the player's JWT.
type Inbox struct {
	Store *inapp.Store
	Clock clock.Func
	// Heartbeat is the period of SSE comments that keep proxies from closing an idle
	// feed (default 25s).
	Heartbeat time.Duration
	// Done, when closed, ends every live feed (the server is shutting down).
	Done <-chan struct{}
}

// InboxView is what the player sees: messages not yet expired, and the unread count.
type InboxView struct {
	Unread   int             `json:"unread"`
	Messages []inapp.Message `json:"messages"`
}

func (ib *Inbox) view(in *inapp.Inbox) InboxView {
	in.Prune(ib.Clock.Now(), inapp.DefaultMax*10)
	if in.Messages == nil {
		in.Messages = []inapp.Message{}
	}
	return InboxView{Unread: in.Unread(), Messages: in.Messages}
}

// Register adds the player routes; players authenticate through p (the brand's JWT; the
// feed also takes ?access_token=, since browsers' EventSource sends no headers).
func (ib *Inbox) Register(mux *http.ServeMux, p *Preferences) {
	mux.Handle("GET /v1/brands/{brand}/me/inbox", p.player(ib.list))
	mux.Handle("POST /v1/brands/{brand}/me/inbox/read", p.player(ib.readAll))
	mux.Handle("POST /v1/brands/{brand}/me/inbox/{id}/read", p.player(ib.read))
	mux.Handle("GET /v1/brands/{brand}/me/inbox/stream", p.player(ib.stream))
}

func (ib *Inbox) list(w http.ResponseWriter, r *http.Request, brand, player string) {
	in, _, err := ib.Store.Get(r.Context(), brand, player)
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, ib.view(in))
}

func (ib *Inbox) read(w http.ResponseWriter, r *http.Request, brand, player string) {
	ib.mark(w, r, brand, player, r.PathValue("id"))
}

func (ib *Inbox) readAll(w http.ResponseWriter, r *http.Request, brand, player string) {
	ib.mark(w, r, brand, player, "")
}

func (ib *Inbox) mark(w http.ResponseWriter, r *http.Request, brand, player, id string) {
	in, err := ib.Store.MarkRead(r.Context(), brand, player, id, ib.Clock.Now())
	switch {
	case errors.Is(err, inapp.ErrNotFound):
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: err.Error(), Field: "id"})
	case err != nil:
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
	default:
		ingest.WriteJSON(w, http.StatusOK, ib.view(in))
	}
}

// stream sends the inbox as an "inbox" event at once and after every change.
func (ib *Inbox) stream(w http.ResponseWriter, r *http.Request, brand, player string) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: "streaming unsupported"})
		return
	}
	ctx := r.Context()
	watch, err := ib.Store.KV.Watch(ctx, ib.Store.Key(brand, player))
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	defer func() { _ = watch.Stop() }()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(in *inapp.Inbox, rev uint64) bool {
		b, _ := json.Marshal(ib.view(in))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: inbox\ndata: %s\n\n", rev, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	every := ib.Heartbeat
	if every <= 0 {
		every = 25 * time.Second
	}
	beat := time.NewTicker(every)
	defer beat.Stop()
	caughtUp := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ib.Done:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case e, ok := <-watch.Updates():
			if !ok {
				return
			}
			if e == nil {
				if !caughtUp && !send(&inapp.Inbox{}, 0) {
					return
				}
				caughtUp = true
				continue
			}
			var in inapp.Inbox
			if e.Operation() == jetstream.KeyValuePut {
				_ = json.Unmarshal(e.Value(), &in)
			}
			caughtUp = true
			if !send(&in, e.Revision()) {
				return
			}
		}
	}
}
