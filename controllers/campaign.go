package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones on images without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/campaigncheck"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/templates"
)

// +kubebuilder:rbac:groups=crm.croupier.dev,resources=campaigns,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=campaigns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=campaigns/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

const (
	indexConfigMaps = "croupier.configMaps"
	indexSegment    = "croupier.segment"
)

// cronParser reads five-field cron expressions and descriptors such as @daily.
var cronParser = campaigncheck.Cron

type campaignKind struct {
	client.Client
	store    *Store
	recorder events.EventRecorder
}

func (campaignKind) token() string              { return bus.KindCampaign }
func (campaignKind) newObject() *crmv1.Campaign { return &crmv1.Campaign{} }
func (campaignKind) spec(c *crmv1.Campaign) any { return c.Spec }

func (k campaignKind) compile(ctx context.Context, c *crmv1.Campaign) (*bus.ConfigRecord, error) {
	spec := c.Spec.DeepCopy()
	if p := campaigncheck.Spec(spec); p != nil {
		return nil, invalid(p.Field, "%s", p.Message)
	}
	if err := k.checkAudience(ctx, c.Namespace, spec.Audience); err != nil {
		return nil, err
	}
	cmHashes, err := k.inlineContents(ctx, c.Namespace, spec)
	if err != nil {
		return nil, err
	}
	if err := k.checkLanguages(ctx, c.Namespace, spec); err != nil {
		return nil, err
	}
	cfg := &bus.CampaignConfig{Spec: *spec, ContentHashes: contentHashes(spec.Contents)}
	currency, err := compileBudget(spec.Budget, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.RewardValues, err = rewardValues(spec.Rewards, currency); err != nil {
		return nil, err
	}
	if err := k.checkChannelCosts(ctx, c.Namespace, spec, currency); err != nil {
		return nil, err
	}
	if err := k.auditConfigMaps(ctx, c, cmHashes); err != nil {
		return nil, err
	}
	cfg.ConfigMapHashes = cmHashes
	if err := k.ensureSharedCodes(ctx, c, cfg.RewardValues); err != nil {
		return nil, err
	}
	return &bus.ConfigRecord{Campaign: cfg}, nil
}

func (k campaignKind) checkAudience(ctx context.Context, ns string, a *crmv1.Audience) error {
	switch {
	case a == nil:
		return nil
	case a.SegmentRef != nil:
		var seg crmv1.Segment
		err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.SegmentRef.Name}, &seg)
		if apierrors.IsNotFound(err) {
			return &specError{Reason: crmv1.ReasonDependencyNotFound, Message: fmt.Sprintf("spec.audience.segmentRef: Segment %q not found in this namespace", a.SegmentRef.Name)}
		}
		return err
	}
	return nil
}

// inlineContents replaces bodyFrom with the ConfigMap's text and parses every template.
// It returns a hash per referenced ConfigMap key for the audit trail.
func (k campaignKind) inlineContents(ctx context.Context, ns string, spec *crmv1.CampaignSpec) (map[string]string, error) {
	hashes := map[string]string{}
	cms := map[string]*corev1.ConfigMap{}
	for i := range spec.Contents {
		c := &spec.Contents[i]
		for j := range c.Messages {
			m := &c.Messages[j]
			field := fmt.Sprintf("spec.contents[%s].messages[%s/%s]", c.Name, m.Channel, m.Locale)
			if ref := m.BodyFrom; ref != nil {
				cm, ok := cms[ref.Name]
				if !ok {
					cm = &corev1.ConfigMap{}
					err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, cm)
					if apierrors.IsNotFound(err) {
						return nil, &specError{Reason: crmv1.ReasonDependencyNotFound, Message: fmt.Sprintf("%s.bodyFrom: ConfigMap %q not found in this namespace", field, ref.Name)}
					}
					if err != nil {
						return nil, err
					}
					cms[ref.Name] = cm
				}
				body, ok := cm.Data[ref.Key]
				if !ok {
					return nil, &specError{Reason: crmv1.ReasonDependencyNotFound, Message: fmt.Sprintf("%s.bodyFrom: ConfigMap %q has no key %q", field, ref.Name, ref.Key)}
				}
				if strings.TrimSpace(body) == "" {
					return nil, invalid(field+".bodyFrom", "ConfigMap %q key %q is empty", ref.Name, ref.Key)
				}
				sum := sha256.Sum256([]byte(body))
				hashes[ref.Name+"/"+ref.Key] = hex.EncodeToString(sum[:])
				m.Body, m.BodyFrom = body, nil
			}
			if err := templates.Check(field+".body", m.Body, string(m.Format)); err != nil {
				return nil, invalid(field+".body", "template does not parse: %v", errors.Unwrap(err))
			}
			if m.Subject != "" {
				if err := templates.Check(field+".subject", m.Subject, "text"); err != nil {
					return nil, invalid(field+".subject", "template does not parse: %v", errors.Unwrap(err))
				}
			}
		}
	}
	for _, s := range spec.Steps {
		if s.Send == nil {
			continue
		}
		if err := checkSendChannels(spec, s); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}

