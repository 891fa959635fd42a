package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"

	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/nats-io/nats.go/jetstream"
)

// Preferences serves the preference centre: players (with the brand's JWT) read and
// change their own settings; one-click unsubscribe links, SMS STOP keywords and Viber
// unsubscribe callbacks withdraw consent; the support desk and the suppression list go
// through the admin API (Kubernetes authorization, see Admin).
type Preferences struct {
	Service *prefs.Service
	Keys    ingest.KeySource
	// PublicURL is the base of links in messages, e.g. https://crm.example-casino.az.
	PublicURL string
	Log       *slog.Logger
	Clock     clock.Func
	// LinkTTL is how long an unsubscribe or confirmation link works (default 90 days).
	LinkTTL time.Duration
}

// Register adds the player and public routes.
func (p *Preferences) Register(mux *http.ServeMux) {
	mux.Handle("GET /v1/brands/{brand}/me/preferences", p.player(p.get))
	mux.Handle("PUT /v1/brands/{brand}/me/preferences", p.player(p.put))
	mux.HandleFunc("GET /v1/brands/{brand}/unsubscribe", p.unsubscribePage)
	mux.HandleFunc("POST /v1/brands/{brand}/unsubscribe", p.unsubscribe)
	mux.HandleFunc("GET /v1/brands/{brand}/confirm", p.confirm)
	mux.HandleFunc("POST /v1/brands/{brand}/confirm", p.confirm)
	mux.HandleFunc("POST /v1/brands/{brand}/inbound/sms", p.inboundSMS)
	mux.HandleFunc("POST /v1/brands/{brand}/inbound/viber", p.inboundViber)
}

// RegisterAdmin adds the support-desk and suppression-list routes to the admin API.
func (p *Preferences) RegisterAdmin(mux *http.ServeMux, a *Admin) {
	mux.Handle("GET /v1/brands/{brand}/players/{player}/preferences", a.guard("get", crmv1.AdminPlayersPreferences,
		func(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
			p.get(w, r, brand, r.PathValue("player"))
		}))
	mux.Handle("PUT /v1/brands/{brand}/players/{player}/preferences", a.guard("update", crmv1.AdminPlayersPreferences,
		func(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
			p.change(w, r, brand, r.PathValue("player"), prefs.SourceSupport, "support:"+u.GetName())
		}))
	mux.Handle("POST /v1/brands/{brand}/suppressions", a.guard("create", crmv1.AdminSuppressions, p.importSuppressions))
	mux.Handle("GET /v1/brands/{brand}/suppressions/{hash}", a.guard("get", crmv1.AdminSuppressions, p.suppression))
	mux.Handle("DELETE /v1/brands/{brand}/suppressions/{hash}", a.guard("delete", crmv1.AdminSuppressions, p.suppression))
}

// suppression reads (GET) or removes (DELETE) one address hash on the brand's list.
func (p *Preferences) suppression(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	hash := r.PathValue("hash")
	if !prefs.ValidHash(hash) {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "hash: not an address hash (32 lowercase hex digits)", Field: "hash"})
		return
	}
	var sup *prefs.Suppression
	var err error
	if r.Method == http.MethodDelete {
		err = p.Service.Unsuppress(r.Context(), brand, hash, u.GetName())
	} else {
		sup, err = p.Service.Suppressed(r.Context(), brand, hash)
	}
	switch {
	case errors.Is(err, prefs.ErrNotSuppressed):
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: err.Error(), Field: "hash"})
	case err != nil:
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
	case sup != nil:
		ingest.WriteJSON(w, http.StatusOK, sup)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type playerHandler func(w http.ResponseWriter, r *http.Request, brand, player string)

// PlayerClaims are the claims of a player's token: sub is the player id; brand, when
// present, must be the brand in the path.
type PlayerClaims struct {
	Brand string `json:"brand,omitempty"`
	jwt.RegisteredClaims
}

