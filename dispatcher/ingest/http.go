package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Content types of the CloudEvents HTTP binding.
const (
	ContentTypeStructured = "application/cloudevents+json"
	ContentTypeBatch      = "application/cloudevents-batch+json"
	// SignatureHeader carries t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
	SignatureHeader = "Croupier-Signature"
	// SignatureMaxAge is how old (or how far ahead) a signature's time may be.
	SignatureMaxAge = 5 * time.Minute
)

// BrandKeys are a brand's intake credentials (from the Secret its PreferencePolicy names).
type BrandKeys struct {
	// HMAC keys; more than one while a key is rotated.
	HMAC [][]byte
	// Bearer tokens; more than one while a token is rotated.
	Bearer []string
	// JWT keys verify players' tokens (HS256); more than one while a key is rotated.
	JWT [][]byte
	// Link signs unsubscribe and confirmation links (linkKey, else the first HMAC key).
	Link []byte
	// DataKeyWrap are the key-encryption keys of the players' data keys (current first,
	// then the previous one while it is rotated out); none: stored unwrapped.
	DataKeyWrap [][]byte
}

// ErrNoKeys means the brand has no PreferencePolicy with integration keys.
var ErrNoKeys = errors.New("the brand has no intake keys: its PreferencePolicy must name a Secret in spec.integration.secretRef with hmacKey or bearerToken")

// KeySource finds a brand's keys.
type KeySource interface {
	Keys(ctx context.Context, brand string) (BrandKeys, error)
}

// Intake is the authenticated HTTP endpoint POST /v1/brands/{brand}/events: one structured
// event, a batch, or one event in binary mode (ce-* headers). It validates every event
// before publishing any, so a bad request changes nothing.
type Intake struct {
	JS    jetstream.JetStream
	Keys  KeySource
	Log   *slog.Logger
	Clock clock.Func
	// MaxBody is the largest request body (default 5 MiB).
	MaxBody int64
	// MaxBatch is the most events in one batch (default 1000).
	MaxBatch int
	// Count, when set, counts events by type and result.
	Count func(eventType, result string)
}