func checkSendChannels(spec *crmv1.CampaignSpec, s crmv1.Step) error {
	if len(s.Send.Channels) == 0 {
		return nil
	}
	for _, c := range spec.Contents {
		if c.Name != s.Send.Content {
			continue
		}
		for _, m := range c.Messages {
			for _, ch := range s.Send.Channels {
				if m.Channel == ch {
					return nil
				}
			}
		}
		return invalid(fmt.Sprintf("spec.steps[%s].send.channels", s.Name), "content %q has no message for any of %v", c.Name, s.Send.Channels)
	}
	return nil
}

// checkLanguages requires every content to have, for each of its channels, a message in
// the brand's default language, so fallback never yields an empty message.
func (k campaignKind) checkLanguages(ctx context.Context, ns string, spec *crmv1.CampaignSpec) error {
	pp, err := preferencePolicyWinner(ctx, k.Client, ns)
	if err != nil || pp == nil {
		return err
	}
	def := pp.Spec.DefaultLanguage
	if def == "" {
		def = "az"
	}
	for _, c := range spec.Contents {
		has := map[crmv1.Channel]bool{}
		var channels []crmv1.Channel
		for _, m := range c.Messages {
			if _, seen := has[m.Channel]; !seen {
				channels = append(channels, m.Channel)
				has[m.Channel] = false
			}
			if m.Locale == def {
				has[m.Channel] = true
			}
		}
		for _, ch := range channels {
			if !has[ch] {
				return invalid(fmt.Sprintf("spec.contents[%s]", c.Name), "no %s message in the brand's default language %q (PreferencePolicy %s); players whose language has no message would get nothing", ch, def, pp.Name)
			}
		}
	}
	return nil
}

func contentHashes(contents []crmv1.Content) map[string]string {
	out := make(map[string]string, len(contents))
	for _, c := range contents {
		h := sha256.New()
		for _, m := range c.Messages {
			fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", m.Channel, m.Locale, m.Subject, m.Format, m.Body)
		}
		out[c.Name] = hex.EncodeToString(h.Sum(nil))[:16]
	}
	return out
}

// compileBudget converts the budget to minor units and returns its currency.
func compileBudget(b *crmv1.Budget, cfg *bus.CampaignConfig) (string, error) {
	if b == nil {
		return "", nil
	}
	conv := func(field string, m *crmv1.Money) (*bus.MinorAmount, error) {
		if m == nil {
			return nil, nil
		}
		v, err := money.Parse(m.Amount, m.Currency)
		if err != nil {
			return nil, invalid(field, "%v", err)
		}
		return &bus.MinorAmount{Minor: v, Currency: m.Currency}, nil
	}
	var err error
	if cfg.BudgetTotal, err = conv("spec.budget.total", b.Total); err != nil {
		return "", err
	}
	if b.PerPeriod != nil {
		if cfg.BudgetPerPeriod, err = conv("spec.budget.perPeriod.amount", &b.PerPeriod.Amount); err != nil {
			return "", err
		}
	}
	if cfg.BudgetPerPlayer, err = conv("spec.budget.perPlayer", b.PerPlayer); err != nil {
		return "", err
	}
	for _, m := range []*bus.MinorAmount{cfg.BudgetTotal, cfg.BudgetPerPeriod, cfg.BudgetPerPlayer} {
		if m != nil {
			return m.Currency, nil
		}
	}
	return "", nil
}

