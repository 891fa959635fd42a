package players

import (
	"cmp"
	"slices"
	"time"
)

// RFM segment names, from the best to the lost.
const (
	SegmentChampions         = "champions"
	SegmentLoyal             = "loyal"
	SegmentPotentialLoyalist = "potential-loyalist"
	SegmentNew               = "new"
	SegmentPromising         = "promising"
	SegmentNeedAttention     = "need-attention"
	SegmentAboutToSleep      = "about-to-sleep"
	SegmentCannotLose        = "cannot-lose"
	SegmentAtRisk            = "at-risk"
	SegmentHibernating       = "hibernating"
	SegmentLost              = "lost"
)

// SegmentOf names the RFM segment of scores r, f, m (1-5 each).
func SegmentOf(r, f, m uint8) string {
	switch {
	case r >= 4 && f >= 4 && m >= 4:
		return SegmentChampions
	case r <= 2 && f >= 4 && m >= 4:
		return SegmentCannotLose
	case r >= 3 && f >= 4:
		return SegmentLoyal
	case r >= 4 && f >= 2:
		return SegmentPotentialLoyalist
	case r == 5 && f == 1:
		return SegmentNew
	case r == 4 && f == 1:
		return SegmentPromising
	case r == 3 && f >= 3:
		return SegmentNeedAttention
	case r == 3:
		return SegmentAboutToSleep
	case r <= 2 && f >= 3:
		return SegmentAtRisk
	case r == 2:
		return SegmentHibernating
	}
	return SegmentLost
}

// ScoreRFM scores every player 1-5 by quintile of recency (days since the last activity,
// fewer is better), frequency (deposit count) and monetary value (deposit sum), and names
// the segment. Equal values get equal scores. It reports how many players' scores changed.
func ScoreRFM(ps []*Player, now time.Time) int {
	n := len(ps)
	if n == 0 {
		return 0
	}
	type val struct {
		i int
		v int64
	}
	score := func(get func(*Player) int64, set func(*Player, uint8)) {
		vs := make([]val, n)
		for i, p := range ps {
			vs[i] = val{i, get(p)}
		}
		slices.SortFunc(vs, func(a, b val) int { return cmp.Compare(a.v, b.v) })
		first := 0
		for k := range vs {
			if k > 0 && vs[k].v != vs[k-1].v {
				first = k
			}
			set(ps[vs[k].i], uint8(1+first*5/n))
		}
	}
	old := make([]RFM, n)
	for i, p := range ps {
		old[i] = p.RFM
	}
	score(func(p *Player) int64 { return -p.DaysInactive(now) }, func(p *Player, s uint8) { p.RFM.R = s })
	score(func(p *Player) int64 { return p.DepositCount }, func(p *Player, s uint8) { p.RFM.F = s })
	score(func(p *Player) int64 { return p.DepositSum }, func(p *Player, s uint8) { p.RFM.M = s })
	changed := 0
	for i, p := range ps {
		p.RFM.Segment = in(SegmentOf(p.RFM.R, p.RFM.F, p.RFM.M))
		if p.RFM != old[i] {
			changed++
		}
	}
	return changed
}
