package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
	campaignreport "github.com/croupier-crm/croupier/internal/report"
)

// Insight answers "why": a player's notification history, the explanation of a
// campaign's decision for a player, and the consent report.
type Insight struct {
	JS         jetstream.JetStream
	Catalog    *flow.Catalog
	Prefs      *prefs.Service
	Partitions int
	Clock      clock.Func
	// DataKeys open the players' sealed profiles.
	DataKeys *datakey.Reader
}

// RegisterAdmin adds the admin routes (Kubernetes authorization through a).
func (in *Insight) RegisterAdmin(mux *http.ServeMux, a *Admin) {
	mux.Handle("GET /v1/brands/{brand}/players/{player}/history", a.guard("get", crmv1.AdminPlayersHistory,
		func(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
			in.history(w, r, brand, r.PathValue("player"))
		}))
	mux.Handle("GET /v1/brands/{brand}/players/{player}/explain", a.guard("get", crmv1.AdminPlayersExplain, in.explain))
	mux.Handle("GET /v1/brands/{brand}/consent/report", a.guard("get", crmv1.AdminConsentReport, in.report))
	mux.Handle("GET /v1/brands/{brand}/campaigns/{campaign}/report", a.guard("get", crmv1.AdminCampaignsReport, in.campaignReport))
	mux.Handle("GET /v1/brands/{brand}/channels/report", a.guard("get", crmv1.AdminCampaignsReport, in.channelReport))
	// The coupon pools' stock is a campaign figure: guarded like the campaign report.
	mux.Handle("GET /v1/brands/{brand}/coupons/pools", a.guard("get", crmv1.AdminCampaignsReport, in.pools))
	// A scheduled report holds the figures the campaign report does: guarded alike.
	mux.Handle("GET /v1/brands/{brand}/reports/{report}/runs", a.guard("get", crmv1.AdminCampaignsReport, in.reportRuns))
	mux.Handle("GET /v1/brands/{brand}/reports/{report}/runs/{run}/{file}", a.guard("get", crmv1.AdminCampaignsReport, in.reportFile))
	// The studio's preview reads a player's profile to fill the templates: the right to
	// preview campaigns covers it.
	mux.Handle("POST /v1/brands/{brand}/render", a.guard("get", crmv1.AdminCampaignsPreview, in.render))
}

// ChannelReportBody is the brand's channel report over a period of its days: each
// campaign's figures per channel and the channels' totals (docs/analytics.md).
type ChannelReportBody struct {
	Brand    string                `json:"brand"`
	From     string                `json:"from"`
	To       string                `json:"to"`
	TimeZone string                `json:"timeZone"`
	Total    []crmv1.ChannelReport `json:"total"`
	// Campaigns holds the campaigns with anything counted in the period.
	Campaigns []CampaignChannels `json:"campaigns"`
	// Days is the total day by day, with ?by=day (days with nothing counted left out).
	Days []DayChannels `json:"days,omitempty"`
	Read time.Time     `json:"read"`
}

// DayChannels is one day of a channel report.
type DayChannels struct {
	Day      string                `json:"day"`
	Channels []crmv1.ChannelReport `json:"channels"`
}

// CampaignChannels is one campaign's part of a channel report.
type CampaignChannels struct {
	Campaign string                `json:"campaign"`
	Channels []crmv1.ChannelReport `json:"channels"`
}

// channelReport serves the brand's channel report: ?from=&to= (YYYY-MM-DD, the brand's
// days, at most the last bus.DayStatDays; the last 7 days when absent), optionally
// ?campaign= and ?by=day.
func (in *Insight) channelReport(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	b := in.Catalog.Brand(brand)
	if b == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "nothing is published for brand " + brand})
		return
	}
	loc := time.UTC
	if b.Policy != nil && b.Policy.DefaultZone != nil {
		loc = b.Policy.DefaultZone
	}
	today := in.Clock.Now().In(loc)
	q := r.URL.Query()
	day := func(field, dflt string) (string, bool) {
		v := q.Get(field)
		if v == "" {
			return dflt, true
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: field + ": not a date (YYYY-MM-DD)", Field: field})
			return "", false
		}
		return v, true
	}
	to, ok := day("to", today.Format(time.DateOnly))
	if !ok {
		return
	}
	from, ok := day("from", today.AddDate(0, 0, -6).Format(time.DateOnly))
	if !ok {
		return
	}
	oldest := today.AddDate(0, 0, -bus.DayStatDays).Format(time.DateOnly)
	switch {
	case from > to:
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "from: after to", Field: "from"})
		return
	case from < oldest:
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: fmt.Sprintf("from: before %s: the dispatcher keeps %d days of day counters (the warehouse export keeps the history)", oldest, bus.DayStatDays), Field: "from"})
		return
	}
	var names []string
	if c := q.Get("campaign"); c != "" {
		if b.Campaigns[c] == nil {
			ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "no Campaign " + c + " is published in " + brand, Field: "campaign"})
			return
		}
		names = append(names, c)
	}
	byDay := q.Get("by") == "day"
	if by := q.Get("by"); by != "" && !byDay {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "by: only day", Field: "by"})
		return
	}
	out, err := in.ChannelFigures(r.Context(), brand, from, to, names, byDay)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the counters cannot be read now: " + err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, out)
}

