// Package viber is the Viber channel: messages through Viber's REST messaging API
// (chatapi send_message, the wire format in docs/viber.md): text, an image, and a button
// with a deep link. The decision rides in tracking_data.
package viber

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// SecretAuthToken is the Viber account's token (X-Viber-Auth-Token); it also signs
// Viber's callbacks.
const SecretAuthToken = secretkeys.AuthToken

// URL is Viber's API base (the provider's endpoint overrides it).
const URL = "https://chatapi.viber.com"

// Status codes of Viber's answers that matter here.
const (
	StatusOK                 = 0
	StatusInvalidAuthToken   = 2
	StatusReceiverNotReg     = 5
	StatusReceiverNotSubscr  = 6
	StatusTooManyRequests    = 12
	StatusNoSuitableDevice   = 13
	StatusNotSubscribedPlain = 14
)

// Provider sends through Viber.
type Provider struct {
	url, token, sender, avatar string
	http                       *http.Client
}

// New is the channel.Factory of type viber: sender name from spec.sender.senderID,
// avatar from options.avatar.
func New(cfg channel.Config) (channel.Provider, error) {
	token := string(cfg.Secret[SecretAuthToken])
	if token == "" {
		return nil, fmt.Errorf("secret key %s: required", SecretAuthToken)
	}
	if cfg.Sender.SenderID == "" {
		return nil, fmt.Errorf("spec.sender.senderID: the Viber sender name is required")
	}
	base := strings.TrimSuffix(cfg.Provider.Endpoint, "/")
	if base == "" {
		base = URL
	}
	return &Provider{url: base + "/pa/send_message", token: token, sender: cfg.Sender.SenderID, avatar: cfg.Provider.Options["avatar"], http: cfg.HTTP}, nil
}

// Message is send_message's body.
type Message struct {
	Receiver      string `json:"receiver"`
	MinAPIVersion int    `json:"min_api_version"`
	Sender        struct {
		Name   string `json:"name"`
		Avatar string `json:"avatar,omitempty"`
	} `json:"sender"`
	TrackingData string    `json:"tracking_data"`
	Type         string    `json:"type"` // text, picture or rich_media
	Text         string    `json:"text,omitempty"`
	Media        string    `json:"media,omitempty"`
	Keyboard     *Keyboard `json:"keyboard,omitempty"`
}

// Keyboard carries the deep-link button.
type Keyboard struct {
	Type          string   `json:"Type"`
	DefaultHeight bool     `json:"DefaultHeight"`
	Buttons       []Button `json:"Buttons"`
}

// Button opens a URL.
type Button struct {
	ActionType string `json:"ActionType"`
	ActionBody string `json:"ActionBody"`
	Text       string `json:"Text"`
}

// Send posts the message. Viber answers 200 with a status: 0 is sent; 5, 6, 13 and 14
// mean the receiver cannot get it (the id is reported invalid); 2 is a bad token; 12 is
// too many requests.
func (p *Provider) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	if j.To == "" {
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, Reason: "no Viber id"}
	}
	body := Message{Receiver: j.To, MinAPIVersion: 1, TrackingData: j.DecisionID + "/" + j.Player, Type: "text", Text: j.Text}
	body.Sender.Name, body.Sender.Avatar = p.sender, p.avatar
	if img := j.Data["imageURL"]; img != "" {
		body.Type, body.Media, body.MinAPIVersion = "picture", img, 2 // a picture with its text
	}
	if link := j.Data["deepLink"]; link != "" {
		label := j.Data["buttonText"]
		if label == "" {
			label = "Open"
		}
		body.Keyboard = &Keyboard{Type: "keyboard", Buttons: []Button{{ActionType: "open-url", ActionBody: link, Text: label}}}
	}
	raw, _ := json.Marshal(body)
	_, ans, err := channel.Post(ctx, p.http, p.url, "application/json", raw, func(r *http.Request) { r.Header.Set("X-Viber-Auth-Token", p.token) })
	if err != nil {
		return channel.Receipt{}, err
	}
	var a struct {
		Status        int         `json:"status"`
		StatusMessage string      `json:"status_message"`
		MessageToken  json.Number `json:"message_token"`
	}
	if err := json.Unmarshal(ans, &a); err != nil {
		return channel.Receipt{}, channel.Errorf(channel.Transient, "unreadable answer")
	}
	reason := fmt.Sprintf("Viber status %d %s", a.Status, a.StatusMessage)
	switch a.Status {
	case StatusOK:
		// Viber's delivery callbacks name only the message token: remember it.
		return channel.Receipt{ProviderID: a.MessageToken.String(), Track: true}, nil
	case StatusReceiverNotReg, StatusReceiverNotSubscr, StatusNoSuitableDevice, StatusNotSubscribedPlain:
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, TokenInvalid: true, Reason: reason}
	case StatusInvalidAuthToken:
		return channel.Receipt{}, &channel.Error{Kind: channel.ProviderFailed, Reason: reason}
	case StatusTooManyRequests:
		return channel.Receipt{}, &channel.Error{Kind: channel.Transient, Reason: reason}
	default:
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, Reason: reason}
	}
}

// Signature is X-Viber-Content-Signature: hex HMAC-SHA256 of the callback body with the
// auth token.
func Signature(token string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
