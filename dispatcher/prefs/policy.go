// Package prefs is the player-facing side of routing: the brand's compiled preference
// policy, each player's preferences (category x channel consent, language per channel,
// quiet hours, caps), the consent ledger and the brand-wide suppression list.
package prefs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Channels in a fixed order; a channel's index is its bit in a Set.
var Channels = [...]crmv1.Channel{
	crmv1.ChannelEmail, crmv1.ChannelSMS, crmv1.ChannelViber, crmv1.ChannelPush,
	crmv1.ChannelWebPush, crmv1.ChannelInApp, crmv1.ChannelWebhook,
}

// Categories in a fixed order.
var Categories = [...]crmv1.Category{crmv1.CategoryMarketing, crmv1.CategoryService, crmv1.CategoryResponsibleGaming}

// ChannelIndex is the channel's position in Channels, or -1.
func ChannelIndex(c crmv1.Channel) int {
	for i, x := range Channels {
		if x == c {
			return i
		}
	}
	return -1
}

// CategoryIndex is the category's position in Categories, or -1.
func CategoryIndex(c crmv1.Category) int {
	for i, x := range Categories {
		if x == c {
			return i
		}
	}
	return -1
}

// Set is a set of channels as bits.
type Set uint8

// Has reports whether c is in the set.
func (s Set) Has(c crmv1.Channel) bool {
	i := ChannelIndex(c)
	return i >= 0 && s&(1<<i) != 0
}

// With adds c.
func (s Set) With(c crmv1.Channel) Set {
	if i := ChannelIndex(c); i >= 0 {
		return s | 1<<i
	}
	return s
}

// Cap is a frequency cap: Max messages per rolling Window, or per local calendar day.
type Cap struct {
	Max         int
	Window      time.Duration
	CalendarDay bool
	// Channel limits the cap to one channel; "" is every channel.
	Channel crmv1.Channel
}

// Window is a nightly span of local time in minutes after midnight; it may wrap midnight.
type Window struct {
	Start, End int
}

// ParseWindow reads "HH:MM" start and end.
func ParseWindow(start, end string) (Window, error) {
	s, err := parseClock(start)
	if err != nil {
		return Window{}, fmt.Errorf("start: %w", err)
	}
	e, err := parseClock(end)
	if err != nil {
		return Window{}, fmt.Errorf("end: %w", err)
	}
	if s == e {
		return Window{}, fmt.Errorf("start and end must differ")
	}
	return Window{Start: s, End: e}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return hh*60 + mm, nil
}

// Contains reports whether local time t falls in the window.
func (w Window) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

// End returns the first moment at or after local time t when the window is over (t must
// be inside the window), in t's location.
func (w Window) EndAfter(t time.Time) time.Time {
	y, mo, d := t.Date()
	end := time.Date(y, mo, d, w.End/60, w.End%60, 0, 0, t.Location())
	if !end.After(t) {
		end = time.Date(y, mo, d+1, w.End/60, w.End%60, 0, 0, t.Location())
	}
	return end
}

// String is HH:MM-HH:MM.
func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

// CategoryRule is the compiled policy of one category.
type CategoryRule struct {
	Category  crmv1.Category
	Mandatory bool
	// Channels in priority order; Defaults holds those opted in for players who chose nothing.
	Channels []crmv1.Channel
	Defaults Set
	Caps     []Cap
	// Quiet is the quiet-hours window, nil when the category has none.
	Quiet       *Window
	QuietAction crmv1.QuietHoursAction
	SLA         time.Duration
	// RetryFor is how long a mandatory message is tried before it is recorded undelivered.
	RetryFor time.Duration
	Adaptive bool
}

// Policy is a brand's compiled PreferencePolicy, ready for one lookup per decision step.
type Policy struct {
	Brand       string
	Generation  int64
	Rules       [len(Categories)]*CategoryRule
	DefaultZone *time.Location
	// AttributionWindow is how long after a campaign's last accepted message to a player a
	// conversion is credited to that message's channel (last touch).
	AttributionWindow time.Duration
	DedupWindow       time.Duration
	Languages         []string
	DefaultLanguage   string
	RequireKYC        bool
	RequireAge        bool
	ExcludeCooling    bool
	DoubleOptIn       Set
	HoldoutPercent    int
	// IntegrationSecret names the Secret with the brand's keys ("" when none).
	IntegrationSecret string
}

