package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/render"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// The template studio's previews: a content's messages rendered by the dispatcher's own
// renderer (the templates the send path executes) for a chosen player or a sample
// profile, with each SMS's encoding and segments, and which locale a player of each of
// the brand's languages would get (a missing locale and its fallback, before saving).

const maxRenderBody = 1 << 20

// RenderRequest is what the studio asks to see.
type RenderRequest struct {
	// Campaign names .Campaign in the templates.
	Campaign string `json:"campaign,omitempty"`
	// Messages are one content's messages, as in a Campaign's spec.contents[].messages.
	Messages []crmv1.Message `json:"messages"`
	// Player renders for that player as the dispatcher knows them; otherwise Sample is
	// .Player (profile fields and attributes: firstName, ...).
	Player string            `json:"player,omitempty"`
	Sample map[string]string `json:"sample,omitempty"`
	// Event is .Event (the triggering event's data).
	Event map[string]any `json:"event,omitempty"`
}

// RenderedMessage is one message as a player would get it, or why it cannot be rendered.
type RenderedMessage struct {
	Channel crmv1.Channel `json:"channel"`
	Locale  string        `json:"locale"`
	Subject string        `json:"subject,omitempty"`
	Text    string        `json:"text,omitempty"`
	HTML    string        `json:"html,omitempty"`
	// Error and Field say what is wrong with the message (field of the request).
	Error string `json:"error,omitempty"`
	Field string `json:"field,omitempty"`
	// SMS is the text's encoding and segment count on the SMS channel.
	SMS *SMSFacts `json:"sms,omitempty"`
	// Cost is what the message costs at the brand's first provider of its channel (an SMS
	// times its segments), with Currency; empty when the channel's policy prices nothing.
	Cost     string `json:"cost,omitempty"`
	Currency string `json:"currency,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// SMSFacts is what an SMS costs in segments.
type SMSFacts struct {
	Encoding   string `json:"encoding"`
	Segments   int    `json:"segments"`
	Characters int    `json:"characters"`
}

// RenderAnswer is the studio's preview.
type RenderAnswer struct {
	Messages []RenderedMessage `json:"messages"`
	// Languages are the brand's languages (its PreferencePolicy), DefaultLanguage the one
	// a player without a message in theirs falls back to.
	Languages       []string `json:"languages"`
	DefaultLanguage string   `json:"defaultLanguage"`
	// Fallback says, for each channel and language of the brand, the locale a player of
	// that language gets; a language missing here gets nothing on that channel.
	Fallback map[crmv1.Channel]map[string]string `json:"fallback"`
	// Player is whose data filled the templates ("" for the sample).
	Player string `json:"player,omitempty"`
}

var renderField = regexp.MustCompile(`^spec\.contents\[0\]\.messages\[(\d+)\]\.(\w+)`)

func (in *Insight) render(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	var req RenderRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRenderBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		bodyProblem(w, err, "the body must be {\"messages\": [...], \"player\" or \"sample\"}: ")
		return
	}
	if len(req.Messages) == 0 {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "messages: at least one message is required", Field: "messages"})
		return
	}
	out := RenderAnswer{Messages: make([]RenderedMessage, len(req.Messages)), Fallback: map[crmv1.Channel]map[string]string{}}
	if pol := in.Catalog.Policy(brand); pol != nil {
		out.Languages, out.DefaultLanguage = pol.Languages, pol.DefaultLanguage
	}
	if out.DefaultLanguage == "" {
		out.DefaultLanguage = "az"
	}
	data := &render.Data{Campaign: req.Campaign, Links: map[string]string{"Unsubscribe": "https://example.invalid/unsubscribe"}, Event: req.Event}
	if req.Player != "" {
		if err := bus.CheckToken("player", req.Player); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "player"})
			return
		}
		p, err := in.player(r.Context(), brand, req.Player)
		if err != nil {
			ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the player could not be read: " + err.Error()})
			return
		}
		if p == nil {
			ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "player " + req.Player + " is not known to the dispatcher", Field: "player"})
			return
		}
		data.Player, out.Player = render.PlayerOf(p), p.ID
	} else {
		fields := map[string]any{}
		attrs := map[string]string{}
		for k, v := range req.Sample {
			switch k {
			case "ID", "Country", "Language", "Currency":
				fields[k] = v
			case "VIPLevel":
				n, _ := strconv.Atoi(v)
				fields[k] = int32(n)
			default:
				attrs[k] = v
			}
		}
		data.Player = render.PlayerData(fields, attrs)
	}
	// Each message alone, so one broken template does not hide the others' previews.
	for i, m := range req.Messages {
		rm := &out.Messages[i]
		rm.Channel, rm.Locale = m.Channel, m.Locale
		if m.BodyFrom != nil && m.Body == "" {
			rm.Error, rm.Field = fmt.Sprintf("the body is in ConfigMap %s key %s: the preview shows inline bodies", m.BodyFrom.Name, m.BodyFrom.Key), fmt.Sprintf("messages[%d].bodyFrom", i)
			continue
		}
		contents, err := render.Compile(&bus.CampaignConfig{Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{{Name: "studio", Messages: []crmv1.Message{m}}}}})
		if err != nil {
			rm.Error, rm.Field = strings.ReplaceAll(err.Error(), "spec.contents[0].messages[0]", fmt.Sprintf("messages[%d]", i)), fmt.Sprintf("messages[%d]", i)
			if g := renderField.FindStringSubmatch(err.Error()); g != nil {
				rm.Field = fmt.Sprintf("messages[%d].%s", i, g[2])
			}
			continue
		}
		got, err := contents["studio"].Pick(m.Channel, m.Locale).Execute("studio", data)
		if err != nil {
			rm.Error, rm.Field = err.Error(), fmt.Sprintf("messages[%d].body", i)
			if errors.Is(err, render.ErrEmpty) {
				rm.Error = "it renders to nothing for this player (every field it shows is missing): it would not be sent"
			}
			continue
		}
		rm.Subject, rm.Text, rm.HTML = got.Subject, got.Text, got.HTML
		units := int64(1)
		if m.Channel == crmv1.ChannelSMS {
			enc, n := sms.Segments(got.Text)
			rm.SMS = &SMSFacts{Encoding: string(enc), Segments: n, Characters: utf8.RuneCountInString(got.Text)}
			units = int64(max(n, 1))
		}
		if first, c, ok := primaryPrice(in.Catalog, brand, m.Channel); ok {
			rm.Cost, rm.Currency, rm.Provider = money.FormatMicrosIn(c.Micros*units, c.Currency), c.Currency, first
		}
	}
	// Which locale each of the brand's languages gets, per channel: the send path's Pick.
	all, err := render.Compile(&bus.CampaignConfig{Spec: crmv1.CampaignSpec{Contents: []crmv1.Content{{Name: "studio", Messages: inline(req.Messages)}}}})
	if err == nil {
		langs := append([]string{}, out.Languages...)
		if len(langs) == 0 {
			langs = []string{out.DefaultLanguage}
		}
		for _, m := range req.Messages {
			if _, done := out.Fallback[m.Channel]; done {
				continue
			}
			f := map[string]string{}
			for _, l := range langs {
				if got := all["studio"].Pick(m.Channel, l, out.DefaultLanguage); got != nil {
					f[l] = got.Locale
				}
			}
			out.Fallback[m.Channel] = f
		}
	}
	ingest.WriteJSON(w, http.StatusOK, out)
}

// inline is the messages with placeholder texts: which locale a language gets depends
// on the channels and locales only, not on whether each template parses.
func inline(ms []crmv1.Message) []crmv1.Message {
	out := make([]crmv1.Message, len(ms))
	for i, m := range ms {
		m.Body, m.BodyFrom = "-", nil
		if strings.TrimSpace(m.Subject) != "" {
			m.Subject = "-"
		}
		out[i] = m
	}
	return out
}
