package api

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/dispatcher/channel/viber"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Secret keys with the email providers' webhook keys.
const (
	// SecretSendGridVerificationKey is SendGrid's Signed Event Webhook public key (base64
	// DER, as SendGrid shows it).
	SecretSendGridVerificationKey = "webhookVerificationKey"
	// SecretMailgunSigningKey is Mailgun's HTTP webhook signing key.
	SecretMailgunSigningKey = "webhookSigningKey"
)

// ProviderHooks take the email providers' event webhooks: every delivery, bounce and
// complaint goes to OUTCOMES and is reported to the partition owner as email.bounced (a
// hard bounce or a complaint marks the address undeliverable, three soft ones too); a
// complaint also withdraws marketing email in the consent ledger.
type ProviderHooks struct {
	JS jetstream.JetStream
	// Links is croupier-links, where workers remember provider ids that callbacks name.
	Links      jetstream.KeyValue
	Policies   channel.Policies
	Secrets    channel.Secrets
	Prefs      *prefs.Service
	Partitions int
	Clock      clock.Func
}

// Register adds POST /v1/brands/{brand}/webhooks/{sendgrid|mailgun}/{provider}, where
// provider names the provider in the brand's email ChannelPolicy (its Secret holds the key).
func (h *ProviderHooks) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/sendgrid/{provider}", h.sendgrid)
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/mailgun/{provider}", h.mailgun)
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/twilio/{provider}", h.twilio)
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/twilio/{provider}/inbound", h.twilioInbound)
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/viber/{provider}", h.viber)
	mux.HandleFunc("POST /v1/brands/{brand}/webhooks/smsrest/{provider}", h.smsRest)
}

// smsRest takes a generic aggregator's delivery reports, read through the provider's
// dlr* options (sms package): delivered is recorded; failed is recorded and reported as
// delivery.failed.
func (h *ProviderHooks) smsRest(w http.ResponseWriter, r *http.Request) {
	p, token, ok := h.credentials(w, r, crmv1.ChannelSMS, crmv1.ProviderSMSRest, sms.SecretDLRToken)
	if !ok {
		return
	}
	given, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer {
		given = r.URL.Query().Get("token")
	}
	if !hmac.Equal([]byte(given), token) {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "the dlrToken is required (Authorization: Bearer or ?token=)"})
		return
	}
	opt := func(k, def string) string { return cmp.Or(p.Options[k], def) }
	var ref, status string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if !parseForm(w, r) {
			return
		}
		ref, status = r.PostForm.Get(opt(sms.OptionDLRRef, "reference")), r.PostForm.Get(opt(sms.OptionDLRStatus, "status"))
	} else {
		var body any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxProviderBody)).Decode(&body); err != nil {
			bodyProblem(w, err, "body: ")
			return
		}
		ref = fmt.Sprint(cmp.Or(sms.Lookup(body, opt(sms.OptionDLRRef, "reference")), any("")))
		status = fmt.Sprint(cmp.Or(sms.Lookup(body, opt(sms.OptionDLRStatus, "status")), any("")))
	}
	decision, player, ok := sms.ParseReference(ref)
	if !ok {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the report has no Croupier reference", Field: opt(sms.OptionDLRRef, "reference")})
		return
	}
	rep := report{provider: p.Name, decision: decision, player: player, at: h.Clock.Now(), channel: crmv1.ChannelSMS, detail: "status " + status}
	in := func(list string) bool {
		for _, v := range strings.Split(list, ",") {
			if strings.EqualFold(strings.TrimSpace(v), status) {
				return true
			}
		}
		return false
	}
	switch {
	case in(opt(sms.OptionDLRDelivered, "delivered,DELIVRD")):
		rep.kind = bus.ReportDelivered
	case in(opt(sms.OptionDLRFailed, "failed,undelivered,UNDELIV,REJECTD,EXPIRED")):
		rep.kind = bus.ReportUndelivered
	default:
		ingest.WriteJSON(w, http.StatusOK, map[string]int{"recorded": 0})
		return
	}
	h.record(w, r, []report{rep})
}