// player authenticates a player by the brand's JWT (HS256, exp required) and passes the
// token's subject as the player: a player reaches only their own settings.
func (p *Preferences) player(h playerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		brand := r.PathValue("brand")
		if err := bus.CheckToken("brand", brand); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "brand"})
			return
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/stream") {
			// Browsers' EventSource cannot send headers: live feeds take the token in the URL.
			raw = r.URL.Query().Get("access_token")
			ok = raw != ""
		}
		if !ok {
			ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "a player token is required: Authorization: Bearer <JWT signed with the brand's jwtKey>"})
			return
		}
		keys, err := p.Keys.Keys(r.Context(), brand)
		if err != nil || len(keys.JWT) == 0 {
			ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "the brand has no jwtKey in its integration Secret"})
			return
		}
		var claims PlayerClaims
		var lastErr error
		for _, k := range keys.JWT {
			_, lastErr = jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return k, nil },
				jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithExpirationRequired(),
				jwt.WithTimeFunc(p.Clock.Now), jwt.WithLeeway(30*time.Second))
			if lastErr == nil {
				break
			}
		}
		if lastErr != nil {
			ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "player token refused: " + lastErr.Error()})
			return
		}
		if claims.Brand != "" && claims.Brand != brand {
			ingest.WriteProblem(w, http.StatusForbidden, ingest.Problem{Error: fmt.Sprintf("the token is for brand %q", claims.Brand)})
			return
		}
		if err := bus.CheckToken("sub", claims.Subject); err != nil {
			ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: "player token: " + err.Error(), Field: "sub"})
			return
		}
		h(w, r, brand, claims.Subject)
	})
}

// View is a player's preferences as the API shows them.
type View struct {
	Player     string                  `json:"player"`
	Matrix     []prefs.Effective       `json:"matrix"`
	Languages  []prefs.ChannelLanguage `json:"languages,omitempty"`
	QuietHours *prefs.QuietHours       `json:"quietHours,omitempty"`
	Caps       []prefs.PlayerCap       `json:"caps,omitempty"`
	// Available lists the languages the brand writes in.
	Available []string  `json:"availableLanguages"`
	Updated   time.Time `json:"updated,omitzero"`
}

func view(pol *prefs.Policy, pp *prefs.Prefs) View {
	return View{Player: pp.Player, Matrix: prefs.Matrix(pol, pp), Languages: pp.Languages, QuietHours: pp.Quiet, Caps: pp.Caps,
		Available: pol.Languages, Updated: pp.Updated}
}

func (p *Preferences) get(w http.ResponseWriter, r *http.Request, brand, player string) {
	pol := p.Service.Policy(brand)
	if pol == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: prefs.ErrNoPolicy.Error()})
		return
	}
	pp, _, err := p.Service.Load(r.Context(), brand, player)
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, view(pol, pp))
}

func (p *Preferences) put(w http.ResponseWriter, r *http.Request, brand, player string) {
	source := prefs.SourceApp
	if r.Header.Get("Croupier-Source") == prefs.SourceWeb {
		source = prefs.SourceWeb
	}
	p.change(w, r, brand, player, source, "player")
}

// Change is a preference change: the choices listed replace the player's earlier ones;
// languages, quietHours and caps, when present, replace the whole setting.
type Change struct {
	Choices []struct {
		Category crmv1.Category `json:"category"`
		Channel  crmv1.Channel  `json:"channel"`
		State    prefs.State    `json:"state"`
	} `json:"choices"`
	Languages  *[]prefs.ChannelLanguage `json:"languages"`
	QuietHours *prefs.QuietHours        `json:"quietHours"`
	ClearQuiet bool                     `json:"clearQuietHours"`
	Caps       *[]prefs.PlayerCap       `json:"caps"`
}

