package flow

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/rules"
)

// A scheduled run reaches every partition owner on RUNS. Each owner records the run id in
// croupier-state (so a replay, even after the stream's de-duplication window, is a
// no-op), selects its own members of the campaign's audience in id order, and publishes
// one FlowStart intent per member, at most RunBatch per step and, with a rollout, at the
// partition's share of maxPerMinute. The cursor (the last member published) is persisted
// with each step, so a new owner continues where the last one stopped; the intents' message
// flow instance in each player's state (single writer: the player's owner) makes a repeated
// intent a no-op. The intents carry no Nats-Msg-Id: the server's de-duplication of a million
// ids cost a fifth of the fan-out rate (docs/decisions.md).

const runsToken = "runs"

// Run limits.
const (
	// DefaultRunBatch is the most intents one expansion step publishes.
	DefaultRunBatch = 50000
	// KeepRuns is how long a finished run's id is remembered (longer than RUNS keeps it).
	KeepRuns = 30 * 24 * time.Hour
	// RunWaitForCampaign is how long a run waits for its campaign to be published here
	// (the configuration watch may lag the manager) before it is dropped.
	RunWaitForCampaign = 5 * time.Minute
	// RunLateMargin is added to a run's missed-run reach before an owner refuses it as too
	// late: the manager may publish a run at the edge of its reach.
	RunLateMargin = time.Minute
)

// runsDoc is a brand's runs in one partition: the croupier-state value under RunsKey.
type runsDoc struct {
	Brand string         `json:"brand"`
	Runs  []*RunProgress `json:"runs"`
	rev   uint64
	dirty bool
}

// RunProgress is one scheduled run's expansion in one partition.
type RunProgress struct {
	ID        string    `json:"id"`
	Campaign  string    `json:"campaign"`
	UID       string    `json:"uid"`
	Scheduled time.Time `json:"scheduled"`
	Accepted  time.Time `json:"accepted"`
	// Cursor is the last member (in id order) whose intent was published.
	Cursor  string    `json:"cursor,omitempty"`
	Members int       `json:"members"`
	Emitted int       `json:"emitted"`
	Done    bool      `json:"done,omitempty"`
	Ended   time.Time `json:"ended,omitzero"`
	Note    string    `json:"note,omitempty"`
}

func (s *ownerState) runsOf(brand string) *runsDoc {
	rd, ok := s.runs[brand]
	if !ok {
		rd = &runsDoc{Brand: brand}
		s.runs[brand] = rd
	}
	return rd
}

func (s *ownerState) runsChanged(rd *runsDoc) {
	if !rd.dirty {
		rd.dirty = true
		s.runsDirty = append(s.runsDirty, rd)
	}
}

// acceptRun records a run request; a run already recorded is a no-op.
func (s *ownerState) acceptRun(ctx context.Context, msg jetstream.Msg) error {
	now := s.o.Clock.Now()
	req, err := bus.Decode[bus.RunRequest](msg.Data())
	if err == nil {
		switch {
		case req.RunID == "" || req.CampaignUID == "":
			err = fmt.Errorf("runID and campaignUID must not be empty")
		case bus.CheckToken("brand", req.Brand) != nil:
			err = bus.CheckToken("brand", req.Brand)
		case bus.CheckToken("campaign", req.Campaign) != nil:
			err = bus.CheckToken("campaign", req.Campaign)
		case !strings.HasPrefix(req.RunID, req.CampaignUID+"@"):
			err = fmt.Errorf("runID %q is not the campaign UID + scheduled time", req.RunID)
		}
	}
	if err != nil {
		if s.part != 0 {
			return nil // one partition dead-letters it
		}
		return ingest.DeadLetterNow(ctx, s.o.JS, bus.StreamRuns, msg, err.Error(), now)
	}
	rd := s.runsOf(req.Brand)
	for _, r := range rd.Runs {
		if r.ID == req.RunID {
			return nil
		}
	}
	floor := now.Add(-KeepRuns)
	rd.Runs = slices.DeleteFunc(rd.Runs, func(r *RunProgress) bool { return r.Done && r.Ended.Before(floor) })
	rd.Runs = append(rd.Runs, &RunProgress{ID: req.RunID, Campaign: req.Campaign, UID: req.CampaignUID,
		Scheduled: req.ScheduledTime.UTC(), Accepted: now.UTC()})
	s.runsChanged(rd)
	return nil
}

