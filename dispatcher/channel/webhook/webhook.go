// Package webhook is the webhook channel: a rendered message POSTed as JSON to the brand's
// endpoint, signed like the intake (Croupier-Signature: t=<unix>,v1=<HMAC-SHA256 of
// "<t>.<body>"> with the Secret's hmacKey) and carrying the decision id as Idempotency-Key.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return channel.Receipt{}, channel.Errorf(channel.ProviderFailed, "endpoint: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdempotencyKeyHeader, m.IdempotencyKey)
	if len(p.key) > 0 {
		req.Header.Set(ingest.SignatureHeader, ingest.SignatureFor(p.key, now, body))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return channel.Receipt{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if e := channel.HTTPStatus(resp, now); e != nil {
		return channel.Receipt{}, e
	}
	return channel.Receipt{ProviderID: resp.Header.Get("X-Message-Id")}, nil
}