func (p *Preferences) change(w http.ResponseWriter, r *http.Request, brand, player, source, actor string) {
	if err := bus.CheckToken("player", player); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "player"})
		return
	}
	var c Change
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPreferencesBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		bodyProblem(w, err, "body: ")
		return
	}
	// The request alone is checked first, so a refusal names the request's own field.
	probe := &prefs.Prefs{Quiet: c.QuietHours}
	for i, ch := range c.Choices {
		if ch.State != prefs.Granted && ch.State != prefs.Withdrawn {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("state %q must be granted or withdrawn", ch.State), Field: fmt.Sprintf("choices[%d].state", i)})
			return
		}
		probe.Choices = append(probe.Choices, prefs.Choice{Category: ch.Category, Channel: ch.Channel, State: ch.State})
	}
	if c.Languages != nil {
		probe.Languages = *c.Languages
	}
	if c.Caps != nil {
		probe.Caps = *c.Caps
	}
	pol := p.Service.Policy(brand)
	if pol == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: prefs.ErrNoPolicy.Error()})
		return
	}
	err := probe.Prepare(pol)
	var fe *prefs.FieldError
	if errors.As(err, &fe) {
		status := http.StatusUnprocessableEntity
		if fe.Conflict {
			status = http.StatusConflict
		}
		ingest.WriteProblem(w, status, ingest.Problem{Error: fe.Error(), Field: fe.Field})
		return
	}
	pp, err := p.Service.Update(r.Context(), brand, player, source, actor, func(pp *prefs.Prefs) error {
		for _, ch := range c.Choices {
			pp.Set(ch.Category, ch.Channel, ch.State)
		}
		if c.Languages != nil {
			pp.Languages = *c.Languages
		}
		if c.QuietHours != nil {
			pp.Quiet = c.QuietHours
		}
		if c.ClearQuiet {
			pp.Quiet = nil
		}
		if c.Caps != nil {
			pp.Caps = *c.Caps
		}
		return nil
	})
	switch {
	case errors.As(err, &fe):
		status := http.StatusUnprocessableEntity
		if fe.Conflict {
			status = http.StatusConflict
		}
		ingest.WriteProblem(w, status, ingest.Problem{Error: fe.Error(), Field: fe.Field})
		return
	case errors.Is(err, prefs.ErrNoPolicy):
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: err.Error()})
		return
	case err != nil:
		p.Log.Error("changing preferences", "brand", brand, "player", player, "err", err)
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: "the change was not saved: " + err.Error()})
		return
	}
	for _, ch := range pp.Choices {
		if ch.State == prefs.Pending {
			if err := p.requestConfirmation(r.Context(), brand, player, ch.Category, ch.Channel); err != nil {
				p.Log.Error("requesting a double opt-in confirmation", "brand", brand, "player", player, "err", err)
			}
		}
	}
	ingest.WriteJSON(w, http.StatusOK, view(pol, pp))
}

// ConfirmationCampaign is the brand's Campaign that sends double opt-in confirmations; its
// content gets the link as .Links.Confirm.
const ConfirmationCampaign = "double-opt-in"

// requestConfirmation sends the double opt-in confirmation as a service intent of the
// brand's double-opt-in Campaign.
func (p *Preferences) requestConfirmation(ctx context.Context, brand, player string, cat crmv1.Category, ch crmv1.Channel) error {
	link, err := p.Link(ctx, "confirm", brand, player, cat, ch)
	if err != nil || link == "" {
		return err
	}
	now := p.Clock.Now().UTC()
	it := bus.Intent{ID: "double-opt-in/" + player + "/" + string(ch) + "/" + now.Format(time.RFC3339), Brand: brand, Player: player,
		Campaign: ConfirmationCampaign, Step: "send", FlowInstance: "confirm-" + string(ch), Category: crmv1.CategoryService,
		Content: "confirm", Created: now, Links: map[string]string{"Confirm": link}}
	b, _ := bus.Encode(it)
	_, err = p.Service.JS.Publish(ctx, bus.IntentSubject(brand, bus.Partition(player, p.Service.Partitions), player), b)
	return err
}

// linkClaims is what a link token says.
type linkClaims struct {
	Purpose  string         `json:"p"`
	Brand    string         `json:"b"`
	Player   string         `json:"u"`
	Category crmv1.Category `json:"c"`
	Channel  crmv1.Channel  `json:"h"`
	Expires  int64          `json:"e"`
	// Campaign and Decision name the message an unsubscribe link came with.
	Campaign string `json:"m,omitempty"`
	Decision string `json:"d,omitempty"`
}

