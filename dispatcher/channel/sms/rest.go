package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Options of the smsRest provider: how a generic aggregator is called. Every option has a
// default, so {endpoint, secret token} is a working bearer-token JSON API.
const (
	OptionFormat     = "format"     // json (default) or form
	OptionTo         = "toField"    // default "to"
	OptionFrom       = "fromField"  // default "from"
	OptionText       = "textField"  // default "text"
	OptionReference  = "refField"   // the field carrying Reference(decision, player) (default "reference"; "" to omit)
	OptionIDPath     = "idPath"     // dotted path of the message id in the JSON answer (default "id")
	OptionAuth       = "auth"       // bearer (default: secret token), basic (username, password), header (secret token in authHeader)
	OptionAuthHeader = "authHeader" // header name for auth=header (default "X-API-Key")
	OptionSegments   = "segmentsPath"
	// Keys beginning "field." are sent as constant fields: field.route=premium.
	OptionFieldPrefix = "field."
)

// Secret keys of the smsRest provider.
const (
	SecretToken    = secretkeys.Token
	SecretUsername = secretkeys.Username
	SecretPassword = secretkeys.Password
)

// REST is a generic SMS aggregator: the request and answer shapes come from the options.
type REST struct {
	url, format, to, from, text, ref, idPath, segPath string
	sender                                            string
	fields                                            map[string]string
	auth                                              func(*http.Request)
	http                                              *http.Client
}

// NewREST is the channel.Factory of type smsRest.
func NewREST(cfg channel.Config) (channel.Provider, error) {
	o := cfg.Provider.Options
	get := func(k, def string) string {
		if v, ok := o[k]; ok {
			return v
		}
		return def
	}
	if cfg.Provider.Endpoint == "" {
		return nil, fmt.Errorf("endpoint: required for an smsRest provider")
	}
	r := &REST{url: cfg.Provider.Endpoint, format: get(OptionFormat, "json"), to: get(OptionTo, "to"), from: get(OptionFrom, "from"),
		text: get(OptionText, "text"), ref: get(OptionReference, "reference"), idPath: get(OptionIDPath, "id"), segPath: o[OptionSegments],
		sender: cfg.Sender.SenderID, fields: map[string]string{}, http: cfg.HTTP}
	if r.format != "json" && r.format != "form" {
		return nil, fmt.Errorf("options.%s: %q must be json or form", OptionFormat, r.format)
	}
	for k, v := range o {
		if name, ok := strings.CutPrefix(k, OptionFieldPrefix); ok {
			r.fields[name] = v
		}
	}
	token := string(cfg.Secret[SecretToken])
	switch a := get(OptionAuth, "bearer"); a {
	case "bearer":
		if token == "" {
			return nil, fmt.Errorf("secret key %s: required for auth bearer", SecretToken)
		}
		r.auth = func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
	case "header":
		if token == "" {
			return nil, fmt.Errorf("secret key %s: required for auth header", SecretToken)
		}
		h := get(OptionAuthHeader, "X-API-Key")
		r.auth = func(req *http.Request) { req.Header.Set(h, token) }
	case "basic":
		user, pass := string(cfg.Secret[SecretUsername]), string(cfg.Secret[SecretPassword])
		if user == "" {
			return nil, fmt.Errorf("secret keys %s and %s: required for auth basic", SecretUsername, SecretPassword)
		}
		r.auth = func(req *http.Request) { req.SetBasicAuth(user, pass) }
	default:
		return nil, fmt.Errorf("options.%s: %q must be bearer, basic or header", OptionAuth, a)
	}
	return r, nil
}

// Send posts the mapped fields and reads the message id from the answer.
func (r *REST) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	if m.Job.To == "" {
		return channel.Receipt{}, channel.Errorf(channel.Rejected, "no phone number")
	}
	fields := map[string]string{r.to: m.Job.To, r.text: m.Job.Text}
	if r.from != "" && r.sender != "" {
		fields[r.from] = r.sender
	}
	if r.ref != "" {
		fields[r.ref] = Reference(m.Job.DecisionID, m.Job.Player)
	}
	for k, v := range r.fields {
		fields[k] = v
	}
	var body []byte
	ct := "application/json"
	if r.format == "form" {
		f := url.Values{}
		for k, v := range fields {
			f.Set(k, v)
		}
		body, ct = []byte(f.Encode()), "application/x-www-form-urlencoded"
	} else {
		body, _ = json.Marshal(fields)
	}
	_, raw, err := channel.Post(ctx, r.http, r.url, ct, body, func(req *http.Request) {
		req.Header.Set("Idempotency-Key", m.IdempotencyKey)
		r.auth(req)
	})
	if err != nil {
		return channel.Receipt{}, err
	}
	_, n := Segments(m.Job.Text)
	var ans any
	if json.Unmarshal(raw, &ans) != nil {
		return channel.Receipt{Units: n}, nil // accepted; the id is unreadable
	}
	if s, ok := lookup(ans, r.segPath).(float64); ok && s > 0 {
		n = int(s)
	}
	id := ""
	if v := lookup(ans, r.idPath); v != nil {
		id = fmt.Sprint(v)
	}
	return channel.Receipt{ProviderID: id, Units: n}, nil
}

// Reference is what an aggregator gets in refField and returns in its delivery reports:
// the decision and the player, stable across resends of the same message.
func Reference(decision, player string) string { return decision + ":" + player }

// ParseReference splits a Reference.
func ParseReference(ref string) (decision, player string, ok bool) {
	return strings.Cut(ref, ":")
}

// Delivery-report options of the smsRest provider (its webhook
// /v1/brands/<brand>/webhooks/smsrest/<provider>, JSON or form): which field holds the
// reference and the status, and which status values mean delivered or failed. The
// aggregator authenticates with the Secret's dlrToken as a bearer token or ?token=.
const (
	OptionDLRRef       = "dlrRefField"    // default "reference"
	OptionDLRStatus    = "dlrStatusField" // default "status"
	OptionDLRDelivered = "dlrDelivered"   // default "delivered,DELIVRD"
	OptionDLRFailed    = "dlrFailed"      // default "failed,undelivered,UNDELIV,REJECTD,EXPIRED"
	SecretDLRToken     = secretkeys.DLRToken
)

// Lookup follows a dotted path ("data.messages.0.id") through decoded JSON.
func Lookup(v any, path string) any { return lookup(v, path) }

func lookup(v any, path string) any {
	if path == "" {
		return nil
	}
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