// viber takes Viber's callbacks, signed with the account token
// (X-Viber-Content-Signature): "unsubscribed" puts the Viber id on the suppression list;
// "delivered" and "failed" are recorded for the message the token was remembered for
// (a failure is reported as delivery.failed, so the owner falls back, e.g. to SMS).
func (h *ProviderHooks) viber(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProviderBody))
	if err != nil {
		bodyProblem(w, err, "reading the body: ")
		return
	}
	_, token, ok := h.credentials(w, r, crmv1.ChannelViber, crmv1.ProviderViber, viber.SecretAuthToken)
	if !ok {
		return
	}
	if !hmac.Equal([]byte(viber.Signature(string(token), body)), []byte(r.Header.Get("X-Viber-Content-Signature"))) {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "X-Viber-Content-Signature does not verify"})
		return
	}
	var cb ViberCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "body: " + err.Error()})
		return
	}
	if (cb.Event == "delivered" || cb.Event == "failed") && h.Links != nil {
		// The worker remembered which message the token was (Receipt.Track).
		token := string(cb.MessageToken)
		if e, err := h.Links.Get(r.Context(), channel.TrackKey(crmv1.ChannelViber, token)); err == nil {
			var l bus.Link
			if json.Unmarshal(e.Value(), &l) == nil {
				rep := report{provider: r.PathValue("provider"), decision: l.Decision, player: l.Player, at: h.Clock.Now(), channel: crmv1.ChannelViber,
					kind: bus.ReportDelivered}
				if cb.Event == "failed" {
					rep.kind, rep.detail = bus.ReportUndelivered, "Viber: "+cb.Desc
				}
				h.record(w, r, []report{rep})
				return
			}
		}
	}
	if cb.Event == "unsubscribed" && cb.UserID != "" && h.Prefs != nil {
		hash := prefs.AddressHash(crmv1.ChannelViber, cb.UserID)
		if err := h.Prefs.Suppress(r.Context(), r.PathValue("brand"), hash, []crmv1.Channel{crmv1.ChannelViber}, "Viber unsubscribed",
			prefs.SourceViber, "player", ""); err != nil {
			ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
			return
		}
	}
	ingest.WriteJSON(w, http.StatusOK, map[string]string{"event": cb.Event})
}

// OptionInboundURL is the twilio provider option naming the public URL of its inbound
// (reply) webhook, which Twilio signs.
const OptionInboundURL = "inboundURL"

// twilioInbound takes replies to the brand's number: a stop keyword (STOP, СТОП, DAYAN,
// ...) puts the sender's number on the suppression list, as the intake-authenticated
// inbound/sms door does. Twilio gets an empty TwiML answer.
func (h *ProviderHooks) twilioInbound(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	p, token, ok := h.credentials(w, r, crmv1.ChannelSMS, crmv1.ProviderTwilio, sms.SecretAuthToken)
	if !ok || !twilioSigned(w, r, token, p.Options[OptionInboundURL]) {
		return
	}
	from, body := r.PostForm.Get("From"), r.PostForm.Get("Body")
	if IsStop(body) && from != "" && h.Prefs != nil {
		hash := prefs.AddressHash(crmv1.ChannelSMS, from)
		if err := h.Prefs.Suppress(r.Context(), r.PathValue("brand"), hash, []crmv1.Channel{crmv1.ChannelSMS},
			"SMS reply "+strings.ToUpper(strings.TrimSpace(body)), prefs.SourceSMSStop, "player", ""); err != nil {
			ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
}

// twilio takes Twilio's status callbacks (the provider's statusCallback option, with the
// decision and player in the query): delivered is recorded; undelivered or failed is
// recorded and reported as delivery.failed, so the owner tries the next channel.
func (h *ProviderHooks) twilio(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	p, token, ok := h.credentials(w, r, crmv1.ChannelSMS, crmv1.ProviderTwilio, sms.SecretAuthToken)
	if !ok {
		return
	}
	// Twilio signs the URL it called: the configured callback with this request's query.
	called, _, _ := strings.Cut(p.Options[sms.OptionStatusCallback], "?")
	if called != "" && r.URL.RawQuery != "" {
		called += "?" + r.URL.RawQuery
	}
	if !twilioSigned(w, r, token, called) {
		return
	}
	q := r.URL.Query()
	rep := report{provider: p.Name, decision: q.Get("d"), player: q.Get("p"), at: h.Clock.Now(), channel: crmv1.ChannelSMS}
	switch r.PostForm.Get("MessageStatus") {
	case "delivered":
		rep.kind = bus.ReportDelivered
	case "undelivered", "failed":
		rep.kind, rep.detail = bus.ReportUndelivered, "Twilio error "+r.PostForm.Get("ErrorCode")
	default: // queued, sent, ...: progress, not an outcome
		ingest.WriteJSON(w, http.StatusOK, map[string]int{"recorded": 0})
		return
	}
	h.record(w, r, []report{rep})
}

// report is one provider event about one message.
type report struct {
	kind, provider, decision, player, detail string
	at                                       time.Time
	// channel is email unless set.
	channel crmv1.Channel
}

// provider finds the named provider of the path's brand in its ChannelPolicy for ch.
func (h *ProviderHooks) provider(r *http.Request, ch crmv1.Channel, typ crmv1.ProviderType) (*crmv1.Provider, error) {
	brand, name := r.PathValue("brand"), r.PathValue("provider")
	if err := bus.CheckToken("brand", brand); err != nil {
		return nil, err
	}
	cfg := h.Policies.ChannelPolicy(brand, ch)
	if cfg == nil {
		return nil, fmt.Errorf("brand %s has no %s ChannelPolicy", brand, ch)
	}
	for i := range cfg.Spec.Providers {
		if p := &cfg.Spec.Providers[i]; p.Name == name && p.Type == typ && p.SecretRef != nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no %s provider %q with a secretRef in the %s ChannelPolicy", typ, name, ch)
}

// credentials finds the named provider and a key of its Secret, or answers 401 and
// returns false.
func (h *ProviderHooks) credentials(w http.ResponseWriter, r *http.Request, ch crmv1.Channel, typ crmv1.ProviderType, key string) (*crmv1.Provider, []byte, bool) {
	p, err := h.provider(r, ch, typ)
	if err == nil && h.Secrets == nil {
		err = fmt.Errorf("secret %s: no access to Secrets", p.SecretRef.Name)
	}
	var data map[string][]byte
	if err == nil {
		if data, err = h.Secrets.Secret(r.Context(), r.PathValue("brand"), p.SecretRef.Name); err != nil {
			err = fmt.Errorf("secret %s: %v", p.SecretRef.Name, err)
		} else if len(data[key]) == 0 {
			err = fmt.Errorf("secret %s has no %s", p.SecretRef.Name, key)
		}
	}
	if err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return nil, nil, false
	}
	return p, data[key], true
}

// twilioSigned checks X-Twilio-Signature of the parsed form against the URL Twilio
// called, or answers 401 and returns false.
func twilioSigned(w http.ResponseWriter, r *http.Request, token []byte, calledURL string) bool {
	want := sms.Signature(string(token), calledURL, r.PostForm)
	if calledURL == "" || !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Twilio-Signature"))) {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "X-Twilio-Signature does not verify"})
		return false
	}
	return true
}

// parseForm parses a form body or answers 400 and returns false.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "body: " + err.Error()})
		return false
	}
	return true
}