// ChannelFigures is the brand's channel report over its days from..to (YYYY-MM-DD in the
// brand's zone) for the named campaigns (every published one when names is empty),
// optionally day by day. Scheduled reports read the same figures (ChannelFiguresOf).
func (in *Insight) ChannelFigures(ctx context.Context, brand, from, to string, names []string, byDay bool) (ChannelReportBody, error) {
	if len(names) == 0 {
		names = in.campaignNames(brand)
	}
	sums, err := in.Sums(ctx, brand, names)
	if err != nil {
		return ChannelReportBody{}, err
	}
	return in.ChannelFiguresOf(brand, from, to, names, sums, byDay), nil
}

func (in *Insight) campaignNames(brand string) []string {
	b := in.Catalog.Brand(brand)
	if b == nil {
		return nil
	}
	names := make([]string, 0, len(b.Campaigns))
	for n := range b.Campaigns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Sums are the named campaigns' counters summed over the partitions now, by campaign.
func (in *Insight) Sums(ctx context.Context, brand string, names []string) (map[string]map[string]int64, error) {
	sums := make(map[string]map[string]int64, len(names))
	for _, name := range names {
		sum, err := in.sumStats(ctx, brand, bus.KindCampaign, name)
		if err != nil {
			return nil, err
		}
		sums[name] = sum
	}
	return sums, nil
}

// ChannelFiguresOf is ChannelFigures from counters already summed (Sums).
func (in *Insight) ChannelFiguresOf(brand, from, to string, names []string, sums map[string]map[string]int64, byDay bool) ChannelReportBody {
	b := in.Catalog.Brand(brand)
	loc := time.UTC
	if b != nil && b.Policy != nil && b.Policy.DefaultZone != nil {
		loc = b.Policy.DefaultZone
	}
	out := ChannelReportBody{Brand: brand, From: from, To: to, TimeZone: loc.String(), Campaigns: []CampaignChannels{}, Read: in.Clock.Now().UTC()}
	total := map[string]int64{}
	days := map[string]map[string]int64{}
	for _, name := range names {
		period := map[string]int64{}
		for k, v := range sums[name] {
			if d, ch, counter, ok := bus.ParseDayStat(k); ok && d >= from && d <= to {
				period[bus.ChannelStat(ch, counter)] += v
				total[bus.ChannelStat(ch, counter)] += v
				if byDay {
					if days[d] == nil {
						days[d] = map[string]int64{}
					}
					days[d][bus.ChannelStat(ch, counter)] += v
				}
			}
		}
		if chs := campaignreport.Channels(period); len(chs) > 0 {
			out.Campaigns = append(out.Campaigns, CampaignChannels{Campaign: name, Channels: chs})
		}
	}
	out.Total = campaignreport.Channels(total)
	if byDay {
		keys := make([]string, 0, len(days))
		for d := range days {
			keys = append(keys, d)
		}
		sort.Strings(keys)
		out.Days = []DayChannels{}
		for _, d := range keys {
			if chs := campaignreport.Channels(days[d]); len(chs) > 0 {
				out.Days = append(out.Days, DayChannels{Day: d, Channels: chs})
			}
		}
	}
	if out.Total == nil {
		out.Total = []crmv1.ChannelReport{}
	}
	return out
}

// CampaignReportBody is the admin API's campaign report: the same figures the manager
// writes into the Campaign's status, read from croupier-stats now.
type CampaignReportBody struct {
	Brand    string                `json:"brand"`
	Campaign string                `json:"campaign"`
	Counters map[string]int64      `json:"counters"`
	Report   *crmv1.CampaignReport `json:"report,omitempty"`
	Variants []crmv1.VariantStatus `json:"variants,omitempty"`
	// By and Segments: with ?by=vip|country|rfm, the figures by that dimension.
	By       string                      `json:"by,omitempty"`
	Segments []campaignreport.SegmentRow `json:"segments,omitempty"`
	// Effect is the post-campaign effect per arm (docs/analytics.md).
	Effect []campaignreport.EffectRow `json:"effect,omitempty"`
	Read   time.Time                  `json:"read"`
}

func (in *Insight) campaignReport(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	name := r.PathValue("campaign")
	if err := bus.CheckToken("campaign", name); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "campaign"})
		return
	}
	by := r.URL.Query().Get("by")
	if by != "" && !slices.Contains(bus.Dims, by) {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "by: one of " + strings.Join(bus.Dims, ", "), Field: "by"})
		return
	}
	b := in.Catalog.Brand(brand)
	var cp *flow.Campaign
	if b != nil {
		cp = b.Campaigns[name]
	}
	if cp == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "no Campaign " + name + " is published in " + brand})
		return
	}
	body, err := in.CampaignFigures(r.Context(), brand, cp)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the counters cannot be read now: " + err.Error()})
		return
	}
	if by != "" {
		body.By, body.Segments = by, campaignreport.Segments(body.Counters, by)
	}
	ingest.WriteJSON(w, http.StatusOK, body)
}

