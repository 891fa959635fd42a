// Package channel delivers rendered jobs: one worker per channel consumes
// croupier.deliveries.<channel>.>, sends through the providers its brand's ChannelPolicy
// lists (rate-limited, retried with backoff and jitter, failing over in order), writes every
// attempt to OUTCOMES and reports a failed channel, and the real cost, back to the partition
// owner as events. Providers live in dispatcher/channel/<provider>.
package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// Message is what a provider sends.
type Message struct {
	Job    *bus.DeliveryJob
	Sender crmv1.SenderDefaults
	// IdempotencyKey is the decision id and the channel: a resend after a crash carries
	// the same key, so providers that honour one drop the duplicate.
	IdempotencyKey string
	// Attachments are files mailed with the message (scheduled reports to staff; player
	// messages carry none).
	Attachments []Attachment
}

// Attachment is a file attached to an email.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Receipt is a provider's acceptance of a message.
type Receipt struct {
	// ProviderID is the provider's message id, which its delivery webhooks name.
	ProviderID string
	// Track asks the worker to remember ProviderID -> this message (croupier-links key
	// TrackKey), for providers whose delivery callbacks name only their own id.
	Track bool
	// Units multiply the provider's per-message cost (SMS segments); 0 counts as 1.
	Units int
}

// Provider sends one message through one provider's protocol.
type Provider interface {
	Send(ctx context.Context, m *Message) (Receipt, error)
}

// Closer is a provider holding connections to close when its configuration changes.
type Closer interface{ Close() error }

// Config is what a provider is built from.
type Config struct {
	Brand    string
	Channel  crmv1.Channel
	Provider crmv1.Provider
	// Secret is the data of the Secret the provider's secretRef names (nil without one).
	Secret map[string][]byte
	Sender crmv1.SenderDefaults
	// HTTP is the shared client for HTTP providers; Timeout is the provider's own.
	HTTP    *http.Client
	Timeout time.Duration
}

// Factory builds a provider of one type.
type Factory func(cfg Config) (Provider, error)

// Kind classifies a failed send.
type Kind int

const (
	// Transient errors are retried at the same provider after a backoff (5xx, 429,
	// timeouts, connection errors).
	Transient Kind = iota
	// ProviderFailed means this provider cannot send (credentials, configuration): the
	// next provider is tried, this one is not retried.
	ProviderFailed
	// Rejected means the message itself is refused (an invalid address): no provider is
	// tried again and the channel fails at once.
	Rejected
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case ProviderFailed:
		return "providerFailed"
	default:
		return "rejected"
	}
}

// Error is a provider's refusal. Reason must hold no contact data or message text: it is
// written to OUTCOMES and logs.
type Error struct {
	Kind       Kind
	Status     int
	RetryAfter time.Duration
	Reason     string
	// TokenInvalid marks a rejection because the device token or subscription is no
	// longer valid: the worker reports channel.token.invalid so the owner removes it.
	TokenInvalid bool
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (%s, status %d)", e.Reason, e.Kind, e.Status)
	}
	return fmt.Sprintf("%s (%s)", e.Reason, e.Kind)
}

// Errorf is an Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// HTTPStatus classifies an HTTP provider's answer: nil for 2xx; 429 and 408 and 5xx are
// transient (Retry-After honoured, in seconds or as a date); 401, 403 and 404 mean the
// provider is misconfigured; any other 4xx rejects the message.
func HTTPStatus(resp *http.Response, now time.Time) *Error {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return &Error{Kind: Transient, Status: code, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), now), Reason: http.StatusText(code)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound:
		return &Error{Kind: ProviderFailed, Status: code, Reason: http.StatusText(code)}
	default:
		return &Error{Kind: Rejected, Status: code, Reason: http.StatusText(code)}
	}
}

// Post sends body to a provider's url and reads at most 64 KiB of the answer. A
// transport error comes back as it is (the worker classifies it); a non-2xx answer comes
// back as HTTPStatus's *Error together with the answer, so the provider can add its own
// error code to the reason.
func Post(ctx context.Context, hc *http.Client, url, contentType string, body []byte, header func(*http.Request)) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, Errorf(ProviderFailed, "endpoint: %v", err)
	}
	req.Header.Set("Content-Type", contentType)
	if header != nil {
		header(req)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if e := HTTPStatus(resp, time.Now()); e != nil {
		return resp, ans, e
	}
	return resp, ans, nil
}

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// AsError turns any send error into an Error: network errors and timeouts are transient,
// and an error that is not an Error is transient too (a malformed answer, say).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: Transient, Reason: "timeout"}
	case errors.As(err, &ne):
		return &Error{Kind: Transient, Reason: "connection failed"}
	}
	return &Error{Kind: Transient, Reason: "unexpected answer"}
}

// TrackKey is the croupier-links key of a tracked provider id.
func TrackKey(ch crmv1.Channel, providerID string) string {
	return "track." + string(ch) + "." + providerID
}
