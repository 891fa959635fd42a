package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Web Push Secret keys and options.
const (
	SecretVAPIDPublic  = secretkeys.VAPIDPublicKey  // base64url, as GenerateVAPIDKeys writes it
	SecretVAPIDPrivate = secretkeys.VAPIDPrivateKey // base64url
	OptionSubscriber   = "subscriber"               // mailto: address or https: URL in the VAPID token
)

// WebPush sends to browsers' push services (RFC 8030) with VAPID (RFC 8292) and payload
// encryption (RFC 8291) by github.com/SherClockHolmes/webpush-go.
type WebPush struct {
	public, private, subscriber string
	http                        *http.Client
}

// NewWebPush is the channel.Factory of type webPush.
func NewWebPush(cfg channel.Config) (channel.Provider, error) {
	w := &WebPush{public: string(cfg.Secret[SecretVAPIDPublic]), private: string(cfg.Secret[SecretVAPIDPrivate]),
		subscriber: cfg.Provider.Options[OptionSubscriber], http: cfg.HTTP}
	if w.public == "" || w.private == "" {
		return nil, fmt.Errorf("secret keys %s and %s: required", SecretVAPIDPublic, SecretVAPIDPrivate)
	}
	if w.subscriber == "" {
		return nil, fmt.Errorf("options.%s: required (a mailto: address or an https: URL the push services can reach you at)", OptionSubscriber)
	}
	return w, nil
}

// Notification is the decrypted payload the casino's service worker receives.
type Notification struct {
	Title      string `json:"title,omitempty"`
	Body       string `json:"body,omitempty"`
	Image      string `json:"image,omitempty"`
	DeepLink   string `json:"deepLink,omitempty"`
	DecisionID string `json:"decisionId"`
	Campaign   string `json:"campaign,omitempty"`
}

// Send encrypts the notification for the subscription (the job's address) and posts it.
// 404 and 410 mean the subscription is gone.
func (w *WebPush) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	var sub webpush.Subscription
	if err := json.Unmarshal([]byte(j.To), &sub); err != nil || sub.Endpoint == "" {
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, TokenInvalid: j.To != "", Reason: "not a push subscription"}
	}
	payload, _ := json.Marshal(Notification{Title: j.Subject, Body: j.Text, Image: j.Data["imageURL"], DeepLink: j.Data["deepLink"],
		DecisionID: j.DecisionID, Campaign: j.Campaign})
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &sub, &webpush.Options{HTTPClient: w.http, Subscriber: w.subscriber,
		VAPIDPublicKey: w.public, VAPIDPrivateKey: w.private, TTL: 24 * 3600, Urgency: webpush.UrgencyNormal})
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) {
			return channel.Receipt{}, channel.AsError(err)
		}
		// Not the network: the subscription's keys cannot be used to encrypt.
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, TokenInvalid: true, Reason: "unusable subscription keys"}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<10))
	if e := channel.HTTPStatus(resp, time.Now()); e != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			e.Kind, e.TokenInvalid = channel.Rejected, true
		}
		return channel.Receipt{}, e
	}
	return channel.Receipt{ProviderID: resp.Header.Get("Location")}, nil
}