// CampaignFigures is a published campaign's report from its counters summed now.
func (in *Insight) CampaignFigures(ctx context.Context, brand string, cp *flow.Campaign) (CampaignReportBody, error) {
	sum, err := in.sumStats(ctx, brand, bus.KindCampaign, cp.Name)
	if err != nil {
		return CampaignReportBody{}, err
	}
	return in.CampaignFiguresOf(brand, cp, sum), nil
}

// CampaignFiguresOf is CampaignFigures from the campaign's counters already summed.
func (in *Insight) CampaignFiguresOf(brand string, cp *flow.Campaign, sum map[string]int64) CampaignReportBody {
	spec := cp.Spec()
	return CampaignReportBody{Brand: brand, Campaign: cp.Name, Counters: sum,
		Report: campaignreport.Campaign(spec, sum), Variants: campaignreport.Variants(spec.Experiment, sum),
		Effect: campaignreport.Effect(spec, sum, in.Clock.Now()), Read: in.Clock.Now().UTC()}
}

// sumStats sums an object's counters over the partitions in croupier-stats.
func (in *Insight) sumStats(ctx context.Context, brand, kind, name string) (map[string]int64, error) {
	kv, err := in.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return nil, err
	}
	sum := map[string]int64{}
	for part := range in.Partitions {
		e, err := kv.Get(ctx, bus.StatsKey(brand, kind, name, part))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := bus.Decode[bus.PartitionStats](e.Value())
		if err != nil {
			return nil, err
		}
		for k, v := range st.Counters {
			sum[k] += v
		}
	}
	return sum, nil
}

// RegisterPlayer adds the player's own history (JWT through p).
func (in *Insight) RegisterPlayer(mux *http.ServeMux, p *Preferences) {
	mux.Handle("GET /v1/brands/{brand}/me/history", p.player(in.history))
}

// HistoryEntry is one decision or failover in a player's notification history.
type HistoryEntry struct {
	bus.Outcome
	// Local is the decision's time in the player's zone: "why at 02:14?" reads it with
	// Reason and Detail.
	Local string `json:"local,omitempty"`
}

func (in *Insight) player(ctx context.Context, brand, id string) (*players.Player, error) {
	kv, err := in.JS.KeyValue(ctx, bus.BucketPlayers)
	if err != nil {
		return nil, err
	}
	p, found, err := players.Read(ctx, kv, brand, bus.Partition(id, in.Partitions), id, opener(ctx, in.DataKeys))
	if err != nil || !found {
		return nil, err
	}
	return &p, nil
}

func (in *Insight) outcomes(ctx context.Context, brand, player string) ([]bus.Outcome, error) {
	raw, err := ReadSubject(ctx, in.JS, bus.StreamOutcomes, bus.OutcomeSubject(brand, bus.Partition(player, in.Partitions), player))
	if err != nil {
		return nil, err
	}
	out := make([]bus.Outcome, 0, len(raw))
	for _, b := range raw {
		if o, err := bus.Decode[bus.Outcome](b); err == nil {
			out = append(out, o)
		}
	}
	return out, nil
}

