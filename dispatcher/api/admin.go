// Package api is the dispatcher's admin API (player import, erasure, export; later
// explain, history, preview and test sends). Authentication is delegated to Kubernetes the
// way k8s.io/apiserver's delegating authentication does it (bearer tokens by TokenReview,
// client certificates against the cluster's client CA); authorization is a
// SubjectAccessReview on the virtual resources of admin.crm.croupier.dev in the brand's
// namespace, so every caller is checked by their own RBAC.
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// Admin serves the admin API.
type Admin struct {
	Authn      authenticator.Request
	Authz      authorizer.Authorizer
	JS         jetstream.JetStream
	Partitions int
	Log        *slog.Logger
	Clock      clock.Func
	// MaxImport is the largest NDJSON import body (default 64 MiB; split larger files).
	MaxImport int64
	// EraseWait is how long an erasure request waits for the partition owner (default 30s).
	EraseWait time.Duration
	// DataKeys open the players' sealed profiles and inboxes for an export.
	DataKeys *datakey.Reader
}

// opener opens sealed player data with keys (nil when there are none).
func opener(ctx context.Context, keys *datakey.Reader) func(brand, player string, sealed []byte) ([]byte, error) {
	if keys == nil {
		return nil
	}
	return func(brand, player string, sealed []byte) ([]byte, error) {
		return keys.Open(ctx, brand, player, sealed)
	}
}

// Register adds the admin routes to mux.
func (a *Admin) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/brands/{brand}/players/import", a.guard("create", crmv1.AdminPlayersImport, a.importPlayers))
	mux.Handle("POST /v1/brands/{brand}/players/{player}/erase", a.guard("create", crmv1.AdminPlayersErase, a.erase))
	mux.Handle("GET /v1/brands/{brand}/players/{player}/export", a.guard("get", crmv1.AdminPlayersExport, a.export))
}

type handler func(w http.ResponseWriter, r *http.Request, brand string, u user.Info)

// guard authenticates the caller and asks the API server whether they may verb the
// resource in the brand's namespace.
func (a *Admin) guard(verb, resource string, h handler) http.Handler {
	res, sub, _ := strings.Cut(resource, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		brand := r.PathValue("brand")
		if err := bus.CheckToken("brand", brand); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "brand"})
			return
		}
		if p := r.PathValue("player"); p != "" {
			if err := bus.CheckToken("player", p); err != nil {
				ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "player"})
				return
			}
		}
		resp, ok, err := a.Authn.AuthenticateRequest(r)
		if err != nil || !ok {
			a.Log.Debug("unauthenticated admin request", "path", r.URL.Path, "err", err)
			ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "authentication required: a Kubernetes bearer token or a client certificate signed by the cluster's client CA"})
			return
		}
		attrs := authorizer.AttributesRecord{
			User: resp.User, Verb: verb, Namespace: brand, APIGroup: crmv1.AdminGroup, APIVersion: "*",
			Resource: res, Subresource: sub, Name: r.PathValue("player"), ResourceRequest: true,
		}
		dec, reason, err := a.Authz.Authorize(r.Context(), attrs)
		if err != nil && dec != authorizer.DecisionAllow {
			a.Log.Error("authorizing", "user", resp.User.GetName(), "resource", resource, "err", err)
		}
		if dec != authorizer.DecisionAllow {
			msg := fmt.Sprintf("user %q may not %s %s (%s) in brand %q", resp.User.GetName(), verb, resource, crmv1.AdminGroup, brand)
			if reason != "" {
				msg += ": " + reason
			}
			ingest.WriteProblem(w, http.StatusForbidden, ingest.Problem{Error: msg})
			return
		}
		h(w, r, brand, resp.User)
	})
}

func (a *Admin) audit(ctx context.Context, brand, player, action, actor, note string) error {
	b, err := bus.Encode(bus.AuditEntry{Time: a.Clock.Now().UTC(), Brand: brand, Kind: bus.KindPlayer, Name: player, Action: action, Actor: actor, Note: note})
	if err != nil {
		return err
	}
	_, err = a.JS.Publish(ctx, bus.AuditSubject(brand, bus.KindPlayer, player), b)
	return err
}

