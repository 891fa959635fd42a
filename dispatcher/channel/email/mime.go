// Package email is the email channel's providers: SMTP (go-smtp, connection reuse,
// STARTTLS or implicit TLS, AUTH, DKIM signing with go-msgauth), SendGrid v3 and Mailgun.
// Every message carries List-Unsubscribe with RFC 8058 one-click when the job has an
// unsubscribe link, a text part, and the decision id in its Message-ID.
package email

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"golang.org/x/net/html"

	"github.com/croupier-crm/croupier/dispatcher/channel"
)

// DecisionHeader names the decision in every message, for bounces and complaints.
const DecisionHeader = "X-Croupier-Decision"

// Parts are a message's bodies: the text part is always there.
func Parts(m *channel.Message) (text, htmlBody string) {
	text, htmlBody = m.Job.Text, m.Job.HTML
	if text == "" && htmlBody != "" {
		text = TextFromHTML(htmlBody)
	}
	return text, htmlBody
}

// Unsubscribe is the job's one-click unsubscribe link ("" when it has none).
func Unsubscribe(m *channel.Message) string { return m.Job.Data["unsubscribeURL"] }

// MessageID is <idempotency key@sender domain>.
func MessageID(m *channel.Message) string {
	_, domain, _ := strings.Cut(m.Sender.From, "@")
	if domain == "" {
		domain = "croupier.invalid"
	}
	return m.IdempotencyKey + "@" + domain
}

// Compose writes the RFC 5322 message: multipart/alternative text and HTML (or text only),
// then the attachments (base64).
func Compose(w io.Writer, m *channel.Message, now time.Time) error {
	if m.Sender.From == "" {
		return channel.Errorf(channel.ProviderFailed, "spec.sender.from: required for email")
	}
	if m.Job.To == "" {
		return channel.Errorf(channel.Rejected, "no address")
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: m.Sender.FromName, Address: m.Sender.From}})
	h.SetAddressList("To", []*mail.Address{{Address: m.Job.To}})
	if m.Sender.ReplyTo != "" {
		h.SetAddressList("Reply-To", []*mail.Address{{Address: m.Sender.ReplyTo}})
	}
	h.SetSubject(m.Job.Subject)
	h.SetDate(now)
	h.SetMessageID(MessageID(m))
	h.Set(DecisionHeader, m.Job.DecisionID)
	if u := Unsubscribe(m); u != "" {
		h.Set("List-Unsubscribe", "<"+u+">")
		h.Set("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	text, htmlBody := Parts(m)
	mw, err := mail.CreateWriter(w, h)
	if err != nil {
		return err
	}
	iw, err := mw.CreateInline()
	if err != nil {
		return err
	}
	part := func(ct, body string) error {
		var ph mail.InlineHeader
		ph.SetContentType(ct, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := iw.CreatePart(ph)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(pw, body); err != nil {
			return err
		}
		return pw.Close()
	}
	if err := part("text/plain", text); err != nil {
		return err
	}
	if htmlBody != "" {
		if err := part("text/html", htmlBody); err != nil {
			return err
		}
	}
	if err := iw.Close(); err != nil {
		return err
	}
	for _, a := range m.Attachments {
		var ah mail.AttachmentHeader
		ah.SetContentType(a.ContentType, nil)
		ah.SetFilename(a.Name)
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return err
		}
		if _, err := aw.Write(a.Data); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// TextFromHTML is the readable text of an HTML body, for the text part: block elements
// become line breaks, links keep their address, scripts and styles are dropped.
func TextFromHTML(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	var href string
	for {
		switch z.Next() {
		case html.ErrorToken: // io.EOF, or HTML too broken to read further
			return strings.TrimSpace(collapse(b.String()))
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, attr := z.TagName()
			switch string(name) {
			case "script", "style", "head":
				skip++
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "table":
				b.WriteString("\n")
			case "a":
				href = ""
				for attr {
					var k, v []byte
					k, v, attr = z.TagAttr()
					if string(k) == "href" {
						href = string(v)
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head":
				skip = max(skip-1, 0)
			case "p", "div", "tr", "li", "h1", "h2", "h3", "table":
				b.WriteString("\n")
			case "a":
				if href != "" && !strings.HasPrefix(href, "mailto:") {
					fmt.Fprintf(&b, " (%s)", href)
				}
				href = ""
			}
		}
	}
}

// collapse trims spaces per line and keeps at most one empty line.
func collapse(s string) string {
	var out bytes.Buffer
	empty := 0
	for _, line := range strings.Split(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			empty++
			if empty > 1 {
				continue
			}
		} else {
			empty = 0
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.String()
}
