package flow

import (
	"time"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
)

// segMembers is one Segment's members in this partition.
type segMembers struct {
	source  string
	members map[string]struct{}
	at      time.Time
}

// refreshSegments evaluates every player of the partition against each Segment that is
// new, changed, or due by its refresh interval, and counts the members.
func (s *ownerState) refreshSegments(now time.Time) {
	seen := map[string]bool{}
	for _, brand := range s.pt.Brands() {
		b := s.o.Catalog.Brand(brand)
		if b == nil {
			continue
		}
		for name, seg := range b.Segments {
			k := brand + "/" + name
			seen[k] = true
			sm := s.segs[k]
			if sm != nil && sm.source == seg.Program.Source && now.Sub(sm.at) < seg.Interval && !now.Before(sm.at) {
				continue
			}
			members := map[string]struct{}{}
			if err := s.pt.Select(brand, now, seg.Program, func(id string) { members[id] = struct{}{} }); err != nil {
				s.o.Log.Warn("segment rule failed for some players", "brand", brand, "segment", name, "err", err)
			}
			s.segs[k] = &segMembers{source: seg.Program.Source, members: members, at: now}
			s.setStat(brand, bus.KindSegment, name, bus.StatMembers, int64(len(members)))
			s.setStat(brand, bus.KindSegment, name, bus.StatEvaluated, now.Unix())
		}
	}
	for k := range s.segs {
		if !seen[k] {
			delete(s.segs, k)
		}
	}
}

// reevaluate moves one player in or out of the Segments that list the event's type.
func (s *ownerState) reevaluate(b *Brand, ev *ingest.Event, p *players.Player, now time.Time) {
	for name, seg := range b.Segments {
		if !seg.Events[ev.Type] {
			continue
		}
		sm := s.segs[ev.Brand+"/"+name]
		if sm == nil || sm.source != seg.Program.Source {
			continue // the next refresh evaluates everyone
		}
		m, err := players.Match(seg.Program, p, now)
		_, was := sm.members[p.ID]
		switch {
		case err == nil && m && !was:
			sm.members[p.ID] = struct{}{}
		case (err != nil || !m) && was:
			delete(sm.members, p.ID)
		default:
			continue
		}
		s.setStat(ev.Brand, bus.KindSegment, name, bus.StatMembers, int64(len(sm.members)))
	}
}