func (in *Insight) history(w http.ResponseWriter, r *http.Request, brand, player string) {
	oc, err := in.outcomes(r.Context(), brand, player)
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	p, _ := in.player(r.Context(), brand, player)
	var zone *time.Location
	if pol := in.Catalog.Policy(brand); pol != nil {
		zone = route.Zone(p, pol)
	}
	out := make([]HistoryEntry, 0, len(oc))
	for _, o := range oc {
		e := HistoryEntry{Outcome: o}
		if zone != nil {
			e.Local = o.Time.In(zone).Format("2006-01-02 15:04 MST")
		}
		out = append(out, e)
	}
	ingest.WriteJSON(w, http.StatusOK, map[string]any{"player": player, "entries": out})
}

// Explanation is what explain answers: the decision the campaign would get for the
// player now, step by step, and the decisions it did get.
type Explanation struct {
	Player   string         `json:"player"`
	Campaign string         `json:"campaign"`
	Step     string         `json:"step"`
	Now      time.Time      `json:"now"`
	Decision route.Decision `json:"decision"`
	Recent   []bus.Outcome  `json:"recent,omitempty"`
}

func (in *Insight) explain(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	ctx := r.Context()
	player, campaign := r.PathValue("player"), r.URL.Query().Get("campaign")
	if campaign == "" {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "campaign: the query parameter is required", Field: "campaign"})
		return
	}
	b := in.Catalog.Brand(brand)
	if b == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "the brand has no published configuration"})
		return
	}
	cp := b.Campaigns[campaign]
	if cp == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "campaign " + campaign + " is not published in brand " + brand, Field: "campaign"})
		return
	}
	step := r.URL.Query().Get("step")
	var send *crmv1.Step
	for i := range cp.Spec().Steps {
		s := &cp.Spec().Steps[i]
		if s.Send != nil && (step == "" || s.Name == step) {
			send = s
			break
		}
	}
	if send == nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the campaign has no send step " + step, Field: "step"})
		return
	}
	p, err := in.player(ctx, brand, player)
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	pp, _, err := in.Prefs.Load(ctx, brand, player)
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	_ = pp.Prepare(nil)
	var st flow.PlayerState
	if kv, err := in.JS.KeyValue(ctx, bus.BucketState); err == nil {
		if e, err := kv.Get(ctx, bus.PlayerKey(brand, bus.Partition(player, in.Partitions), player)); err == nil {
			_ = json.Unmarshal(e.Value(), &st)
		}
	}
	now := in.Clock.Now()
	it := &bus.Intent{ID: "explain/" + player, Brand: brand, Player: player, Campaign: campaign, Step: send.Name,
		FlowInstance: "explain", Category: cp.Spec().Category, Content: send.Send.Content, Created: now}
	offered := prefs.Set(0)
	var hash, dedupKey string
	if c := cp.Contents[send.Send.Content]; c != nil {
		offered, hash, dedupKey = c.Offered, c.Hash, c.DedupKey
	}
	input := route.Input{Intent: it, Player: p, Prefs: pp, Policy: b.Policy, Offered: offered, Configured: b.Configured,
		History: &st.History, ContentHash: hash, DedupKey: dedupKey, Costs: b.Costs, Budget: route.Unlimited{}, Now: now, Explain: true}
	if p != nil {
		input.Suppressed = in.Prefs.Cache.Suppressed(brand, map[crmv1.Channel]string{
			crmv1.ChannelEmail: p.Email, crmv1.ChannelSMS: p.Phone, crmv1.ChannelViber: p.ViberID})
	}
	ex := Explanation{Player: player, Campaign: campaign, Step: send.Name, Now: now.UTC(), Decision: route.Decide(&input)}
	ex.Decision.ID = ""
	if oc, err := in.outcomes(ctx, brand, player); err == nil {
		for _, o := range oc {
			if o.Campaign == campaign {
				ex.Recent = append(ex.Recent, o)
			}
		}
	}
	if ok, why := cp.Active(now); !ok {
		reason := route.ReasonCampaignNotActive
		if cp.Spec().Paused {
			reason = route.ReasonCampaignPaused
		}
		ex.Decision.Result, ex.Decision.Reason, ex.Decision.Detail = route.Suppress, reason, why
	} else if scope := in.budgetExhausted(ctx, brand, campaign, now); scope != "" {
		// Paused by its budget (the ledger's exhaustion holds): nothing new is sent.
		ex.Decision.Result, ex.Decision.Reason = route.Suppress, route.ReasonBudgetExhausted
		ex.Decision.Detail = "the campaign is paused: its " + scope + " budget is exhausted"
	}
	ingest.WriteJSON(w, http.StatusOK, ex)
}