// ImportResult is the answer to an import.
type ImportResult struct {
	Lines      int `json:"lines"`
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// importPlayers takes NDJSON profiles (one JSON object per line, with "id") from the
// casino's account system. Every line is validated before anything is published; the
// partition owners then apply them as player.imported events.
func (a *Admin) importPlayers(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	max := a.MaxImport
	if max <= 0 {
		max = 64 << 20
	}
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, max))
	sc.Buffer(make([]byte, 0, 64<<10), ingest.MaxEventBytes)
	var events []ingest.Encoded
	line := 0
	now := a.Clock.Now().UTC()
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("line %d is not a JSON object; nothing was imported", line), Line: line, Reason: err.Error()})
			return
		}
		if err := bus.CheckToken("id", head.ID); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("line %d: %v; nothing was imported", line, err), Line: line, Field: "id"})
			return
		}
		sum := sha256.Sum256(raw)
		ce := bus.CloudEvent{
			SpecVersion: "1.0", ID: "import-" + hex.EncodeToString(sum[:12]), Source: ingest.SourceCroupier + "/import",
			Type: ingest.TypeImported, Subject: head.ID, Time: now, DataContentType: "application/json", Data: json.RawMessage(raw),
		}
		body, err := json.Marshal(ce)
		if err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("line %d: %v", line, err), Line: line})
			return
		}
		if _, err := ingest.Decode(brand, head.ID, ingest.TypeImported, body); err != nil {
			p := ingest.Problem{Error: fmt.Sprintf("line %d rejected, nothing was imported: %v", line, err), Line: line}
			var fe *ingest.Error
			if errors.As(err, &fe) {
				p.Field, p.Reason = strings.TrimPrefix(fe.Field, "data."), fe.Reason
			}
			ingest.WriteProblem(w, http.StatusBadRequest, p)
			return
		}
		events = append(events, ingest.Encoded{Brand: brand, Player: head.ID, Type: ingest.TypeImported, Key: ce.IdempotencyKey(), Body: body})
	}
	if err := sc.Err(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ingest.WriteProblem(w, http.StatusRequestEntityTooLarge, ingest.Problem{Error: fmt.Sprintf("import is larger than %d bytes; split the file; nothing was imported", max)})
			return
		}
		if errors.Is(err, bufio.ErrTooLong) {
			ingest.WriteProblem(w, http.StatusRequestEntityTooLarge, ingest.Problem{Line: line + 1,
				Error: fmt.Sprintf("line %d is longer than %d bytes, the limit of one profile; nothing was imported", line+1, ingest.MaxEventBytes)})
			return
		}
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("reading line %d: %v; nothing was imported", line+1, err), Line: line + 1})
		return
	}
	if len(events) == 0 {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "no profiles: send one JSON object per line (application/x-ndjson)"})
		return
	}
	acc, err := ingest.Publish(r.Context(), a.JS, events)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: fmt.Sprintf("event store unavailable after %d of %d profiles; repeating the import is safe", acc.Accepted+acc.Duplicates, len(events))})
		return
	}
	if err := a.audit(r.Context(), brand, "import", players.AuditImported, u.GetName(), fmt.Sprintf("%d profiles imported (%d already known)", acc.Accepted, acc.Duplicates)); err != nil {
		a.Log.Error("auditing import", "brand", brand, "err", err)
	}
	ingest.WriteJSON(w, http.StatusAccepted, ImportResult{Lines: len(events), Accepted: acc.Accepted, Duplicates: acc.Duplicates})
}

// EraseResult is the answer to an erasure.
type EraseResult struct {
	Player  string `json:"player"`
	Status  string `json:"status"`
	Request string `json:"request"`
}

// erase asks the player's partition owner to erase the player (in order with the player's
// other events) and waits for the tombstone.
func (a *Admin) erase(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	player := r.PathValue("player")
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := "erase-" + hex.EncodeToString(rnd[:])
	ce := ingest.ErasureRequest(player, u.GetName(), id, a.Clock.Now())
	body, _ := json.Marshal(ce)
	if _, err := a.JS.Publish(r.Context(), bus.EventSubject(brand, player, ingest.TypeErasureRequested), body, jetstream.WithMsgID(ce.IdempotencyKey())); err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "event store unavailable; nothing was erased; retry"})
		return
	}
	wait := a.EraseWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	// Erased: the owner's tombstone (everything Croupier wrote purged, the data key gone)
	// and the eraser's overwrite of what the platform published about the player.
	deadline := a.Clock.Now().Add(wait)
	if a.awaitTombstone(r.Context(), brand, player, wait) && a.awaitOverwritten(r.Context(), brand, player, id, time.Until(deadline)) {
		ingest.WriteJSON(w, http.StatusOK, EraseResult{Player: player, Status: "erased", Request: id})
		return
	}
	ingest.WriteJSON(w, http.StatusAccepted, EraseResult{Player: player, Status: "queued", Request: id})
}

