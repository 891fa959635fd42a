package sms

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Secret keys of the twilio provider.
const (
	SecretAccountSID = secretkeys.AccountSID
	SecretAuthToken  = secretkeys.AuthToken
)

// Options of the twilio provider.
const (
	// OptionMessagingService sends through a Messaging Service instead of spec.sender.senderID.
	OptionMessagingService = "messagingServiceSid"
	// OptionStatusCallback is the URL Twilio posts delivery reports to.
	OptionStatusCallback = "statusCallback"
)

// TwilioURL is Twilio's API base (the provider's endpoint overrides it).
const TwilioURL = "https://api.twilio.com"

// Twilio sends through the Programmable Messaging API (or a compatible one).
type Twilio struct {
	url, sid, token, from, service, callback string
	http                                     *http.Client
}

// NewTwilio is the channel.Factory of type twilio.
func NewTwilio(cfg channel.Config) (channel.Provider, error) {
	sid, token := string(cfg.Secret[SecretAccountSID]), string(cfg.Secret[SecretAuthToken])
	if sid == "" || token == "" {
		return nil, fmt.Errorf("secret keys %s and %s: required", SecretAccountSID, SecretAuthToken)
	}
	base := strings.TrimSuffix(cfg.Provider.Endpoint, "/")
	if base == "" {
		base = TwilioURL
	}
	t := &Twilio{url: base + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Messages.json", sid: sid, token: token,
		from: cfg.Sender.SenderID, service: cfg.Provider.Options[OptionMessagingService], callback: cfg.Provider.Options[OptionStatusCallback], http: cfg.HTTP}
	if t.from == "" && t.service == "" {
		return nil, fmt.Errorf("spec.sender.senderID or options.%s: one is required", OptionMessagingService)
	}
	return t, nil
}

// Send posts the message; Twilio answers 201 {"sid": ..., "num_segments": ...}. The
// idempotency key goes in I-Twilio-Idempotency-Token.
func (t *Twilio) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	if m.Job.To == "" {
		return channel.Receipt{}, channel.Errorf(channel.Rejected, "no phone number")
	}
	f := url.Values{"To": {m.Job.To}, "Body": {m.Job.Text}}
	if t.service != "" {
		f.Set("MessagingServiceSid", t.service)
	} else {
		f.Set("From", t.from)
	}
	if t.callback != "" {
		// The decision and player ride in the callback's query, so a delivery report maps
		// back without a lookup (Twilio signs the whole URL).
		sep := "?"
		if strings.Contains(t.callback, "?") {
			sep = "&"
		}
		f.Set("StatusCallback", t.callback+sep+url.Values{"d": {m.Job.DecisionID}, "p": {m.Job.Player}}.Encode())
	}
	_, raw, err := channel.Post(ctx, t.http, t.url, "application/x-www-form-urlencoded", []byte(f.Encode()), func(r *http.Request) {
		r.SetBasicAuth(t.sid, t.token)
		r.Header.Set("I-Twilio-Idempotency-Token", m.IdempotencyKey)
	})
	var e *channel.Error
	if errors.As(err, &e) {
		var body struct {
			Code int `json:"code"`
		}
		if json.Unmarshal(raw, &body) == nil && body.Code != 0 {
			e.Reason += " (Twilio error " + strconv.Itoa(body.Code) + ")"
		}
	}
	if err != nil {
		return channel.Receipt{}, err
	}
	_, n := Segments(m.Job.Text)
	var ans struct {
		SID      string `json:"sid"`
		Segments string `json:"num_segments"`
	}
	if json.Unmarshal(raw, &ans) == nil {
		if s, err := strconv.Atoi(ans.Segments); err == nil && s > 0 {
			n = s // what Twilio bills
		}
	}
	return channel.Receipt{ProviderID: ans.SID, Units: n}, nil
}

// Signature is Twilio's X-Twilio-Signature of a request to fullURL with form parameters:
// base64 HMAC-SHA1 with the auth token of the URL followed by every parameter name and
// value, names sorted.
func Signature(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
