package prefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Consent sources: which door a change came through.
const (
	SourceApp         = "app"
	SourceWeb         = "web"
	SourceSupport     = "support"
	SourceUnsubscribe = "unsubscribe-link"
	SourceSMSStop     = "sms-stop"
	SourceViber       = "viber-unsubscribe"
	SourceDoubleOptIn = "double-opt-in"
	SourceImport      = "suppression-import"
	SourceAdmin       = "admin-api"
	SourceComplaint   = "spam-complaint"
)

// Audit actions of preference changes.
const (
	AuditPreferences = "preferences.updated"
	AuditSuppressed  = "suppression.added"
	AuditUnlisted    = "suppression.removed"
)

// KindPreferences and KindSuppression are the AUDIT kind tokens of these changes.
const (
	KindPreferences = "preferences"
	KindSuppression = "suppression"
)

// Service changes preferences and the suppression list: every change is saved with a
// compare-and-set on croupier-prefs, appended to CONSENT (consent changes) and AUDIT.
type Service struct {
	JS    jetstream.JetStream
	KV    jetstream.KeyValue
	Cache *Cache
	// Policy is the brand's compiled policy, nil when it has none.
	Policy func(brand string) *Policy
	// Partitions is the partition count P.
	Partitions int
	Clock      clock.Func
}

// ErrNoPolicy means the brand has no PreferencePolicy, so nothing can be checked.
var ErrNoPolicy = errors.New("the brand has no PreferencePolicy")

// Load reads a player's preferences and their revision (0: none yet).
func (s *Service) Load(ctx context.Context, brand, player string) (*Prefs, uint64, error) {
	key := bus.PlayerKey(brand, bus.Partition(player, s.Partitions), player)
	e, err := s.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &Prefs{Brand: brand, Player: player}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	p := &Prefs{}
	if err := json.Unmarshal(e.Value(), p); err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", key, err)
	}
	p.Brand, p.Player = brand, player
	return p, e.Revision(), nil
}

// Effective is the full matrix a player sees: every category and channel of the policy
// with the player's choice or the default, and whether it may be changed.
type Effective struct {
	Category  crmv1.Category `json:"category"`
	Channel   crmv1.Channel  `json:"channel"`
	State     State          `json:"state"`
	Mandatory bool           `json:"mandatory"`
	Default   bool           `json:"default"`
}