// awaitOverwritten waits until the eraser records (AUDIT events-overwritten) that it
// overwrote the player's events for erasure request id, or wait passes.
func (a *Admin) awaitOverwritten(ctx context.Context, brand, player, id string, wait time.Duration) bool {
	if wait <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := a.JS.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.AuditSubject(brand, bus.KindPlayer, player)}, InactiveThreshold: 10 * time.Second})
	if err != nil {
		return false
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(time.Until(deadlineOf(ctx))))
		if err != nil {
			return false
		}
		if e, err := bus.Decode[bus.AuditEntry](m.Data()); err == nil && e.Action == players.AuditOverwritten && strings.Contains(e.Note, id) {
			return true
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// awaitTombstone watches the player's croupier-players key until the owner writes the
// tombstone or wait passes.
func (a *Admin) awaitTombstone(ctx context.Context, brand, player string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	kv, err := a.JS.KeyValue(ctx, bus.BucketPlayers)
	if err != nil {
		return false
	}
	w, err := kv.Watch(ctx, bus.PlayerKey(brand, bus.Partition(player, a.Partitions), player), jetstream.IgnoreDeletes())
	if err != nil {
		return false
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return false
			}
			if e == nil {
				continue
			}
			// The tombstone holds nothing sealed.
			if p, err := players.DecodeRecord(e.Value(), nil); err == nil && p.Erased {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// Export is everything held about a player.
type Export struct {
	Brand       string            `json:"brand"`
	Player      string            `json:"player"`
	ExportedAt  time.Time         `json:"exportedAt"`
	Profile     json.RawMessage   `json:"profile,omitempty"`
	Preferences json.RawMessage   `json:"preferences,omitempty"`
	State       json.RawMessage   `json:"state,omitempty"`
	Inbox       json.RawMessage   `json:"inbox,omitempty"`
	Consent     []json.RawMessage `json:"consent"`
	Events      []json.RawMessage `json:"events"`
	Intents     []json.RawMessage `json:"intents"`
	Outcomes    []json.RawMessage `json:"outcomes"`
}

func (a *Admin) export(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	ctx := r.Context()
	player := r.PathValue("player")
	part := bus.Partition(player, a.Partitions)
	key := bus.PlayerKey(brand, part, player)
	ex := Export{Brand: brand, Player: player, ExportedAt: a.Clock.Now().UTC()}
	for _, kvs := range []struct {
		bucket string
		dst    *json.RawMessage
	}{{bus.BucketPlayers, &ex.Profile}, {bus.BucketPrefs, &ex.Preferences}, {bus.BucketState, &ex.State}, {bus.BucketInbox, &ex.Inbox}} {
		kv, err := a.JS.KeyValue(ctx, kvs.bucket)
		if err != nil {
			ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "store unavailable: " + kvs.bucket})
			return
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "store unavailable: " + kvs.bucket})
			return
		}
		switch kvs.bucket {
		case bus.BucketPlayers:
			p, _, err := players.Read(ctx, kv, brand, part, player, opener(ctx, a.DataKeys))
			if err != nil {
				ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "reading the profile: " + err.Error()})
				return
			}
			*kvs.dst, _ = json.Marshal(&p)
		case bus.BucketInbox:
			in, _, err := (&inapp.Store{KV: kv, Partitions: a.Partitions, Keys: a.DataKeys}).Get(ctx, brand, player)
			if err != nil {
				ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: err.Error()})
				return
			}
			*kvs.dst, _ = json.Marshal(in)
		default:
			*kvs.dst = asJSON(e.Value())
		}
	}
	for _, s := range []struct {
		stream, filter string
		dst            *[]json.RawMessage
	}{
		{bus.StreamConsent, bus.ConsentSubject(brand, part, player), &ex.Consent},
		{bus.StreamEvents, bus.StoredPlayerEventsFilter(brand, part, player), &ex.Events},
		{bus.StreamIntents, bus.IntentSubject(brand, part, player), &ex.Intents},
		{bus.StreamIntents, bus.PlayerSchedulesFilter(brand, part, player), &ex.Intents},
		{bus.StreamOutcomes, bus.OutcomeSubject(brand, part, player), &ex.Outcomes},
	} {
		msgs, err := ReadSubject(ctx, a.JS, s.stream, s.filter)
		if err != nil {
			ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "store unavailable: " + s.stream})
			return
		}
		for _, m := range msgs {
			*s.dst = append(*s.dst, asJSON(m))
		}
	}
	if ex.Profile == nil && ex.Preferences == nil && len(ex.Consent)+len(ex.Events)+len(ex.Outcomes) == 0 {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: fmt.Sprintf("nothing is held about player %q in brand %q", player, brand)})
		return
	}
	if err := a.audit(ctx, brand, player, players.AuditExported, u.GetName(), "export of everything held about the player"); err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "audit unavailable; nothing exported"})
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", brand+"-"+player+".json"))
	ingest.WriteJSON(w, http.StatusOK, ex)
}

func asJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return json.RawMessage(bytes.Clone(b))
	}
	s, _ := json.Marshal(string(b))
	return s
}

// ReadSubject reads every message of a stream on a subject filter, oldest first.
func ReadSubject(ctx context.Context, js jetstream.JetStream, stream, filter string) ([][]byte, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	pending := int(info.NumPending)
	out := make([][]byte, 0, pending)
	for len(out) < pending {
		batch, err := c.Fetch(min(pending-len(out), 500), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, bytes.Clone(m.Data()))
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}