// SendGridEvent is the part of a SendGrid event webhook entry used here; custom_args
// (decision_id, brand, player) come back as top-level fields.
type SendGridEvent struct {
	Event     string `json:"event"`
	Type      string `json:"type"`
	Timestamp int64  `json:"timestamp"`
	Reason    string `json:"reason"`
	Decision  string `json:"decision_id"`
	Player    string `json:"player"`
}

func (h *ProviderHooks) sendgrid(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSendGridBody))
	if err != nil {
		bodyProblem(w, err, "reading the body: ")
		return
	}
	_, key, ok := h.credentials(w, r, crmv1.ChannelEmail, crmv1.ProviderSendGrid, SecretSendGridVerificationKey)
	if !ok {
		return
	}
	if err := VerifySendGrid(key, r.Header.Get(SendGridSignatureHeader), r.Header.Get(SendGridTimestampHeader), body); err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return
	}
	var events []SendGridEvent
	if err := json.Unmarshal(body, &events); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "body: " + err.Error()})
		return
	}
	var reports []report
	for _, e := range events {
		rep := report{provider: r.PathValue("provider"), decision: e.Decision, player: e.Player, at: time.Unix(e.Timestamp, 0)}
		switch {
		case e.Event == "delivered":
			rep.kind = bus.ReportDelivered
		case e.Event == "bounce" && e.Type == "blocked", e.Event == "deferred":
			continue // transient at the receiver: SendGrid retries, nothing to record yet
		case e.Event == "bounce", e.Event == "dropped":
			rep.kind, rep.detail = bus.ReportHard, e.Event
		case e.Event == "spamreport":
			rep.kind = bus.ReportComplaint
		default:
			continue
		}
		reports = append(reports, rep)
	}
	h.record(w, r, reports)
}

