// Package webhook is the webhook channel: a rendered message POSTed as JSON to the brand's
// endpoint, signed like the intake (Croupier-Signature: t=<unix>,v1=<HMAC-SHA256 of
// "<t>.<body>"> with the Secret's hmacKey) and carrying the decision id as Idempotency-Key.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
)

// Body is what the endpoint receives.
type Body struct {
	DecisionID string            `json:"decisionId"`
	Brand      string            `json:"brand"`
	Player     string            `json:"player"`
	Campaign   string            `json:"campaign"`
	Step       string            `json:"step"`
	Locale     string            `json:"locale"`
	TemplateID string            `json:"templateId"`
	Subject    string            `json:"subject,omitempty"`
	Text       string            `json:"text,omitempty"`
	HTML       string            `json:"html,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	Test       bool              `json:"test,omitempty"`
	SentAt     time.Time         `json:"sentAt"`
}

// IdempotencyKeyHeader carries the decision id and channel.
const IdempotencyKeyHeader = "Idempotency-Key"

// Provider posts to one endpoint.
type Provider struct {
	endpoint string
	key      []byte
	http     *http.Client
}

// New is the channel.Factory of type webhook: endpoint required; the Secret's hmacKey,
// when present, signs every body.
func New(cfg channel.Config) (channel.Provider, error) {
	if cfg.Provider.Endpoint == "" {
		return nil, errors.New("endpoint: required for a webhook provider")
	}
	return &Provider{endpoint: cfg.Provider.Endpoint, key: cfg.Secret[ingest.SecretHMACKey], http: cfg.HTTP}, nil
}

// Send posts the message.
func (p *Provider) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	now := time.Now()
	body, err := json.Marshal(Body{DecisionID: j.DecisionID, Brand: j.Brand, Player: j.Player, Campaign: j.Campaign, Step: j.Step,
		Locale: j.Locale, TemplateID: j.TemplateID, Subject: j.Subject, Text: j.Text, HTML: j.HTML, Data: j.Data, Test: j.Test, SentAt: now.UTC()})
	if err != nil {
		return channel.Receipt{}, channel.Errorf(channel.Rejected, "encoding: %v", err)
	}
	resp, err := postSigned(ctx, p.http, p.endpoint, p.key, m.IdempotencyKey, body)
	if err != nil {
		return channel.Receipt{}, err
	}
	return channel.Receipt{ProviderID: resp.Header.Get("X-Message-Id")}, nil
}

// postSigned posts a JSON body with its Idempotency-Key and, when key is set, the
// Croupier-Signature the intake also checks.
func postSigned(ctx context.Context, hc *http.Client, url string, key []byte, idempotencyKey string, body []byte) (*http.Response, error) {
	resp, _, err := channel.Post(ctx, hc, url, "application/json", body, func(r *http.Request) {
		r.Header.Set(IdempotencyKeyHeader, idempotencyKey)
		if len(key) > 0 {
			r.Header.Set(ingest.SignatureHeader, ingest.SignatureFor(key, time.Now(), body))
		}
	})
	return resp, err
}