// Pump does the partition's own work between inputs: it refreshes Segments whose
// interval passed and expands runs. It reports whether more expansion is ready now.
//
// A run's intents are published and confirmed here, before the Flush that persists the
// cursor past them: a crash in between publishes at most one batch again (the flow
// instance in each player's state makes that a no-op), and no member is skipped.
func (s *ownerState) Pump(ctx context.Context) (bool, error) {
	now := s.o.Clock.Now()
	s.refreshSegments(now)
	s.answerPreviews(now)
	s.wakeResumed(ctx, now)
	more := s.expandRuns(now)
	if err := awaitAll(ctx, s.starts); err != nil {
		return false, fmt.Errorf("a run's intents: %w", err)
	}
	if s.startErr != nil {
		err := s.startErr
		s.startErr = nil
		return false, err
	}
	s.starts = s.starts[:0]
	return more, nil
}

func (s *ownerState) expandRuns(now time.Time) (more bool) {
	budget := s.o.RunBatch
	if budget <= 0 {
		budget = DefaultRunBatch
	}
	for brand, rd := range s.runs {
		for _, r := range rd.Runs {
			if r.Done {
				continue
			}
			if budget == 0 {
				return true
			}
			b := s.o.Catalog.Brand(brand)
			cp := b.campaign(r.Campaign)
			if cp == nil || cp.UID != r.UID {
				if now.Sub(r.Accepted) >= RunWaitForCampaign {
					s.finishRun(rd, r, now, "the campaign is not published with this UID")
				}
				continue
			}
			if ok, why := cp.Active(now); !ok {
				if !cp.Spec().Paused {
					s.finishRun(rd, r, now, why)
				}
				continue // a paused campaign's run waits
			}
			if s.o.Budget != nil && cp.Caps.Limited() && s.o.Budget.Exhausted(brand, cp.Name) {
				continue // so does the run of a campaign at its budget cap, until it is raised or the period turns
			}
			if late, reach := r.Accepted.Sub(r.Scheduled), runReach(cp); r.Emitted == 0 && late > reach {
				// The dispatcher was down: "daily free spins at 10:00" does not go out at 19:00.
				s.finishRun(rd, r, now, fmt.Sprintf("received %s after its scheduled time, beyond the %s its missed-run policy allows",
					late.Round(time.Second), reach))
				if s.part == 0 {
					s.o.Log.Warn("a scheduled run arrived too late and is not expanded", "brand", brand, "campaign", r.Campaign,
						"scheduled", r.Scheduled, "late", late.Round(time.Second))
				}
				continue
			}
			ids, ok := s.members[r.ID]
			if !ok {
				ids = s.selectMembers(b, cp, now)
				s.members[r.ID] = ids
				if r.Members == 0 {
					r.Members = len(ids)
				}
			}
			i := sort.SearchStrings(ids, r.Cursor)
			if i < len(ids) && ids[i] == r.Cursor {
				i++
			}
			n := min(len(ids)-i, budget)
			if ro := cp.Spec().Rollout; ro != nil && ro.MaxPerMinute > 0 {
				share := float64(ro.MaxPerMinute) / float64(max(1, s.o.Partitions))
				allowed := int(share*now.Sub(r.Accepted).Minutes()) + 1 - r.Emitted
				n = max(0, min(n, allowed))
			}
			first := cp.Spec().Steps[0].Name
			fi := shortHash(r.ID)
			for _, id := range ids[i : i+n] {
				s.publishStart(&bus.Intent{ID: r.ID + "/" + id, Brand: brand, Player: id, Campaign: cp.Name, Step: first,
					FlowInstance: fi, Category: cp.Spec().Category, Created: now, Flow: bus.FlowStart, Run: r.ID})
			}
			if n > 0 {
				r.Emitted += n
				r.Cursor = ids[i+n-1]
				budget -= n
				s.runsChanged(rd)
			}
			if i+n == len(ids) {
				s.finishRun(rd, r, now, "")
			} else if budget == 0 {
				more = true
			}
		}
	}
	return more
}