// rewardValues computes each reward's upper-bound value and checks its currency against
// the budget's: a mismatch is an error, never a silent conversion.
func rewardValues(rewards []crmv1.Reward, budgetCurrency string) (map[string]bus.MinorAmount, error) {
	out := map[string]bus.MinorAmount{}
	for _, r := range rewards {
		field := fmt.Sprintf("spec.rewards[%s]", r.Name)
		var amounts []struct {
			field string
			m     crmv1.Money
			times int64
		}
		add := func(f string, m crmv1.Money, times int64) {
			amounts = append(amounts, struct {
				field string
				m     crmv1.Money
				times int64
			}{field + "." + f, m, times})
		}
		switch {
		case r.FreeSpins != nil:
			add("freeSpins.spinValue", r.FreeSpins.SpinValue, int64(r.FreeSpins.Count))
		case r.MatchDeposit != nil:
			add("matchDeposit.cap", r.MatchDeposit.Cap, 1)
		case r.Cashback != nil:
			add("cashback.cap", r.Cashback.Cap, 1)
		case r.Coupon != nil:
			add("coupon.value", r.Coupon.Value, 1)
		case r.Tournament != nil:
			for i, p := range r.Tournament.Prizes {
				add(fmt.Sprintf("tournament.prizes[%d].amount", i), p.Amount, int64(p.ToRank-p.FromRank+1))
			}
		}
		var total bus.MinorAmount
		for _, a := range amounts {
			v, err := money.Parse(a.m.Amount, a.m.Currency)
			if err != nil {
				return nil, invalid(a.field, "%v", err)
			}
			if budgetCurrency != "" && a.m.Currency != budgetCurrency {
				return nil, invalid(a.field+".currency", "%s differs from the budget's currency %s; amounts are never converted", a.m.Currency, budgetCurrency)
			}
			if total.Currency != "" && total.Currency != a.m.Currency {
				return nil, invalid(a.field+".currency", "%s differs from %s elsewhere in the same reward", a.m.Currency, total.Currency)
			}
			total.Currency = a.m.Currency
			total.Minor += v * a.times
		}
		out[r.Name] = total
	}
	return out, nil
}

// checkChannelCosts refuses a budget in one currency when a channel the campaign sends on
// costs messages in another.
func (k campaignKind) checkChannelCosts(ctx context.Context, ns string, spec *crmv1.CampaignSpec, currency string) error {
	if currency == "" {
		return nil
	}
	used := map[crmv1.Channel]bool{}
	for _, c := range spec.Contents {
		for _, m := range c.Messages {
			used[m.Channel] = true
		}
	}
	var list crmv1.ChannelPolicyList
	if err := k.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	items := make([]*crmv1.ChannelPolicy, 0, len(list.Items))
	for i := range list.Items {
		items = append(items, &list.Items[i])
	}
	oldestFirst(items)
	seen := map[crmv1.Channel]bool{}
	for _, p := range items {
		if seen[p.Spec.Channel] || !used[p.Spec.Channel] || !p.DeletionTimestamp.IsZero() {
			continue
		}
		seen[p.Spec.Channel] = true
		for _, pr := range p.Spec.Providers {
			if pr.Cost != nil && pr.Cost.Currency != currency {
				return invalid("spec.budget", "the budget is in %s but ChannelPolicy %q provider %q costs %s messages in %s; amounts are never converted", currency, p.Name, pr.Name, p.Spec.Channel, pr.Cost.Currency)
			}
		}
	}
	return nil
}

// auditConfigMaps appends an AUDIT entry for each referenced ConfigMap key whose content
// changed since the last published compile (the Campaign's generation does not move then).
func (k campaignKind) auditConfigMaps(ctx context.Context, c *crmv1.Campaign, hashes map[string]string) error {
	if len(hashes) == 0 {
		return nil
	}
	prev, err := k.store.Published(ctx, c.Namespace, bus.KindCampaign, c.Name)
	if err != nil {
		return err
	}
	if prev == nil || prev.Campaign == nil || prev.UID != string(c.UID) {
		return nil
	}
	keys := make([]string, 0, len(hashes))
	for key := range hashes {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		old := prev.Campaign.ConfigMapHashes[key]
		if old == hashes[key] {
			continue
		}
		cmName, dataKey, _ := strings.Cut(key, "/")
		e := &bus.AuditEntry{
			Time: now().UTC(), Brand: c.Namespace, Kind: bus.KindConfigMap, Name: cmName, Action: bus.AuditUpdated,
			Changes: []bus.FieldChange{{Path: "data." + dataKey, Before: jsonString("sha256:" + old), After: jsonString("sha256:" + hashes[key])}},
			Note:    fmt.Sprintf("content of Campaign %q", c.Name),
		}
		if err := k.store.Audit(ctx, e, fmt.Sprintf("%s/%s/%s", c.UID, key, hashes[key])); err != nil {
			return err
		}
	}
	return nil
}

func jsonString(s string) []byte { return []byte(`"` + s + `"`) }