// Problem is the JSON body of an error response.
type Problem struct {
	Error  string `json:"error"`
	Index  *int   `json:"index,omitempty"`
	Line   int    `json:"line,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Accepted is the JSON body of a 202.
type Accepted struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteProblem writes an error response.
func WriteProblem(w http.ResponseWriter, status int, p Problem) { WriteJSON(w, status, p) }

func (in *Intake) count(t, result string) {
	if in.Count != nil {
		in.Count(TypeLabel(t), result)
	}
}

// Event results at the HTTP intake.
const (
	ResultAccepted  = "accepted"
	ResultDuplicate = "duplicate"
	ResultRejected  = "rejected"
)

func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	brand := r.PathValue("brand")
	if err := bus.CheckToken("brand", brand); err != nil {
		WriteProblem(w, http.StatusBadRequest, Problem{Error: err.Error(), Field: "brand"})
		return
	}
	maxBody := in.MaxBody
	if maxBody <= 0 {
		maxBody = 5 << 20
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteProblem(w, http.StatusRequestEntityTooLarge, Problem{Error: fmt.Sprintf("request body is larger than %d bytes", maxBody)})
			return
		}
		WriteProblem(w, http.StatusBadRequest, Problem{Error: "reading the body: " + err.Error()})
		return
	}
	if status, err := in.authenticate(r, brand, body); err != nil {
		in.count("", ResultRejected)
		WriteProblem(w, status, Problem{Error: err.Error()})
		return
	}
	raws, status, prob := in.split(r, body)
	if prob != nil {
		in.count("", ResultRejected)
		WriteProblem(w, status, *prob)
		return
	}
	events := make([]Encoded, 0, len(raws))
	for i, raw := range raws {
		ev, err := DecodeAt(brand, "", "", raw, in.Clock.Now())
		if err != nil {
			in.count("", ResultRejected)
			p := Problem{Error: "event rejected: " + err.Error()}
			if len(raws) > 1 || r.Header.Get("Content-Type") == ContentTypeBatch {
				p.Index = &i
				p.Error = fmt.Sprintf("event %d rejected, nothing was accepted: %v", i, err)
			}
			var fe *Error
			if errors.As(err, &fe) {
				p.Field, p.Reason = fe.Field, fe.Reason
			}
			WriteProblem(w, http.StatusBadRequest, p)
			return
		}
		if Internal(ev.Type) {
			in.count(ev.Type, ResultRejected)
			WriteProblem(w, http.StatusBadRequest, Problem{Error: fmt.Sprintf("event %d: type %q is published by Croupier only", i, ev.Type), Index: &i, Field: "type"})
			return
		}
		events = append(events, Encoded{Brand: brand, Player: ev.Player, Type: ev.Type, Key: ev.IdempotencyKey(), Body: raw})
	}
	acc, err := Publish(r.Context(), in.JS, events)
	if err != nil {
		in.Log.Error("publishing events", "brand", brand, "err", err)
		WriteProblem(w, http.StatusServiceUnavailable, Problem{Error: fmt.Sprintf("event store unavailable after %d of %d events; retrying the request is safe (events are idempotent by source and id)", acc.Accepted+acc.Duplicates, len(events))})
		return
	}
	for _, e := range events {
		in.count(e.Type, ResultAccepted)
	}
	WriteJSON(w, http.StatusAccepted, acc)
}

// authenticate checks a bearer token or the HMAC signature with the brand's keys.
func (in *Intake) authenticate(r *http.Request, brand string, body []byte) (int, error) {
	keys, err := in.Keys.Keys(r.Context(), brand)
	if errors.Is(err, ErrNoKeys) {
		return http.StatusUnauthorized, err
	}
	if err != nil {
		in.Log.Error("reading intake keys", "brand", brand, "err", err)
		return http.StatusServiceUnavailable, errors.New("the brand's keys cannot be read now; retry later")
	}
	if err := Authenticate(r, body, keys, in.Clock.Now()); err != nil {
		return http.StatusUnauthorized, err
	}
	return 0, nil
}

// Authenticate checks a request from the casino platform or a provider callback: a bearer
// token or the Croupier-Signature HMAC with the brand's keys.
func Authenticate(r *http.Request, body []byte, keys BrandKeys, now time.Time) error {
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			return errors.New("Authorization: only Bearer tokens are accepted")
		}
		for _, want := range keys.Bearer {
			if subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
				return nil
			}
		}
		return errors.New("Authorization: bearer token not valid for this brand")
	}
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return errors.New("unauthenticated: send " + SignatureHeader + " (t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">) or Authorization: Bearer <token>")
	}
	_, err := VerifySignature(sig, body, keys.HMAC, now)
	return err
}

// VerifySignature checks a Croupier-Signature header against the body and keys.
func VerifySignature(header string, body []byte, keys [][]byte, now time.Time) (int, error) {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return http.StatusUnauthorized, errors.New(SignatureHeader + ": t must be the signing time in Unix seconds")
	}
	if len(sigs) == 0 {
		return http.StatusUnauthorized, errors.New(SignatureHeader + ": v1 must be a hex HMAC-SHA256")
	}
	if age := now.Sub(time.Unix(t, 0)); age > SignatureMaxAge || age < -SignatureMaxAge {
		return http.StatusUnauthorized, fmt.Errorf("%s: signed %s ago; requests older than %s are refused (replay window)", SignatureHeader, age.Round(time.Second), SignatureMaxAge)
	}
	if len(keys) == 0 {
		return http.StatusUnauthorized, errors.New(SignatureHeader + ": the brand has no hmacKey")
	}
	for _, key := range keys {
		want := Sign(key, ts, body)
		for _, s := range sigs {
			if hmac.Equal(s, want) {
				return 0, nil
			}
		}
	}
	return http.StatusUnauthorized, errors.New(SignatureHeader + ": signature does not match the body")
}

// Sign is HMAC-SHA256(key, "<t>.<body>").
func Sign(key []byte, t string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(t))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignatureFor builds a Croupier-Signature header value.
func SignatureFor(key []byte, now time.Time, body []byte) string {
	t := strconv.FormatInt(now.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(Sign(key, t, body))
}

// split returns the request's events as structured JSON, by content mode.
func (in *Intake) split(r *http.Request, body []byte) ([][]byte, int, *Problem) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && ct != "" {
		return nil, http.StatusUnsupportedMediaType, &Problem{Error: fmt.Sprintf("Content-Type %q is not a media type", ct)}
	}
	if r.Header.Get("ce-specversion") != "" {
		raw, err := fromBinary(r.Header, mt, body)
		if err != nil {
			return nil, http.StatusBadRequest, &Problem{Error: err.Error()}
		}
		return [][]byte{raw}, 0, nil
	}
	switch mt {
	case ContentTypeStructured, "application/json":
		return [][]byte{body}, 0, nil
	case ContentTypeBatch:
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, http.StatusBadRequest, &Problem{Error: "batch must be a JSON array of CloudEvents: " + err.Error()}
		}
		max := in.MaxBatch
		if max <= 0 {
			max = 1000
		}
		if len(raws) == 0 || len(raws) > max {
			return nil, http.StatusBadRequest, &Problem{Error: fmt.Sprintf("batch has %d events; send 1 to %d", len(raws), max)}
		}
		out := make([][]byte, len(raws))
		for i, r := range raws {
			out[i] = r
		}
		return out, 0, nil
	}
	return nil, http.StatusUnsupportedMediaType, &Problem{Error: fmt.Sprintf("Content-Type %q: send %s, %s, or binary mode (ce-* headers)", ct, ContentTypeStructured, ContentTypeBatch)}
}

// fromBinary builds a structured event from a binary-mode request.
func fromBinary(h http.Header, mt string, body []byte) ([]byte, error) {
	if mt != "" && mt != "application/json" {
		return nil, fmt.Errorf("binary mode: Content-Type %q: data must be application/json", mt)
	}
	ce := map[string]any{
		"specversion": h.Get("ce-specversion"), "id": h.Get("ce-id"), "source": h.Get("ce-source"),
		"type": h.Get("ce-type"), "subject": h.Get("ce-subject"), "datacontenttype": "application/json",
	}
	if t := h.Get("ce-time"); t != "" {
		ce["time"] = t
	}
	if len(body) > 0 {
		if !json.Valid(body) {
			return nil, errors.New("binary mode: body is not valid JSON")
		}
		ce["data"] = json.RawMessage(body)
	}
	return json.Marshal(ce)
}

// Encoded is a validated event ready to publish.
type Encoded struct {
	Brand, Player, Type string
	// Key is the idempotency key (source + id), used as the JetStream message id.
	Key  string
	Body []byte
}

// DuplicateInProcess is JetStream's error code for a message id whose first message is
// still being stored (JSStreamDuplicateMessageConflict).
const DuplicateInProcess = 10158

// Publish publishes events asynchronously to EVENTS and waits for every acknowledgement;
// the stream drops a repeated message id within its window (counted as a duplicate).
func Publish(ctx context.Context, js jetstream.JetStream, events []Encoded) (Accepted, error) {
	var acc Accepted
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		f, err := js.PublishAsync(bus.EventSubject(e.Brand, e.Player, e.Type), e.Body, jetstream.WithMsgID(e.Key), jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return acc, err
		}
		futures = append(futures, f)
	}
	var firstErr error
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			if a.Duplicate {
				acc.Duplicates++
			} else {
				acc.Accepted++
			}
		case err := <-f.Err():
			// The same id twice in a batch, or identical requests racing: the stream
			// holds the first one while it is stored (409, 10158). A duplicate, not a failure.
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.ErrorCode(DuplicateInProcess) {
				acc.Duplicates++
				continue
			}
			if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return acc, ctx.Err()
		}
	}
	return acc, firstErr
}