// SendGrid's Signed Event Webhook headers.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// VerifySendGrid checks SendGrid's ECDSA signature of timestamp + body with the public key.
func VerifySendGrid(key []byte, sig, ts string, body []byte) error {
	der, err := base64.StdEncoding.DecodeString(string(key))
	if err != nil {
		return fmt.Errorf("the verification key is not base64: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return fmt.Errorf("the verification key: %v", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("the verification key is not an ECDSA key")
	}
	s, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || ts == "" {
		return fmt.Errorf("missing or malformed %s", SendGridSignatureHeader)
	}
	sum := sha256.Sum256(append([]byte(ts), body...))
	if !ecdsa.VerifyASN1(ec, sum[:], s) {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

// MailgunWebhook is the part of a Mailgun webhook used here.
type MailgunWebhook struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData struct {
		Event     string            `json:"event"`
		Severity  string            `json:"severity"`
		Timestamp float64           `json:"timestamp"`
		Reason    string            `json:"reason"`
		Variables map[string]string `json:"user-variables"`
	} `json:"event-data"`
}

func (h *ProviderHooks) mailgun(w http.ResponseWriter, r *http.Request) {
	var m MailgunWebhook
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxProviderBody)).Decode(&m); err != nil {
		bodyProblem(w, err, "body: ")
		return
	}
	_, key, ok := h.credentials(w, r, crmv1.ChannelEmail, crmv1.ProviderMailgun, SecretMailgunSigningKey)
	if !ok {
		return
	}
	if err := VerifyMailgun(key, m.Signature.Timestamp, m.Signature.Token, m.Signature.Signature, h.Clock.Now()); err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return
	}
	e := m.EventData
	rep := report{provider: r.PathValue("provider"), decision: e.Variables["decision_id"], player: e.Variables["player"],
		at: time.Unix(int64(e.Timestamp), 0), detail: e.Reason}
	switch {
	case e.Event == "delivered":
		rep.kind = bus.ReportDelivered
	case e.Event == "failed" && e.Severity == "permanent":
		rep.kind = bus.ReportHard
	case e.Event == "failed":
		rep.kind = bus.ReportSoft
	case e.Event == "complained":
		rep.kind = bus.ReportComplaint
	default:
		ingest.WriteJSON(w, http.StatusOK, map[string]int{"recorded": 0})
		return
	}
	h.record(w, r, []report{rep})
}

// VerifyMailgun checks the hex HMAC-SHA256 of timestamp + token, at most 5 minutes old.
func VerifyMailgun(key []byte, ts, token, sig string, now time.Time) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || token == "" {
		return fmt.Errorf("signature.timestamp and signature.token are required")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature.timestamp is %s from now", d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + token))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

// record stores every report, then answers; a report without a player is skipped (it is
// not about a Croupier message).
func (h *ProviderHooks) record(w http.ResponseWriter, r *http.Request, reports []report) {
	ctx := r.Context()
	brand := r.PathValue("brand")
	n := 0
	for _, rep := range reports {
		if bus.CheckToken("player", rep.player) != nil || rep.decision == "" {
			continue
		}
		if err := h.store(ctx, brand, rep); err != nil {
			ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
			return // the provider retries the whole batch; message ids drop what was stored
		}
		n++
	}
	ingest.WriteJSON(w, http.StatusOK, map[string]int{"recorded": n})
}

func (h *ProviderHooks) store(ctx context.Context, brand string, rep report) error {
	part := bus.Partition(rep.player, h.Partitions)
	ch := cmp.Or(rep.channel, crmv1.ChannelEmail)
	id := rep.decision + "." + string(ch) + "." + rep.kind
	o := bus.Outcome{Time: rep.at.UTC(), DecisionID: rep.decision, Brand: brand, Player: rep.player, Kind: bus.OutcomeReport,
		Result: rep.kind, Reason: rep.kind, Detail: rep.detail, Channel: ch, Provider: rep.provider}
	b, _ := bus.Encode(o)
	if _, err := h.JS.Publish(ctx, bus.OutcomeSubject(brand, part, rep.player), b, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	switch rep.kind {
	case bus.ReportUndelivered:
		data, _ := json.Marshal(map[string]string{"decisionId": rep.decision, "channel": string(ch), "reason": rep.detail})
		ev := bus.CloudEvent{SpecVersion: "1.0", ID: "delivery.failed/" + id, Source: ingest.SourceCroupier, Type: ingest.TypeDeliveryFailed,
			Subject: rep.player, Time: rep.at.UTC(), Data: data}
		eb, _ := json.Marshal(ev)
		if _, err := h.JS.Publish(ctx, bus.EventSubject(brand, rep.player, ingest.TypeDeliveryFailed), eb, jetstream.WithMsgID(ev.ID)); err != nil {
			return err
		}
	case bus.ReportHard, bus.ReportSoft, bus.ReportComplaint:
		data, _ := json.Marshal(map[string]string{"kind": rep.kind, "decisionId": rep.decision})
		ev := bus.CloudEvent{SpecVersion: "1.0", ID: "email.bounced/" + id, Source: ingest.SourceCroupier, Type: ingest.TypeEmailBounced,
			Subject: rep.player, Time: rep.at.UTC(), Data: data}
		eb, _ := json.Marshal(ev)
		if _, err := h.JS.Publish(ctx, bus.EventSubject(brand, rep.player, ingest.TypeEmailBounced), eb, jetstream.WithMsgID(ev.ID)); err != nil {
			return err
		}
		// A complaint is also the player's withdrawal of marketing email, on the ledger.
		if rep.kind == bus.ReportComplaint && h.Prefs != nil {
			if _, err := h.Prefs.Withdraw(ctx, brand, rep.player, crmv1.CategoryMarketing, []crmv1.Channel{crmv1.ChannelEmail},
				prefs.SourceComplaint, rep.provider); err != nil {
				return err
			}
		}
	}
	return nil
}
