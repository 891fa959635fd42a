package email

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// SecretAPIKey is the key of SendGrid's and Mailgun's API keys in their Secrets.
const SecretAPIKey = secretkeys.APIKey

// SendGridURL is SendGrid's v3 send endpoint (the provider's endpoint overrides it).
const SendGridURL = "https://api.sendgrid.com/v3/mail/send"

// SendGrid sends through the v3 Mail Send API.
type SendGrid struct {
	url, key string
	http     *http.Client
}

// NewSendGrid is the channel.Factory of type sendgrid.
func NewSendGrid(cfg channel.Config) (channel.Provider, error) {
	key := string(cfg.Secret[SecretAPIKey])
	if key == "" {
		return nil, fmt.Errorf("secret key %s: required", SecretAPIKey)
	}
	u := cfg.Provider.Endpoint
	if u == "" {
		u = SendGridURL
	}
	return &SendGrid{url: u, key: key, http: cfg.HTTP}, nil
}

type sgAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

type sgContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// SendGridMail is the v3 request body.
type SendGridMail struct {
	Personalizations []struct {
		To []sgAddress `json:"to"`
	} `json:"personalizations"`
	From             sgAddress         `json:"from"`
	ReplyTo          *sgAddress        `json:"reply_to,omitempty"`
	Subject          string            `json:"subject"`
	Content          []sgContent       `json:"content"`
	Headers          map[string]string `json:"headers,omitempty"`
	CustomArgs       map[string]string `json:"custom_args,omitempty"`
	TrackingSettings map[string]any    `json:"tracking_settings,omitempty"`
	Attachments      []sgAttachment    `json:"attachments,omitempty"`
}

type sgAttachment struct {
	Content     string `json:"content"` // base64
	Type        string `json:"type"`
	Filename    string `json:"filename"`
	Disposition string `json:"disposition"`
}

// Send posts the message; SendGrid answers 202 with X-Message-Id. Its event webhook
// returns custom_args, so the decision id comes back with every bounce.
func (p *SendGrid) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	if m.Sender.From == "" {
		return channel.Receipt{}, channel.Errorf(channel.ProviderFailed, "spec.sender.from: required for email")
	}
	text, htmlBody := Parts(m)
	body := SendGridMail{From: sgAddress{Email: m.Sender.From, Name: m.Sender.FromName}, Subject: m.Job.Subject,
		Content:    []sgContent{{Type: "text/plain", Value: text}},
		CustomArgs: map[string]string{"decision_id": m.Job.DecisionID, "brand": m.Job.Brand, "player": m.Job.Player},
		Headers:    map[string]string{DecisionHeader: m.Job.DecisionID},
		// Croupier tracks opens and clicks itself.
		TrackingSettings: map[string]any{"click_tracking": map[string]bool{"enable": false}, "open_tracking": map[string]bool{"enable": false}}}
	body.Personalizations = make([]struct {
		To []sgAddress `json:"to"`
	}, 1)
	body.Personalizations[0].To = []sgAddress{{Email: m.Job.To}}
	if htmlBody != "" {
		body.Content = append(body.Content, sgContent{Type: "text/html", Value: htmlBody})
	}
	if m.Sender.ReplyTo != "" {
		body.ReplyTo = &sgAddress{Email: m.Sender.ReplyTo}
	}
	if u := Unsubscribe(m); u != "" {
		body.Headers["List-Unsubscribe"] = "<" + u + ">"
		body.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
	}
	for _, a := range m.Attachments {
		body.Attachments = append(body.Attachments, sgAttachment{Content: base64.StdEncoding.EncodeToString(a.Data),
			Type: a.ContentType, Filename: a.Name, Disposition: "attachment"})
	}
	raw, _ := json.Marshal(body)
	resp, _, err := channel.Post(ctx, p.http, p.url, "application/json", raw, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+p.key) })
	if err != nil {
		return channel.Receipt{}, err
	}
	return channel.Receipt{ProviderID: resp.Header.Get("X-Message-Id")}, nil
}

// Mailgun sends through the Messages API: POST <endpoint>/v3/<domain>/messages.
type Mailgun struct {
	url, key string
	http     *http.Client
}

// MailgunURL is Mailgun's US API base (EU: https://api.eu.mailgun.net).
const MailgunURL = "https://api.mailgun.net"

// OptionDomain is the Mailgun sending domain.
const OptionDomain = "domain"

// NewMailgun is the channel.Factory of type mailgun.
func NewMailgun(cfg channel.Config) (channel.Provider, error) {
	key := string(cfg.Secret[SecretAPIKey])
	if key == "" {
		return nil, fmt.Errorf("secret key %s: required", SecretAPIKey)
	}
	domain := cfg.Provider.Options[OptionDomain]
	if domain == "" {
		return nil, fmt.Errorf("options.%s: required for mailgun", OptionDomain)
	}
	base := strings.TrimSuffix(cfg.Provider.Endpoint, "/")
	if base == "" {
		base = MailgunURL
	}
	return &Mailgun{url: base + "/v3/" + url.PathEscape(domain) + "/messages", key: key, http: cfg.HTTP}, nil
}

// Send posts the form; Mailgun answers 200 {"id":"<...>","message":"Queued. Thank you."}.
func (p *Mailgun) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	if m.Sender.From == "" {
		return channel.Receipt{}, channel.Errorf(channel.ProviderFailed, "spec.sender.from: required for email")
	}
	text, htmlBody := Parts(m)
	from := m.Sender.From
	if m.Sender.FromName != "" {
		from = fmt.Sprintf("%q <%s>", m.Sender.FromName, m.Sender.From)
	}
	f := url.Values{"from": {from}, "to": {m.Job.To}, "subject": {m.Job.Subject}, "text": {text},
		"o:tracking": {"no"}, "h:" + DecisionHeader: {m.Job.DecisionID}, "h:Message-Id": {"<" + MessageID(m) + ">"},
		"v:decision_id": {m.Job.DecisionID}, "v:brand": {m.Job.Brand}, "v:player": {m.Job.Player}}
	if htmlBody != "" {
		f.Set("html", htmlBody)
	}
	if m.Sender.ReplyTo != "" {
		f.Set("h:Reply-To", m.Sender.ReplyTo)
	}
	if u := Unsubscribe(m); u != "" {
		f.Set("h:List-Unsubscribe", "<"+u+">")
		f.Set("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	ct, form := "application/x-www-form-urlencoded", []byte(f.Encode())
	if len(m.Attachments) > 0 {
		// Files need multipart/form-data: every field as a part, each file as "attachment".
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, vs := range f {
			for _, v := range vs {
				_ = mw.WriteField(k, v)
			}
		}
		for _, a := range m.Attachments {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "attachment", "filename": a.Name}))
			h.Set("Content-Type", a.ContentType)
			pw, err := mw.CreatePart(h)
			if err != nil {
				return channel.Receipt{}, err
			}
			_, _ = pw.Write(a.Data)
		}
		_ = mw.Close()
		ct, form = mw.FormDataContentType(), buf.Bytes()
	}
	_, raw, err := channel.Post(ctx, p.http, p.url, ct, form,
		func(r *http.Request) { r.SetBasicAuth("api", p.key) })
	if err != nil {
		return channel.Receipt{}, err
	}
	var ans struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.ID == "" {
		// Accepted (2xx) but unreadable: the message is queued, so it is not sent again;
		// only the provider's id is missing.
		return channel.Receipt{}, nil
	}
	return channel.Receipt{ProviderID: ans.ID}, nil
}