// observe sets phase, Paused and the next run, publishes a scheduled run that is due, and
// says when to look again.
func (k campaignKind) observe(ctx context.Context, c *crmv1.Campaign, t time.Time) (time.Duration, error) {
	st := &c.Status
	if c.Spec.Paused {
		setCondition(c, crmv1.ConditionPaused, metav1.ConditionTrue, crmv1.ReasonSpecPaused, "spec.paused is true; nothing is sent")
	} else if p := meta.FindStatusCondition(st.Conditions, crmv1.ConditionPaused); p == nil || p.Reason != crmv1.ReasonBudgetExhausted {
		setCondition(c, crmv1.ConditionPaused, metav1.ConditionFalse, crmv1.ReasonActive, "the campaign is active")
	}
	if r := meta.FindStatusCondition(st.Conditions, crmv1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue {
		if r != nil && r.Reason == crmv1.ReasonInvalidSpec && st.Phase == "" {
			st.Phase = crmv1.PhaseFailed
		}
		return 0, nil
	}
	var wake time.Duration
	soonest := func(at time.Time) {
		if d := at.Sub(t); d > 0 && (wake == 0 || d < wake) {
			wake = d
		}
	}
	if d, err := k.observeBudget(ctx, c, t); err != nil {
		return 0, err
	} else if d > 0 {
		soonest(t.Add(d))
	}
	w := c.Spec.Window
	st.NextRunTime = nil
	if s := c.Spec.Trigger.Schedule; s != nil {
		if sched, err := cronParser.Parse(s.Cron); err == nil {
			loc, _ := time.LoadLocation(campaigncheck.Zone(s))
			if err := k.runDue(ctx, c, s, sched, t); err != nil {
				return 0, err
			}
			from := t
			if w != nil && w.Start != nil && w.Start.After(from) {
				from = w.Start.Time.Add(-time.Second)
			}
			next := sched.Next(from.In(loc))
			if !next.IsZero() && (w == nil || w.End == nil || next.Before(w.End.Time)) {
				nt := metav1.NewTime(next.UTC())
				st.NextRunTime = &nt
				soonest(next)
			}
		}
	}
	switch {
	case c.Spec.Paused || isBudgetPaused(c):
		st.Phase = crmv1.PhasePaused
	case w != nil && w.End != nil && !t.Before(w.End.Time):
		st.Phase = crmv1.PhaseCompleted
		st.NextRunTime = nil
	case w != nil && w.Start != nil && t.Before(w.Start.Time):
		st.Phase = crmv1.PhaseScheduled
		soonest(w.Start.Time)
	case c.Spec.Trigger.Schedule != nil:
		st.Phase = crmv1.PhaseScheduled
	default:
		st.Phase = crmv1.PhaseRunning
	}
	if w != nil && w.End != nil {
		soonest(w.End.Time)
	}
	return wake, nil
}

// runDue finds the latest scheduled time not yet dealt with (after lastScheduleTime, the
// creation and the window's start, up to t) and publishes its run to RUNS under the
// missed-run policy. The run id (campaign UID + scheduled time) is the message id and is
// recorded by every partition owner, so a double reconcile or a leader change that lost
// the status cannot run it twice.
func (k campaignKind) runDue(ctx context.Context, c *crmv1.Campaign, s *crmv1.ScheduleTrigger, sched cron.Schedule, t time.Time) error {
	st := &c.Status
	from := c.CreationTimestamp.Time
	if st.LastScheduleTime != nil && st.LastScheduleTime.After(from) {
		from = st.LastScheduleTime.Time
	}
	w := c.Spec.Window
	if w != nil && w.Start != nil && w.Start.Add(-time.Second).After(from) {
		from = w.Start.Add(-time.Second)
	}
	grace := s.Reach()
	// After a long downtime only the runs within reach of the policy matter; the latest
	// older one is recorded as missed.
	loc, _ := time.LoadLocation(campaigncheck.Zone(s))
	var missed time.Time
	if horizon := t.Add(-grace - time.Minute); from.Before(horizon) {
		scan := from
		if horizon.Sub(scan) > 31*24*time.Hour {
			scan = horizon.Add(-31 * 24 * time.Hour)
		}
		for n := sched.Next(scan.In(loc)); !n.IsZero() && !n.After(horizon); n = sched.Next(n) {
			missed = n
		}
		from = horizon
	}
	var due time.Time
	for n := sched.Next(from.In(loc)); !n.IsZero() && !n.After(t); n = sched.Next(n) {
		if w != nil && w.End != nil && !n.Before(w.End.Time) {
			break
		}
		due = n
	}
	if due.IsZero() {
		if !missed.IsZero() {
			at := metav1.NewTime(missed.UTC())
			st.LastScheduleTime = &at
			k.event(c, corev1.EventTypeWarning, crmv1.ReasonRunMissed, fmt.Sprintf("run %s was missed while the manager was down (missedRuns %s); the next one is awaited",
				missed.UTC().Format(time.RFC3339), missedPolicy(s)))
		}
		return nil
	}
	at := metav1.NewTime(due.UTC())
	late := t.Sub(due)
	runID := bus.RunID(string(c.UID), due)
	switch {
	case c.Spec.Paused || isBudgetPaused(c):
		k.event(c, corev1.EventTypeNormal, crmv1.ReasonRunSkipped, fmt.Sprintf("run %s skipped: the campaign is paused", due.UTC().Format(time.RFC3339)))
	case late > grace:
		k.event(c, corev1.EventTypeWarning, crmv1.ReasonRunMissed, fmt.Sprintf("run %s was found %s late (missedRuns %s); it is not made up",
			due.UTC().Format(time.RFC3339), late.Round(time.Second), missedPolicy(s)))
	default:
		req := &bus.RunRequest{RunID: runID, Brand: c.Namespace, Campaign: c.Name, CampaignUID: string(c.UID),
			Generation: c.Generation, ScheduledTime: due.UTC()}
		if err := k.store.PublishRun(ctx, req); err != nil {
			return err
		}
		st.LastRunTime = &at
		k.event(c, corev1.EventTypeNormal, crmv1.ReasonRunPublished, fmt.Sprintf("run %s published", due.UTC().Format(time.RFC3339)))
	}
	st.LastScheduleTime = &at
	return nil
}

func missedPolicy(s *crmv1.ScheduleTrigger) crmv1.MissedRunPolicy {
	if s.MissedRuns == "" {
		return crmv1.MissedRunLatest
	}
	return s.MissedRuns
}

func (k campaignKind) event(c *crmv1.Campaign, eventType, reason, note string) {
	if k.recorder != nil {
		action := "Schedule"
		if reason == crmv1.ReasonBudgetExhausted || reason == crmv1.ReasonBudgetRestored {
			action = "Budget"
		}
		k.recorder.Eventf(c, nil, eventType, reason, action, "%s", note)
	}
}

func isBudgetPaused(c *crmv1.Campaign) bool {
	p := meta.FindStatusCondition(c.Status.Conditions, crmv1.ConditionPaused)
	return p != nil && p.Status == metav1.ConditionTrue && p.Reason == crmv1.ReasonBudgetExhausted
}

// SetupCampaign registers the Campaign controller. Segments, ConfigMaps and policies in
// the namespace re-reconcile the Campaigns that depend on them.
func SetupCampaign(mgr ctrl.Manager, store *Store) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &crmv1.Campaign{}, indexConfigMaps, func(o client.Object) []string {
		var names []string
		for _, c := range o.(*crmv1.Campaign).Spec.Contents {
			for _, m := range c.Messages {
				if m.BodyFrom != nil {
					names = append(names, m.BodyFrom.Name)
				}
			}
		}
		return names
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &crmv1.Campaign{}, indexSegment, func(o client.Object) []string {
		if a := o.(*crmv1.Campaign).Spec.Audience; a != nil && a.SegmentRef != nil {
			return []string{a.SegmentRef.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	c := mgr.GetClient()
	byIndex := func(field string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list crmv1.CampaignList
			if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{field: o.GetName()}); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for i := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
			return reqs
		})
	}
	allCampaigns := enqueueNamespace(c, func() client.ObjectList { return &crmv1.CampaignList{} })
	changed := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))
	r := newReconciler[*crmv1.Campaign](mgr, store, campaignKind{Client: c, store: store, recorder: mgr.GetEventRecorder("croupier-campaign")}, "campaign")
	budgets := &budgetWatch{store: store, events: make(chan event.TypedGenericEvent[*crmv1.Campaign], 64), log: mgr.GetLogger().WithName("budget-watch")}
	if err := mgr.Add(budgets); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1.Campaign{}, changed).
		Watches(&crmv1.Segment{}, byIndex(indexSegment), builder.WithPredicates(predicate.Funcs{
			// A Segment's creation or deletion matters to the Campaigns naming it; its
			// updates do not (the dispatcher reads the Segment's own compiled spec).
			UpdateFunc: func(event.UpdateEvent) bool { return false },
		})).
		Watches(&corev1.ConfigMap{}, byIndex(indexConfigMaps), builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Watches(&crmv1.ChannelPolicy{}, allCampaigns, changed).
		Watches(&crmv1.PreferencePolicy{}, allCampaigns, changed).
		WatchesRawSource(source.Channel(budgets.events, &handler.TypedEnqueueRequestForObject[*crmv1.Campaign]{})).
		Named("campaign").
		Complete(r)
}
