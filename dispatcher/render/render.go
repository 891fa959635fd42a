// Package render turns a campaign's content into the message one channel sends: the
// template executed over the player's fields in the player's language, with the links a
// message needs (one-click unsubscribe).
package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/templates"
)

// Message is one parsed channel + locale variant of a content.
type Message struct {
	Channel crmv1.Channel
	Locale  string
	Format  crmv1.ContentFormat
	Subject *texttemplate.Template
	Text    *texttemplate.Template
	HTML    *htmltemplate.Template
	Src     crmv1.Message
}

// Content is a campaign's named content, parsed.
type Content struct {
	Name string
	Hash string
	// DedupKey is the content's spec.contents[].dedupKey ("" when none).
	DedupKey string
	// Offered are the channels the content has a message for.
	Offered  prefs.Set
	messages []*Message
}

// Contents are a campaign's contents by name.
type Contents map[string]*Content

// Compile parses every message of a compiled campaign.
func Compile(cfg *bus.CampaignConfig) (Contents, error) {
	out := Contents{}
	for ci, c := range cfg.Spec.Contents {
		ct := &Content{Name: c.Name, Hash: cfg.ContentHashes[c.Name], DedupKey: c.DedupKey}
		for mi, m := range c.Messages {
			field := fmt.Sprintf("spec.contents[%d].messages[%d]", ci, mi)
			msg := &Message{Channel: m.Channel, Locale: m.Locale, Format: m.Format, Src: m}
			var err error
			if m.Subject != "" {
				if msg.Subject, err = templates.Text(field+".subject", m.Subject); err != nil {
					return nil, err
				}
			}
			if m.Format == crmv1.FormatHTML {
				msg.HTML, err = templates.HTML(field+".body", m.Body)
			} else {
				msg.Text, err = templates.Text(field+".body", m.Body)
			}
			if err != nil {
				return nil, err
			}
			ct.messages = append(ct.messages, msg)
			ct.Offered = ct.Offered.With(m.Channel)
		}
		out[c.Name] = ct
	}
	return out, nil
}

// Pick chooses the message for a channel in the first of langs that has one, else any
// locale of the channel.
func (c *Content) Pick(ch crmv1.Channel, langs ...string) *Message {
	for _, l := range langs {
		if l == "" {
			continue
		}
		for _, m := range c.messages {
			if m.Channel == ch && m.Locale == l {
				return m
			}
		}
		// "pt" matches "pt-BR" and the reverse.
		base, _, _ := strings.Cut(l, "-")
		for _, m := range c.messages {
			mb, _, _ := strings.Cut(m.Locale, "-")
			if m.Channel == ch && mb == base {
				return m
			}
		}
	}
	for _, m := range c.messages {
		if m.Channel == ch {
			return m
		}
	}
	return nil
}

// Rendered is a message ready for a channel worker.
type Rendered struct {
	Locale     string
	TemplateID string
	Subject    string
	Text       string
	HTML       string
	DeepLink   string
	ImageURL   string
	Button     string
	// Unsubscribe is the one-click unsubscribe link the message carries, if any.
	Unsubscribe string
}

// Data is what templates see: .Player (profile fields and attributes, attribute names
// also capitalised: firstName -> .Player.FirstName), .Event (the triggering event's
// data), .Campaign, .Links and .Coupon (the promo code the flow issued).
type Data struct {
	Player   map[string]any
	Event    map[string]any
	Campaign string
	Links    map[string]string
	Coupon   string
}

// PlayerData builds .Player from profile fields and attributes.
func PlayerData(fields map[string]any, attrs map[string]string) map[string]any {
	out := make(map[string]any, len(fields)+2*len(attrs))
	for k, v := range attrs {
		out[k] = v
		if r, n := utf8.DecodeRuneInString(k); n > 0 && unicode.IsLower(r) {
			out[string(unicode.ToUpper(r))+k[n:]] = v
		}
	}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// Execute renders m with data.
func (m *Message) Execute(content string, data *Data) (Rendered, error) {
	r := Rendered{Locale: m.Locale, TemplateID: content + "/" + string(m.Channel) + "/" + m.Locale,
		DeepLink: m.Src.DeepLink, ImageURL: m.Src.ImageURL, Button: m.Src.ButtonText}
	b := buffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= 64<<10 {
			b.Reset()
			buffers.Put(b)
		}
	}()
	if m.Subject != nil {
		if err := m.Subject.Execute(b, data); err != nil {
			return r, fmt.Errorf("rendering %s subject: %w", r.TemplateID, err)
		}
		r.Subject = noValue.Replace(b.String())
		b.Reset()
	}
	if m.HTML != nil {
		if err := m.HTML.Execute(b, data); err != nil {
			return r, fmt.Errorf("rendering %s: %w", r.TemplateID, err)
		}
		r.HTML = b.String()
		if strings.TrimSpace(r.HTML) == "" {
			return r, fmt.Errorf("rendering %s: %w", r.TemplateID, ErrEmpty)
		}
		return r, nil
	}
	if err := m.Text.Execute(b, data); err != nil {
		return r, fmt.Errorf("rendering %s: %w", r.TemplateID, err)
	}
	r.Text = noValue.Replace(b.String())
	if m.Format == crmv1.FormatMarkdown {
		// The Markdown is the text part; goldmark makes the HTML part and escapes any
		// HTML a player's field or the template holds (raw HTML is not passed through).
		b.Reset()
		if err := markdown.Convert([]byte(r.Text), b); err != nil {
			return r, fmt.Errorf("rendering %s as Markdown: %w", r.TemplateID, err)
		}
		r.HTML = b.String()
	}
	if strings.TrimSpace(r.Text) == "" {
		return r, fmt.Errorf("rendering %s: %w", r.TemplateID, ErrEmpty)
	}
	return r, nil
}

// ErrEmpty is a message that renders to nothing (every field it shows is missing): it is
// never sent.
var ErrEmpty = errors.New("the message is empty")

var markdown = goldmark.New(goldmark.WithExtensions(extension.Linkify, extension.Strikethrough, extension.Table))

// buffers are reused across messages: rendering allocates only the results.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// noValue removes what text/template prints for a field the player or event does not have
// ("<no value>" under missingkey=zero with map data), as Helm does: "Salam, !" rather than
// "Salam, <no value>!". html/template already prints nothing.
var noValue = strings.NewReplacer("<no value>", "")

// PlayerOf is .Player for a player as the dispatcher keeps them: the profile's fields a
// template may show and the attributes (firstName from the platform's attrs, ...).
func PlayerOf(p *players.Player) map[string]any {
	attrs := make(map[string]string, len(p.Attrs))
	for _, a := range p.Attrs {
		attrs[a.Key] = a.Value
	}
	return PlayerData(map[string]any{"ID": p.ID, "Country": p.Country, "Language": p.Language,
		"Currency": p.Currency, "VIPLevel": p.VIPLevel}, attrs)
}