// Link is a signed link for a purpose ("unsubscribe", "confirm"), "" when the brand has
// no link key or no public URL is set.
func (p *Preferences) Link(ctx context.Context, purpose, brand, player string, cat crmv1.Category, ch crmv1.Channel) (string, error) {
	return p.link(ctx, linkClaims{Purpose: purpose, Brand: brand, Player: player, Category: cat, Channel: ch})
}

func (p *Preferences) link(ctx context.Context, c linkClaims) (string, error) {
	brand, purpose := c.Brand, c.Purpose
	if p.PublicURL == "" {
		return "", nil
	}
	keys, err := p.Keys.Keys(ctx, brand)
	if err != nil || len(keys.Link) == 0 {
		return "", nil //nolint:nilerr // no key: messages go without links
	}
	ttl := p.LinkTTL
	if ttl <= 0 {
		ttl = 90 * 24 * time.Hour
	}
	c.Expires = p.Clock.Now().Add(ttl).Unix()
	b, _ := json.Marshal(c)
	payload := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, keys.Link)
	m.Write([]byte(payload))
	tok := payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	return strings.TrimSuffix(p.PublicURL, "/") + "/v1/brands/" + brand + "/" + purpose + "?token=" + url.QueryEscape(tok), nil
}

// UnsubscribeLink is Link for unsubscribe, in the shape the partition owner calls: the
// link names the campaign and decision it came with.
func (p *Preferences) UnsubscribeLink(ctx context.Context, brand, player string, cat crmv1.Category, ch crmv1.Channel, campaign, decision string) string {
	u, _ := p.link(ctx, linkClaims{Purpose: "unsubscribe", Brand: brand, Player: player, Category: cat, Channel: ch, Campaign: campaign, Decision: decision})
	return u
}