// budgetExhausted is the scope of the campaign's cap its budget ledger found reached and
// that still holds ("" when none, or when the ledger cannot be read).
func (in *Insight) budgetExhausted(ctx context.Context, brand, campaign string, now time.Time) string {
	caps := in.Catalog.Caps(brand, campaign)
	if !caps.Limited() {
		return ""
	}
	kv, err := in.JS.KeyValue(ctx, bus.BucketBudget)
	if err != nil {
		return ""
	}
	e, err := kv.Get(ctx, bus.BudgetKey(brand, campaign))
	if err != nil {
		return ""
	}
	led, err := bus.Decode[bus.BudgetLedger](e.Value())
	if err != nil || led.UID != caps.UID || !led.Exhausted.Holds(caps.Total, caps.PerPeriod, now) {
		return ""
	}
	return led.Exhausted.Scope
}

// Violation is a marketing message sent on a channel after the player withdrew consent
// for it (and before any new grant).
type Violation struct {
	Player     string        `json:"player"`
	Channel    crmv1.Channel `json:"channel"`
	Withdrawn  time.Time     `json:"withdrawn"`
	Source     string        `json:"source"`
	DecisionID string        `json:"decisionID"`
	Campaign   string        `json:"campaign"`
	Sent       time.Time     `json:"sent"`
}

// ConsentReport proves, from the ledger and OUTCOMES, that no marketing went out after a
// withdrawal.
type ConsentReport struct {
	Brand       string      `json:"brand"`
	Generated   time.Time   `json:"generated"`
	Players     int         `json:"players"`
	Withdrawals int         `json:"withdrawals"`
	Suppressed  int         `json:"addressSuppressions"`
	Checked     int         `json:"marketingSendsChecked"`
	Violations  []Violation `json:"violations"`
	OK          bool        `json:"ok"`
}

func (in *Insight) report(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	rep, err := in.ConsentReport(r.Context(), brand, r.URL.Query().Get("player"))
	if err != nil {
		ingest.WriteProblem(w, http.StatusInternalServerError, ingest.Problem{Error: err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, rep)
}

// ConsentReport checks every marketing send of the brand (or one player) against the
// consent ledger.
func (in *Insight) ConsentReport(ctx context.Context, brand, player string) (*ConsentReport, error) {
	cf, of := bus.BrandConsentFilter(brand), bus.BrandOutcomesFilter(brand)
	if player != "" {
		if err := bus.CheckToken("player", player); err != nil {
			return nil, err
		}
		part := bus.Partition(player, in.Partitions)
		cf, of = bus.ConsentSubject(brand, part, player), bus.OutcomeSubject(brand, part, player)
	}
	ledger, err := ReadSubject(ctx, in.JS, bus.StreamConsent, cf)
	if err != nil {
		return nil, err
	}
	type span struct {
		from, to time.Time
		source   string
	}
	withdrawn := map[string][]span{} // player/channel -> spans without consent
	rep := &ConsentReport{Brand: brand, Generated: in.Clock.Now().UTC(), Violations: []Violation{}}
	seen := map[string]bool{}
	for _, b := range ledger {
		e, err := bus.Decode[bus.ConsentEntry](b)
		if err != nil || e.Category != crmv1.CategoryMarketing {
			continue
		}
		if e.Player == "" {
			rep.Suppressed++
			continue
		}
		seen[e.Player] = true
		k := e.Player + "/" + string(e.Channel)
		sp := withdrawn[k]
		open := len(sp) > 0 && sp[len(sp)-1].to.IsZero()
		switch {
		case !e.Granted && !open:
			rep.Withdrawals++
			withdrawn[k] = append(sp, span{from: e.Time, source: e.Source})
		case e.Granted && open:
			sp[len(sp)-1].to = e.Time
		}
	}
	rep.Players = len(seen)
	outcomes, err := ReadSubject(ctx, in.JS, bus.StreamOutcomes, of)
	if err != nil {
		return nil, err
	}
	for _, b := range outcomes {
		o, err := bus.Decode[bus.Outcome](b)
		if err != nil || o.Category != string(crmv1.CategoryMarketing) || o.Result != string(route.Send) {
			continue
		}
		rep.Checked++
		for _, s := range withdrawn[o.Player+"/"+string(o.Channel)] {
			if !o.Time.Before(s.from) && (s.to.IsZero() || o.Time.Before(s.to)) {
				rep.Violations = append(rep.Violations, Violation{Player: o.Player, Channel: o.Channel, Withdrawn: s.from, Source: s.source,
					DecisionID: o.DecisionID, Campaign: o.Campaign, Sent: o.Time})
			}
		}
	}
	slices.SortFunc(rep.Violations, func(a, b Violation) int { return a.Sent.Compare(b.Sent) })
	rep.OK = len(rep.Violations) == 0
	return rep, nil
}
