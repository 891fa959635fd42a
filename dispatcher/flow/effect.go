package flow

import (
	"time"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/report"
)

// Effect is a player's measurement of a campaign's effect (docs/analytics.md): the
// deposits and gaming result (stakes minus wins, NGR) in the Days before the player's
// start and, as they happen, in the Days after; and the days after it (1, 7, 30) on which
// the player was active. Kept on the player's Entry for EffectKeep after the start, then
// dropped: a player who enters again later is measured again.
type Effect struct {
	Start  int64    `json:"start"` // Unix seconds
	Days   int      `json:"days"`
	Arm    string   `json:"arm"`
	Cohort string   `json:"cohort"` // the UTC day of the start
	Dep    [2]int64 `json:"dep"`    // before, after
	NGR    [2]int64 `json:"ngr"`
	Marks  uint8    `json:"marks,omitempty"` // bit 0: day 1, 1: day 7, 2: day 30
}

// EffectKeep is how long a player's effect is kept: retention on day 30 is the last.
const EffectKeep = 31 * 24 * time.Hour

// effectDays is N (report.EffectDays): the goal window in whole days, 1 to 7.
func effectDays(cp *Campaign) int { return report.EffectDays(cp.Spec()) }

// measure starts the player's effect measurement in cp, once within EffectKeep: the
// trailing N days' deposits and NGR are the "before".
func (s *ownerState) measure(b *Brand, cp *Campaign, ps *PlayerState, arm string, now time.Time) {
	en := ps.entry(b, cp)
	if en.Effect != nil {
		return
	}
	p, ok := s.pt.Get(ps.Brand, ps.Player)
	if !ok {
		return
	}
	if arm == "" {
		arm = bus.EffectAll
	}
	n := effectDays(cp)
	dep, ngr := p.Trailing(now, n)
	e := &Effect{Start: now.Unix(), Days: n, Arm: arm, Cohort: now.UTC().Format(time.DateOnly), Dep: [2]int64{dep, 0}, NGR: [2]int64{ngr, 0}}
	en.Effect = e
	st := func(name string, v int64) { s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.EffectStat(arm, name), v) }
	st(bus.EffectPlayers, 1)
	st(bus.EffectDepBefore, dep)
	st(bus.EffectNGRBefore, ngr)
	// The difference after - before starts at -before.
	st(bus.EffectDepDiffSq, dep*dep)
	st(bus.EffectNGRDiffSq, ngr*ngr)
	s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.EffectCohortStat(arm, e.Cohort, bus.EffectStarted), 1)
	s.markDirty(ps)
}

// effectEvent adds a player's event to the effects being measured: a deposit (dep) or a
// stake or win (ngr, a win negative) within the N days after the start, and activity on
// day 1, 7 or 30 after it. Effects older than EffectKeep are dropped, and with them an
// entry that holds nothing else.
func (s *ownerState) effectEvent(ps *PlayerState, active bool, dep, ngr int64, now time.Time) {
	changed := false
	keep := ps.Entries[:0]
	for _, en := range ps.Entries {
		e := en.Effect
		if e != nil && now.Unix()-e.Start >= int64(EffectKeep/time.Second) {
			en.Effect, e, changed = nil, nil, true
			if en.N == 0 && en.Spent == 0 && en.Arm == "" && !en.Joined {
				continue
			}
		}
		keep = append(keep, en)
		if e == nil {
			continue
		}
		st := func(name string, v int64) {
			s.stat(ps.Brand, bus.KindCampaign, en.Campaign, bus.EffectStat(e.Arm, name), v)
		}
		if now.Unix()-e.Start < int64(e.Days)*86400 {
			add := func(x int64, v *[2]int64, after, diffSq string) {
				if x == 0 {
					return
				}
				d := v[1] - v[0]
				v[1] += x
				st(after, x)
				// (d + x)^2 - d^2: the sum of squared differences moves by 2dx + x^2.
				st(diffSq, 2*d*x+x*x)
				changed = true
			}
			add(dep, &e.Dep, bus.EffectDepAfter, bus.EffectDepDiffSq)
			add(ngr, &e.NGR, bus.EffectNGRAfter, bus.EffectNGRDiffSq)
		}
		if active {
			for bit, day := range [3]int64{1, 7, 30} {
				if k := (now.Unix() - e.Start) / 86400; k == day && e.Marks&(1<<bit) == 0 {
					e.Marks |= 1 << bit
					s.stat(ps.Brand, bus.KindCampaign, en.Campaign, bus.EffectCohortStat(e.Arm, e.Cohort, [3]string{bus.EffectD1, bus.EffectD7, bus.EffectD30}[bit]), 1)
					changed = true
				}
			}
		}
	}
	ps.Entries = keep
	if changed {
		s.markDirty(ps)
	}
}
