package flow

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/rules"
)

type previewAsk struct {
	brand, campaign string
	// rule, when set, asks how many of the partition's players it selects instead.
	rule  *rules.Program
	reply chan *bus.Preview
}

// preview runs the dry run over this partition's members, in the owner's goroutine.
func (s *ownerState) preview(brand, campaign string, now time.Time) *bus.Preview {
	p := bus.NewPreview(brand, campaign)
	p.Partitions = []int{s.part}
	b := s.o.Catalog.Brand(brand)
	cp := b.campaign(campaign)
	if cp == nil {
		return p
	}
	var step string
	var content string
	for _, st := range cp.Spec().Steps {
		if st.Send != nil {
			step, content = st.Name, st.Send.Content
			break
		}
	}
	p.Step = step
	for _, id := range s.selectMembers(b, cp, now) {
		p.Audience++
		variant := ""
		if e := cp.Spec().Experiment; e != nil {
			if variant = Variant(cp.UID, id, e); variant == Control {
				p.Suppressed[ReasonControlGroup]++
				continue
			}
		}
		c := cp.Contents[cp.Content(variant, content)]
		if step == "" || c == nil {
			continue
		}
		ps := s.players[brand+"/"+id]
		if ps == nil {
			ps = &PlayerState{Brand: brand, Player: id}
		}
		it := &bus.Intent{ID: "preview", Brand: brand, Player: id, Campaign: cp.Name, Step: step, Category: cp.Spec().Category,
			Content: cp.Content(variant, content), Created: now}
		in, pl := s.routeInput(b, cp, it, ps, c, now)
		switch d := route.Decide(&in); d.Result {
		case route.Send:
			p.WouldSend++
			p.ByChannel[string(d.Channel)]++
			lang := ""
			if pl != nil {
				lang = pl.Language
			}
			// The locale the message would be rendered in, as render picks it.
			if m := c.Pick(d.Channel, in.Prefs.Language(d.Channel), lang, b.Policy.DefaultLanguage); m != nil {
				p.ByLocale[string(d.Channel)+"/"+m.Locale]++
			}
		case route.Defer:
			p.Deferred[string(d.Reason)]++
		default:
			p.Suppressed[string(d.Reason)]++
		}
	}
	return p
}

// answerPreviews runs the previews asked of this partition (from Pump).
func (s *ownerState) answerPreviews(now time.Time) {
	for {
		select {
		case ask := <-s.asks:
			if ask.rule != nil {
				ask.reply <- s.countRule(ask.brand, ask.rule, now)
				continue
			}
			ask.reply <- s.preview(ask.brand, ask.campaign, now)
		default:
			return
		}
	}
}

// countRule is how many of the partition's players of brand the rule selects (Audience).
func (s *ownerState) countRule(brand string, rule *rules.Program, now time.Time) *bus.Preview {
	p := bus.NewPreview(brand, "")
	p.Partitions = []int{s.part}
	if err := s.pt.Select(brand, now, rule, func(string) { p.Audience++ }); err != nil {
		s.o.Log.Warn("a counted rule failed for some players", "brand", brand, "err", err)
	}
	return p
}

// Preview is the dry run over the partitions this dispatcher owns.
func (o *Owner) Preview(ctx context.Context, brand, campaign string) *bus.Preview {
	return o.ask(ctx, previewAsk{brand: brand, campaign: campaign})
}

// Count is how many players of brand the rule selects in the partitions this dispatcher
// owns.
func (o *Owner) Count(ctx context.Context, brand string, rule *rules.Program) *bus.Preview {
	return o.ask(ctx, previewAsk{brand: brand, rule: rule})
}

func (o *Owner) ask(ctx context.Context, a previewAsk) *bus.Preview {
	o.mu.Lock()
	states := slices.Collect(maps.Values(o.open))
	o.mu.Unlock()
	sum := bus.NewPreview(a.brand, a.campaign)
	replies := make(chan *bus.Preview, len(states))
	a.reply = replies
	asked := 0
	for _, st := range states {
		select {
		case st.asks <- a:
			asked++
		default: // this partition is busy with other previews: reported missing
		}
	}
	for range asked {
		select {
		case p := <-replies:
			sum.Add(p)
		case <-ctx.Done():
			return sum
		}
	}
	return sum
}

// ServePreviews answers preview requests for the partitions this dispatcher owns until
// ctx ends.
func ServePreviews(ctx context.Context, nc *nats.Conn, o *Owner) error {
	return serve(ctx, nc, bus.PreviewFilter, 4, func(ctx context.Context, tokens []string, _ []byte) *bus.Preview {
		return o.Preview(ctx, tokens[2], tokens[3])
	})
}

// ServeCounts answers rule counts for the partitions this dispatcher owns until ctx ends
// (the rule, compiled here as the controller compiles a Segment's, is the request's body).
func ServeCounts(ctx context.Context, nc *nats.Conn, o *Owner) error {
	return serve(ctx, nc, bus.CountFilter, 3, func(ctx context.Context, tokens []string, data []byte) *bus.Preview {
		prog, err := rules.Compile(rules.PlayerRule, string(data))
		if err != nil {
			return nil // the asker compiled it first; nothing to count
		}
		return o.Count(ctx, tokens[2], prog)
	})
}

// serve answers the requests on filter (subjects of n tokens) until ctx ends; a nil answer
// is no answer.
func serve(ctx context.Context, nc *nats.Conn, filter string, n int, answer func(context.Context, []string, []byte) *bus.Preview) error {
	sub, err := nc.Subscribe(filter, func(m *nats.Msg) {
		tokens := strings.Split(m.Subject, ".")
		if len(tokens) != n || m.Reply == "" {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		defer cancel()
		if p := answer(ctx, tokens, m.Data); p != nil {
			raw, _ := json.Marshal(p)
			_ = m.Respond(raw)
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	return nil
}

// GatherCount asks every replica how many of the brand's players rule selects and sums
// the answers as GatherPreview does (Audience is the count).
func GatherCount(ctx context.Context, nc *nats.Conn, brand, rule string, partitions int) (*bus.Preview, error) {
	return gather(ctx, nc, bus.CountSubject(brand), []byte(rule), bus.NewPreview(brand, ""), partitions)
}

// GatherPreview asks every dispatcher replica for its partitions' dry run and sums the
// answers until all partitions are covered or ctx ends (the rest reported missing).
func GatherPreview(ctx context.Context, nc *nats.Conn, brand, campaign string, partitions int) (*bus.Preview, error) {
	return gather(ctx, nc, bus.PreviewSubject(brand, campaign), nil, bus.NewPreview(brand, campaign), partitions)
}

func gather(ctx context.Context, nc *nats.Conn, subject string, data []byte, sum *bus.Preview, partitions int) (*bus.Preview, error) {
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, data); err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for len(seen) < partitions {
		select {
		case m := <-replies:
			var p bus.Preview
			if json.Unmarshal(m.Data, &p) != nil {
				continue
			}
			dup := false
			for _, part := range p.Partitions {
				dup = dup || seen[part]
			}
			if dup {
				continue // a partition answered twice (handed over between the answers): the first counts
			}
			for _, part := range p.Partitions {
				seen[part] = true
			}
			sum.Add(&p)
		case <-ctx.Done():
			for part := range partitions {
				if !seen[part] {
					sum.Missing = append(sum.Missing, part)
				}
			}
			if len(seen) == 0 {
				return nil, errors.New("no dispatcher answered")
			}
			slices.Sort(sum.Partitions)
			return sum, nil
		}
	}
	slices.Sort(sum.Partitions)
	return sum, nil
}
