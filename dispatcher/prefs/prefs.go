package prefs

import (
	"fmt"
	"slices"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// State is a player's consent to one category on one channel.
type State string

// Consent states. Pending is a grant awaiting its double opt-in confirmation; it does not
// allow sending.
const (
	Granted   State = "granted"
	Withdrawn State = "withdrawn"
	Pending   State = "pending"
)

// Choice is what a player chose for one category on one channel.
type Choice struct {
	Category crmv1.Category `json:"category"`
	Channel  crmv1.Channel  `json:"channel"`
	State    State          `json:"state"`
	Updated  time.Time      `json:"updated"`
	Source   string         `json:"source"`
}

// PlayerCap is a frequency cap a player set for a category; it applies on top of the
// policy's caps, so a player can only receive fewer messages.
type PlayerCap struct {
	Category crmv1.Category `json:"category"`
	Max      int            `json:"max"`
	Window   Duration       `json:"window"`
}

// Duration is a time.Duration written as "24h" in JSON.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "24h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("a duration is a string such as \"168h\"")
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ChannelLanguage is the language a player reads on one channel.
type ChannelLanguage struct {
	Channel  crmv1.Channel `json:"channel"`
	Language string        `json:"language"`
}

// QuietHours is a player's own nightly window, in addition to the policy's.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Prefs is a player's preferences: the croupier-prefs value. Contact data never appears
// here; the suppression list holds hashes of addresses.
type Prefs struct {
	Brand     string            `json:"brand"`
	Player    string            `json:"player"`
	Choices   []Choice          `json:"choices,omitempty"`
	Languages []ChannelLanguage `json:"languages,omitempty"`
	Quiet     *QuietHours       `json:"quietHours,omitempty"`
	Caps      []PlayerCap       `json:"caps,omitempty"`
	Updated   time.Time         `json:"updated,omitzero"`

	quiet *Window
}

// Choice returns the player's choice for a category on a channel.
func (p *Prefs) Choice(cat crmv1.Category, ch crmv1.Channel) (Choice, bool) {
	if p == nil {
		return Choice{}, false
	}
	for _, c := range p.Choices {
		if c.Category == cat && c.Channel == ch {
			return c, true
		}
	}
	return Choice{}, false
}

// Language is the player's language on a channel, "" when not set.
func (p *Prefs) Language(ch crmv1.Channel) string {
	if p == nil {
		return ""
	}
	for _, l := range p.Languages {
		if l.Channel == ch {
			return l.Language
		}
	}
	return ""
}

// QuietWindow is the player's own quiet window, nil when none.
func (p *Prefs) QuietWindow() *Window {
	if p == nil {
		return nil
	}
	return p.quiet
}

// Consents reports whether the player allows cat on ch: their choice, else the policy's
// default. Pending (double opt-in not confirmed) does not allow.
func Consents(pol *Policy, p *Prefs, rule *CategoryRule, ch crmv1.Channel) bool {
	if c, ok := p.Choice(rule.Category, ch); ok {
		return c.State == Granted
	}
	return rule.Defaults.Has(ch)
}

// FieldError is a preference change that breaks the policy; Field is the JSON path.
type FieldError struct {
	Field  string
	Reason string
	// Conflict marks a change the policy forbids (mandatory categories) rather than a
	// malformed one.
	Conflict bool
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Prepare checks p against the brand's policy and compiles what routing reads. It
// returns a *FieldError naming the field and the reason.
func (p *Prefs) Prepare(pol *Policy) error {
	for i, c := range p.Choices {
		f := fmt.Sprintf("choices[%d]", i)
		if CategoryIndex(c.Category) < 0 {
			return &FieldError{Field: f + ".category", Reason: fmt.Sprintf("unknown category %q (marketing, service, responsibleGaming)", c.Category)}
		}
		if ChannelIndex(c.Channel) < 0 {
			return &FieldError{Field: f + ".channel", Reason: fmt.Sprintf("unknown channel %q", c.Channel)}
		}
		if c.State != Granted && c.State != Withdrawn && c.State != Pending {
			return &FieldError{Field: f + ".state", Reason: fmt.Sprintf("%q is not granted or withdrawn", c.State)}
		}
		if pol == nil {
			continue
		}
		rule := pol.Rule(c.Category)
		if rule == nil {
			return &FieldError{Field: f + ".category", Reason: fmt.Sprintf("the brand sends no %s messages", c.Category)}
		}
		if !slices.Contains(rule.Channels, c.Channel) {
			return &FieldError{Field: f + ".channel", Reason: fmt.Sprintf("the brand does not send %s messages by %s", c.Category, c.Channel)}
		}
		if rule.Mandatory && c.State != Granted {
			return &FieldError{Field: f + ".state", Reason: fmt.Sprintf("%s messages are mandatory and cannot be switched off", c.Category), Conflict: true}
		}
		for j := range i {
			if p.Choices[j].Category == c.Category && p.Choices[j].Channel == c.Channel {
				return &FieldError{Field: f, Reason: fmt.Sprintf("%s by %s is listed twice", c.Category, c.Channel)}
			}
		}
	}
	for i, l := range p.Languages {
		f := fmt.Sprintf("languages[%d]", i)
		if ChannelIndex(l.Channel) < 0 {
			return &FieldError{Field: f + ".channel", Reason: fmt.Sprintf("unknown channel %q", l.Channel)}
		}
		if pol != nil && !pol.HasLanguage(l.Language) {
			return &FieldError{Field: f + ".language", Reason: fmt.Sprintf("the brand writes no content in %q (languages: %v)", l.Language, pol.Languages)}
		}
	}
	p.quiet = nil
	if p.Quiet != nil {
		s, err := parseClock(p.Quiet.Start)
		if err != nil {
			return &FieldError{Field: "quietHours.start", Reason: err.Error()}
		}
		e, err := parseClock(p.Quiet.End)
		if err != nil {
			return &FieldError{Field: "quietHours.end", Reason: err.Error()}
		}
		if s == e {
			return &FieldError{Field: "quietHours", Reason: "start and end must differ"}
		}
		p.quiet = &Window{Start: s, End: e}
	}
	for i, c := range p.Caps {
		f := fmt.Sprintf("caps[%d]", i)
		if CategoryIndex(c.Category) < 0 {
			return &FieldError{Field: f + ".category", Reason: fmt.Sprintf("unknown category %q", c.Category)}
		}
		if c.Max < 1 || c.Max > 100 {
			return &FieldError{Field: f + ".max", Reason: "must be between 1 and 100"}
		}
		if c.Window.Duration < time.Hour || c.Window.Duration > 90*24*time.Hour {
			return &FieldError{Field: f + ".window", Reason: "must be between 1h and 2160h (90 days)"}
		}
		if pol != nil {
			if rule := pol.Rule(c.Category); rule != nil && rule.Mandatory {
				return &FieldError{Field: f + ".category", Reason: fmt.Sprintf("%s messages are mandatory and are never capped", c.Category), Conflict: true}
			}
		}
	}
	return nil
}