// Matrix is the effective category x channel matrix.
func Matrix(pol *Policy, p *Prefs) []Effective {
	var out []Effective
	for _, r := range pol.Rules {
		if r == nil {
			continue
		}
		for _, ch := range r.Channels {
			e := Effective{Category: r.Category, Channel: ch, Mandatory: r.Mandatory}
			if c, ok := p.Choice(r.Category, ch); ok && !r.Mandatory {
				e.State = c.State
			} else {
				e.Default = !ok
				e.State = Withdrawn
				if r.Mandatory || r.Defaults.Has(ch) {
					e.State = Granted
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// Update applies change to a player's preferences under the brand's policy and records
// it. A grant on a channel that needs double opt-in becomes Pending. It returns the saved
// preferences, or a *FieldError for a change the policy refuses.
func (s *Service) Update(ctx context.Context, brand, player, source, actor string, change func(p *Prefs) error) (*Prefs, error) {
	pol := s.Policy(brand)
	if pol == nil {
		return nil, ErrNoPolicy
	}
	for attempt := 0; ; attempt++ {
		cur, rev, err := s.Load(ctx, brand, player)
		if err != nil {
			return nil, err
		}
		before, _ := json.Marshal(cur)
		next := &Prefs{}
		_ = json.Unmarshal(before, next)
		if err := change(next); err != nil {
			return nil, err
		}
		now := s.Clock.Now().UTC()
		var consent []bus.ConsentEntry
		for i := range next.Choices {
			c := &next.Choices[i]
			old, had := cur.Choice(c.Category, c.Channel)
			if c.State == Granted && pol.DoubleOptIn.Has(c.Channel) && c.Category == crmv1.CategoryMarketing &&
				source != SourceDoubleOptIn && (!had || old.State != Granted) {
				c.State = Pending
			}
			if had && old.State == c.State {
				c.Updated, c.Source = old.Updated, old.Source
				continue
			}
			c.Updated, c.Source = now, source
			if c.State != Pending {
				consent = append(consent, bus.ConsentEntry{Time: now, Brand: brand, Player: player, Category: c.Category,
					Channel: c.Channel, Granted: c.State == Granted, Source: source, Actor: actor})
			}
		}
		if err := next.Prepare(pol); err != nil {
			return nil, err
		}
		next.Brand, next.Player, next.Updated = brand, player, now
		after, _ := json.Marshal(next)
		key := bus.PlayerKey(brand, bus.Partition(player, s.Partitions), player)
		var newRev uint64
		if rev == 0 {
			newRev, err = s.KV.Create(ctx, key, after)
		} else {
			newRev, err = s.KV.Update(ctx, key, after, rev)
		}
		if err != nil {
			if attempt < 5 && bus.Conflict(err) {
				continue // changed by someone else meanwhile: apply the change again
			}
			return nil, fmt.Errorf("saving preferences: %w", err)
		}
		if s.Cache != nil {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = s.Cache.WaitFor(wctx, newRev)
			cancel()
		}
		if err := s.record(ctx, brand, player, source, actor, consent, before, after, now); err != nil {
			return nil, err
		}
		return next, nil
	}
}

// record appends the consent entries and the audit entry of one change.
func (s *Service) record(ctx context.Context, brand, player, source, actor string, consent []bus.ConsentEntry, before, after []byte, now time.Time) error {
	part := bus.Partition(player, s.Partitions)
	for _, e := range consent {
		b, _ := bus.Encode(e)
		if _, err := s.JS.Publish(ctx, bus.ConsentSubject(brand, part, player), b); err != nil {
			return fmt.Errorf("appending to the consent ledger: %w", err)
		}
	}
	if slices.Equal(stripTimes(before), stripTimes(after)) {
		return nil
	}
	entry := bus.AuditEntry{Time: now, Brand: brand, Kind: KindPreferences, Name: player, Action: AuditPreferences,
		Actor: actor, Note: "source " + source, Changes: []bus.FieldChange{{Path: "preferences", Before: before, After: after}}}
	b, _ := bus.Encode(entry)
	if _, err := s.JS.Publish(ctx, bus.AuditSubject(brand, KindPreferences, player), b); err != nil {
		return fmt.Errorf("auditing a preference change: %w", err)
	}
	return nil
}

// stripTimes drops the updated stamp so an unchanged save is not audited.
func stripTimes(b []byte) []byte {
	var p Prefs
	if json.Unmarshal(b, &p) != nil {
		return b
	}
	p.Updated = time.Time{}
	out, _ := json.Marshal(p)
	return out
}

// Withdraw switches the category off on the channels (every channel of the category when
// none), as one change from one door.
func (s *Service) Withdraw(ctx context.Context, brand, player string, cat crmv1.Category, chs []crmv1.Channel, source, actor string) (*Prefs, error) {
	pol := s.Policy(brand)
	if pol == nil {
		return nil, ErrNoPolicy
	}
	rule := pol.Rule(cat)
	if rule == nil {
		return nil, &FieldError{Field: "category", Reason: fmt.Sprintf("the brand sends no %s messages", cat)}
	}
	if rule.Mandatory {
		return nil, &FieldError{Field: "category", Reason: fmt.Sprintf("%s messages are mandatory and cannot be switched off", cat), Conflict: true}
	}
	if len(chs) == 0 {
		chs = rule.Channels
	}
	return s.Update(ctx, brand, player, source, actor, func(p *Prefs) error {
		for _, ch := range chs {
			if !slices.Contains(rule.Channels, ch) {
				continue
			}
			p.Set(cat, ch, Withdrawn)
		}
		return nil
	})
}

// Set records a choice, replacing an earlier one for the same category and channel.
func (p *Prefs) Set(cat crmv1.Category, ch crmv1.Channel, st State) {
	for i := range p.Choices {
		if p.Choices[i].Category == cat && p.Choices[i].Channel == ch {
			p.Choices[i].State = st
			return
		}
	}
	p.Choices = append(p.Choices, Choice{Category: cat, Channel: ch, State: st})
}

// Suppress puts an address on the brand's suppression list for the channels (every
// channel when none) and records it in CONSENT (with the player when known) and AUDIT.
func (s *Service) Suppress(ctx context.Context, brand, hash string, chs []crmv1.Channel, reason, source, actor, player string) error {
	now := s.Clock.Now().UTC()
	sup := Suppression{Hash: hash, Channels: chs, Reason: reason, Source: source, Actor: actor, Added: now}
	b, _ := json.Marshal(sup)
	if _, err := s.KV.Put(ctx, SuppressionKey(brand, hash), b); err != nil {
		return fmt.Errorf("saving the suppression: %w", err)
	}
	subject := bus.SuppressionConsentSubject(brand, hash)
	if player != "" {
		subject = bus.ConsentSubject(brand, bus.Partition(player, s.Partitions), player)
	}
	for _, ch := range orAll(chs) {
		e := bus.ConsentEntry{Time: now, Brand: brand, Player: player, AddressHash: hash, Category: crmv1.CategoryMarketing,
			Channel: ch, Granted: false, Source: source, Actor: actor}
		eb, _ := bus.Encode(e)
		if _, err := s.JS.Publish(ctx, subject, eb); err != nil {
			return fmt.Errorf("appending to the consent ledger: %w", err)
		}
	}
	entry := bus.AuditEntry{Time: now, Brand: brand, Kind: KindSuppression, Name: hash, Action: AuditSuppressed, Actor: actor,
		Note: "source " + source + "; " + reason}
	ab, _ := bus.Encode(entry)
	if _, err := s.JS.Publish(ctx, bus.AuditSubject(brand, KindSuppression, hash), ab); err != nil {
		return fmt.Errorf("auditing a suppression: %w", err)
	}
	return nil
}

// ErrNotSuppressed is returned for an address that is not on the list.
var ErrNotSuppressed = errors.New("the address is not on the suppression list")

// Suppressed reads an address's entry on the brand's suppression list.
func (s *Service) Suppressed(ctx context.Context, brand, hash string) (*Suppression, error) {
	e, err := s.KV.Get(ctx, SuppressionKey(brand, hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotSuppressed
	} else if err != nil {
		return nil, err
	}
	var sup Suppression
	if err := json.Unmarshal(e.Value(), &sup); err != nil {
		return nil, fmt.Errorf("reading the suppression: %w", err)
	}
	return &sup, nil
}

// Unsuppress takes an address off the list; ErrNotSuppressed when it is not on it.
func (s *Service) Unsuppress(ctx context.Context, brand, hash, actor string) error {
	if _, err := s.Suppressed(ctx, brand, hash); err != nil {
		return err
	}
	if err := s.KV.Purge(ctx, SuppressionKey(brand, hash)); err != nil {
		return err
	}
	entry := bus.AuditEntry{Time: s.Clock.Now().UTC(), Brand: brand, Kind: KindSuppression, Name: hash, Action: AuditUnlisted, Actor: actor}
	ab, _ := bus.Encode(entry)
	_, err := s.JS.Publish(ctx, bus.AuditSubject(brand, KindSuppression, hash), ab)
	return err
}

func orAll(chs []crmv1.Channel) []crmv1.Channel {
	if len(chs) > 0 {
		return chs
	}
	return Channels[:]
}