func (p *Preferences) verify(r *http.Request, purpose string) (linkClaims, error) {
	brand := r.PathValue("brand")
	tok := r.URL.Query().Get("token")
	payload, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return linkClaims{}, errors.New("token: malformed")
	}
	keys, err := p.Keys.Keys(r.Context(), brand)
	if err != nil || len(keys.Link) == 0 {
		return linkClaims{}, errors.New("token: the brand has no link key")
	}
	m := hmac.New(sha256.New, keys.Link)
	m.Write([]byte(payload))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return linkClaims{}, errors.New("token: signature does not match")
	}
	b, _ := base64.RawURLEncoding.DecodeString(payload)
	var c linkClaims
	if err := json.Unmarshal(b, &c); err != nil {
		return linkClaims{}, errors.New("token: malformed")
	}
	if c.Purpose != purpose || c.Brand != brand {
		return linkClaims{}, errors.New("token: not a " + purpose + " link of this brand")
	}
	if p.Clock.Now().Unix() > c.Expires {
		return linkClaims{}, errors.New("token: the link has expired")
	}
	return c, nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>{{if .Form}}<form method="post" action="{{.Form}}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">{{.Button}}</button></form>{{end}}</body></html>`))

func writePage(w http.ResponseWriter, status int, title, text, form, button string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = page.Execute(w, map[string]string{"Title": title, "Text": text, "Form": form, "Button": button})
}

// unsubscribePage asks for a confirmation: a GET never unsubscribes (mail scanners follow
// links); the form posts back, as does a mail client's one-click (RFC 8058).
func (p *Preferences) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	c, err := p.verify(r, "unsubscribe")
	if err != nil {
		writePage(w, http.StatusBadRequest, "Link not valid", err.Error(), "", "")
		return
	}
	writePage(w, http.StatusOK, "Unsubscribe", fmt.Sprintf("Stop %s messages by %s?", c.Category, c.Channel), r.URL.RequestURI(), "Unsubscribe")
}

func (p *Preferences) unsubscribe(w http.ResponseWriter, r *http.Request) {
	c, err := p.verify(r, "unsubscribe")
	if err != nil {
		writePage(w, http.StatusBadRequest, "Link not valid", err.Error(), "", "")
		return
	}
	if _, err := p.Service.Withdraw(r.Context(), c.Brand, c.Player, c.Category, []crmv1.Channel{c.Channel}, prefs.SourceUnsubscribe, "player"); err != nil {
		p.Log.Error("unsubscribing", "brand", c.Brand, "player", c.Player, "err", err)
		writePage(w, http.StatusInternalServerError, "Not saved", "Please try again.", "", "")
		return
	}
	if c.Campaign != "" && c.Decision != "" {
		// The campaign's unsubscribe, counted by the player's partition owner (once per
		// message and channel however often the link is used).
		o := bus.Outcome{Time: p.Clock.Now().UTC(), DecisionID: c.Decision, Brand: c.Brand, Player: c.Player, Campaign: c.Campaign,
			Kind: bus.OutcomeReport, Category: string(c.Category), Result: bus.ReportUnsubscribed, Reason: prefs.SourceUnsubscribe, Channel: c.Channel}
		b, _ := bus.Encode(o)
		subj := bus.OutcomeSubject(c.Brand, bus.Partition(c.Player, p.Service.Partitions), c.Player)
		if _, err := p.Service.JS.Publish(r.Context(), subj, b, jetstream.WithMsgID("unsubscribed/"+c.Decision+"/"+string(c.Channel))); err != nil {
			p.Log.Error("recording an unsubscribe", "brand", c.Brand, "campaign", c.Campaign, "err", err)
		}
	}
	writePage(w, http.StatusOK, "Unsubscribed", fmt.Sprintf("You will get no more %s messages by %s.", c.Category, c.Channel), "", "")
}

// confirm completes a double opt-in.
func (p *Preferences) confirm(w http.ResponseWriter, r *http.Request) {
	c, err := p.verify(r, "confirm")
	if err != nil {
		writePage(w, http.StatusBadRequest, "Link not valid", err.Error(), "", "")
		return
	}
	_, err = p.Service.Update(r.Context(), c.Brand, c.Player, prefs.SourceDoubleOptIn, "player", func(pp *prefs.Prefs) error {
		if ch, ok := pp.Choice(c.Category, c.Channel); ok && ch.State == prefs.Pending {
			pp.Set(c.Category, c.Channel, prefs.Granted)
		}
		return nil
	})
	if err != nil {
		writePage(w, http.StatusInternalServerError, "Not saved", "Please try again.", "", "")
		return
	}
	writePage(w, http.StatusOK, "Confirmed", fmt.Sprintf("You will get %s messages by %s.", c.Category, c.Channel), "", "")
}

// StopKeywords are the SMS replies that mean stop, in the brand's languages (matched
// case-insensitively on the whole trimmed text).
var StopKeywords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "СТОП", "ОТПИСАТЬСЯ", "DAYAN", "DAYANDIR", "STOP SMS"}

// IsStop reports whether an SMS text is a stop keyword.
func IsStop(text string) bool {
	t := strings.ToUpper(strings.TrimSpace(strings.Trim(text, ".!")))
	for _, k := range StopKeywords {
		if t == k {
			return true
		}
	}
	return false
}

// authenticate checks a provider callback with the brand's intake credentials (bearer
// token or Croupier-Signature), as the events intake does.
func (p *Preferences) authenticate(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	brand := r.PathValue("brand")
	if err := bus.CheckToken("brand", brand); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "brand"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPreferencesBody))
	if err != nil {
		bodyProblem(w, err, "reading the body: ")
		return nil, false
	}
	keys, err := p.Keys.Keys(r.Context(), brand)
	if err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return nil, false
	}
	if err := ingest.Authenticate(r, body, keys, p.Clock.Now()); err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return nil, false
	}
	return body, true
}

// InboundSMS is a reply to the brand's number: JSON {from, text} or a form with From and
// Body (the shape most SMS gateways post).
type InboundSMS struct {
	From string `json:"from"`
	Text string `json:"text"`
}

func (p *Preferences) inboundSMS(w http.ResponseWriter, r *http.Request) {
	body, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	var in InboundSMS
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		v, _ := url.ParseQuery(string(body))
		in.From, in.Text = v.Get("From"), v.Get("Body")
	} else if err := json.Unmarshal(body, &in); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "body: " + err.Error()})
		return
	}
	if strings.TrimSpace(in.From) == "" {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "from: must be the sender's number", Field: "from"})
		return
	}
	if !IsStop(in.Text) {
		ingest.WriteJSON(w, http.StatusOK, map[string]any{"stopped": false})
		return
	}
	p.stop(w, r, crmv1.ChannelSMS, in.From, "SMS reply "+strings.ToUpper(strings.TrimSpace(in.Text)), prefs.SourceSMSStop)
}

// stop puts the address on the brand's suppression list for the channel, on the player's
// own request through the channel.
func (p *Preferences) stop(w http.ResponseWriter, r *http.Request, ch crmv1.Channel, address, reason, source string) {
	hash := prefs.AddressHash(ch, address)
	if err := p.Service.Suppress(r.Context(), r.PathValue("brand"), hash, []crmv1.Channel{ch}, reason, source, "player", ""); err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, map[string]any{"stopped": true, "addressHash": hash})
}

// ViberCallback is the part of a Viber callback that matters here.
type ViberCallback struct {
	Event        string      `json:"event"`
	UserID       string      `json:"user_id"`
	MessageToken json.Number `json:"message_token"`
	Desc         string      `json:"desc"`
}

func (p *Preferences) inboundViber(w http.ResponseWriter, r *http.Request) {
	body, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	var cb ViberCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "body: " + err.Error()})
		return
	}
	if cb.Event != "unsubscribed" {
		ingest.WriteJSON(w, http.StatusOK, map[string]any{"stopped": false})
		return
	}
	if cb.UserID == "" {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "user_id: must not be empty", Field: "user_id"})
		return
	}
	p.stop(w, r, crmv1.ChannelViber, cb.UserID, "Viber unsubscribed", prefs.SourceViber)
}

// SuppressionLine is one line of a suppression import: an address (hashed on arrival,
// never stored) or its hash, the channels (all when empty) and a reason.
type SuppressionLine struct {
	Channel  crmv1.Channel   `json:"channel"`
	Address  string          `json:"address,omitempty"`
	Hash     string          `json:"hash,omitempty"`
	Channels []crmv1.Channel `json:"channels,omitempty"`
	Reason   string          `json:"reason"`
}

// importSuppressions takes NDJSON lines; every line is checked before any is saved, and a
// bad line is refused with its number and field.
func (p *Preferences) importSuppressions(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSuppressionBody))
	dec.DisallowUnknownFields()
	var lines []SuppressionLine
	refuse := func(line int, field, reason string) {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("line %d: %s: %s", line, field, reason), Line: line, Field: field, Reason: reason})
	}
	for n := 1; ; n++ {
		var l SuppressionLine
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			bodyProblem(w, err, "")
			return
		} else if err != nil {
			refuse(n, "", err.Error())
			return
		}
		if prefs.ChannelIndex(l.Channel) < 0 {
			refuse(n, "channel", fmt.Sprintf("%q is not a channel", l.Channel))
			return
		}
		if (l.Address == "") == (l.Hash == "") {
			refuse(n, "address", "exactly one of address or hash is needed")
			return
		}
		if l.Hash != "" && !prefs.ValidHash(l.Hash) {
			refuse(n, "hash", "not an address hash (32 lowercase hex digits)")
			return
		}
		for i, ch := range l.Channels {
			if prefs.ChannelIndex(ch) < 0 {
				refuse(n, fmt.Sprintf("channels[%d]", i), fmt.Sprintf("%q is not a channel", ch))
				return
			}
		}
		if l.Address != "" {
			l.Hash, l.Address = prefs.AddressHash(l.Channel, l.Address), ""
		}
		if len(l.Channels) == 0 {
			l.Channels = []crmv1.Channel{l.Channel}
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		refuse(1, "", "no lines")
		return
	}
	for _, l := range lines {
		if err := p.Service.Suppress(r.Context(), brand, l.Hash, l.Channels, l.Reason, prefs.SourceImport, u.GetName(), ""); err != nil {
			ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
			return
		}
	}
	hashes := make([]string, len(lines))
	for i, l := range lines {
		hashes[i] = l.Hash
	}
	ingest.WriteJSON(w, http.StatusOK, map[string]any{"suppressed": len(lines), "hashes": hashes})
}