// Rule is the category's rule, nil when the policy does not list the category.
func (p *Policy) Rule(c crmv1.Category) *CategoryRule {
	if i := CategoryIndex(c); i >= 0 {
		return p.Rules[i]
	}
	return nil
}

// HasLanguage reports whether the brand writes content in lang.
func (p *Policy) HasLanguage(lang string) bool {
	for _, l := range p.Languages {
		if l == lang {
			return true
		}
	}
	return len(p.Languages) == 0 && lang == p.DefaultLanguage
}

// DefaultSLA is the service-level target of mandatory categories without an sla.
const DefaultSLA = 5 * time.Minute

// DefaultRetryFor is how long a mandatory message without a retryFor is tried.
const DefaultRetryFor = time.Hour

// Compile turns a published PreferencePolicy into a Policy.
func Compile(brand string, rec *bus.PreferencePolicyConfig, generation int64) (*Policy, error) {
	spec := rec.Spec
	p := &Policy{Brand: brand, Generation: generation, DedupWindow: 24 * time.Hour, DefaultLanguage: spec.DefaultLanguage,
		Languages: spec.Languages, HoldoutPercent: int(spec.GlobalHoldoutPercent), ExcludeCooling: true}
	zone := spec.DefaultTimeZone
	if zone == "" {
		zone = clock.DefaultZone
	}
	loc, err := clock.Location(zone)
	if err != nil {
		return nil, fmt.Errorf("spec.defaultTimeZone: %w", err)
	}
	p.DefaultZone = loc
	p.AttributionWindow = 7 * 24 * time.Hour
	if a := spec.Attribution; a != nil && a.WindowDays > 0 {
		p.AttributionWindow = time.Duration(a.WindowDays) * 24 * time.Hour
	}
	if p.DefaultLanguage == "" {
		p.DefaultLanguage = "az"
	}
	if spec.DedupWindow != nil {
		p.DedupWindow = spec.DedupWindow.Duration
	}
	if g := spec.MarketingGates; g != nil {
		p.RequireKYC, p.RequireAge = g.RequireKYC, g.RequireAgeVerified
		if g.ExcludeCoolingOff != nil {
			p.ExcludeCooling = *g.ExcludeCoolingOff
		}
	}
	for _, c := range spec.DoubleOptIn {
		p.DoubleOptIn = p.DoubleOptIn.With(c)
	}
	if spec.Integration != nil {
		p.IntegrationSecret = spec.Integration.SecretRef.Name
	}
	for i, cp := range spec.Categories {
		ci := CategoryIndex(cp.Category)
		if ci < 0 {
			return nil, fmt.Errorf("spec.categories[%d].category: unknown category %q", i, cp.Category)
		}
		r := &CategoryRule{Category: cp.Category, Mandatory: rec.Mandatory[cp.Category], Adaptive: cp.AdaptiveFrequency}
		if cp.Mandatory != nil {
			r.Mandatory = *cp.Mandatory
		}
		for _, ch := range cp.Channels {
			r.Channels = append(r.Channels, ch.Channel)
			if ch.Default == crmv1.OptedIn {
				r.Defaults = r.Defaults.With(ch.Channel)
			}
		}
		for _, c := range cp.FrequencyCaps {
			cp := Cap{Max: int(c.Max), CalendarDay: c.CalendarDay, Channel: c.Channel}
			if c.Window != nil {
				cp.Window = c.Window.Duration
			}
			r.Caps = append(r.Caps, cp)
		}
		if q := cp.QuietHours; q != nil {
			w, err := ParseWindow(q.Start, q.End)
			if err != nil {
				return nil, fmt.Errorf("spec.categories[%d].quietHours.%w", i, err)
			}
			r.Quiet, r.QuietAction = &w, q.Action
			if r.QuietAction == "" {
				r.QuietAction = crmv1.QuietHoursDefer
			}
		}
		if r.Mandatory {
			r.SLA, r.RetryFor = DefaultSLA, DefaultRetryFor
			if cp.RetryFor != nil {
				r.RetryFor = cp.RetryFor.Duration
			}
		}
		if cp.SLA != nil {
			r.SLA = cp.SLA.Duration
		}
		p.Rules[ci] = r
	}
	return p, nil
}