// runReach is how late a run of cp may arrive and still be expanded: its schedule's reach
// under the missed-run policy plus RunLateMargin.
func runReach(cp *Campaign) time.Duration {
	reach := crmv1.DefaultStartingDeadline
	if sc := cp.Spec().Trigger.Schedule; sc != nil {
		reach = sc.Reach()
	}
	return reach + RunLateMargin
}

func (s *ownerState) finishRun(rd *runsDoc, r *RunProgress, now time.Time, note string) {
	r.Done, r.Ended, r.Note = true, now.UTC(), note
	delete(s.members, r.ID)
	s.runsChanged(rd)
}

// selectMembers lists the partition's members of a campaign's audience in id order.
func (s *ownerState) selectMembers(b *Brand, cp *Campaign, now time.Time) []string {
	var prog *rules.Program
	switch {
	case cp.SegmentRef != "":
		seg := b.Segments[cp.SegmentRef]
		if seg == nil {
			return []string{}
		}
		prog = seg.Program
	case cp.Audience != nil:
		prog = cp.Audience
	}
	ids := []string{}
	if prog == nil {
		s.pt.Each(b.Name, func(p *players.Player) bool { ids = append(ids, p.ID); return true })
	} else if err := s.pt.Select(b.Name, now, prog, func(id string) { ids = append(ids, id) }); err != nil {
		s.o.Log.Warn("audience rule failed for some players", "brand", b.Name, "campaign", cp.Name, "err", err)
	}
	slices.Sort(ids)
	return ids
}

func (s *ownerState) publishStart(it *bus.Intent) {
	if s.startErr != nil {
		return
	}
	b, _ := bus.Encode(it)
	msg := nats.NewMsg(bus.IntentSubject(it.Brand, s.part, it.Player))
	msg.Data = b
	f, err := s.o.JS.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second))
	if err != nil {
		s.startErr = err
		return
	}
	s.starts = append(s.starts, f)
}

// startRunFlow starts a run member's flow.
func (s *ownerState) startRunFlow(ctx context.Context, it *bus.Intent, now time.Time) {
	b := s.o.Catalog.Brand(it.Brand)
	cp := b.campaign(it.Campaign)
	if cp == nil || !strings.HasPrefix(it.Run, cp.UID+"@") {
		return // deleted or replaced since the run
	}
	s.startFlow(ctx, b, cp, s.state(it.Brand, it.Player), it.FlowInstance, it.Run+"/"+it.Player, nil, now)
}

// wakeResumed goes on with the flows held by a campaign that is no longer paused, at
// once rather than at their next look (up to PausedRecheck later).
func (s *ownerState) wakeResumed(ctx context.Context, now time.Time) {
	for key := range s.heldCampaigns {
		brand, name, _ := strings.Cut(key, "/")
		b := s.o.Catalog.Brand(brand)
		cp := b.campaign(name)
		if cp != nil {
			if held, _ := s.held(brand, cp); held != "" {
				continue
			}
		}
		delete(s.heldCampaigns, key)
		for _, ps := range s.players {
			if ps.Brand != brand {
				continue
			}
			for _, fp := range slices.Clone(ps.Flows) {
				if !fp.Held || fp.Campaign != name {
					continue
				}
				fp.Until = now.UnixMilli()
				s.resume(ctx, &bus.Intent{Brand: brand, Player: ps.Player, Campaign: name, FlowInstance: fp.Instance, Step: fp.Step, Seq: fp.Seq}, now)
			}
		}
	}
}
