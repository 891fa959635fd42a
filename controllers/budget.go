package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// budgetCaps are a Campaign's total and per-period caps in micros (0: none).
func budgetCaps(b *crmv1.Budget) (total, perPeriod int64, currency string) {
	if b == nil {
		return 0, 0, ""
	}
	conv := func(m *crmv1.Money) int64 {
		if m == nil {
			return 0
		}
		currency = m.Currency
		v, err := money.Parse(m.Amount, m.Currency)
		if err != nil {
			return 0
		}
		return money.MinorToMicros(v, m.Currency)
	}
	total = conv(b.Total)
	if b.PerPeriod != nil {
		perPeriod = conv(&b.PerPeriod.Amount)
	}
	if currency == "" && b.PerPlayer != nil {
		currency = b.PerPlayer.Currency
	}
	return total, perPeriod, currency
}

// observeBudget sets Paused=True/BudgetExhausted while a cap the dispatchers found reached
// still holds (the ledger in croupier-budget), and back to Active when the budget is
// raised or the period turns; each change is an Event. It never edits spec. It returns
// when to look again (the end of an exhausted period).
func (k campaignKind) observeBudget(ctx context.Context, c *crmv1.Campaign, t time.Time) (time.Duration, error) {
	if c.Spec.Paused {
		return 0, nil // paused by a person: that condition shows
	}
	paused := isBudgetPaused(c)
	var ex *bus.BudgetExhaustion
	total, perPeriod, currency := budgetCaps(c.Spec.Budget)
	if total > 0 || perPeriod > 0 {
		led, err := k.store.budgetLedger(ctx, c.Namespace, c.Name)
		if err != nil {
			return 0, err
		}
		if led != nil && led.UID == string(c.UID) && led.Exhausted.Holds(total, perPeriod, t) {
			ex = led.Exhausted
		}
	}
	switch {
	case ex != nil:
		msg := fmt.Sprintf("the total budget of %s %s cannot cover what the campaign needs next: %s; raise spec.budget.total to resume",
			money.FormatMicrosIn(ex.Cap, currency), currency, exhaustionFigures(ex, currency))
		if ex.Scope == bus.BudgetPerPeriod {
			msg = fmt.Sprintf("this %s's budget of %s %s cannot cover what the campaign needs next: %s; sending resumes at %s or when spec.budget.perPeriod is raised",
				c.Spec.Budget.PerPeriod.Period, money.FormatMicrosIn(ex.Cap, currency), currency, exhaustionFigures(ex, currency), ex.Until.Format(time.RFC3339))
		}
		setCondition(c, crmv1.ConditionPaused, metav1.ConditionTrue, crmv1.ReasonBudgetExhausted, msg)
		if !paused {
			k.event(c, corev1.EventTypeWarning, crmv1.ReasonBudgetExhausted, msg)
		}
		if !ex.Until.IsZero() {
			return ex.Until.Sub(t), nil
		}
	case paused:
		setCondition(c, crmv1.ConditionPaused, metav1.ConditionFalse, crmv1.ReasonActive, "the campaign is active; its budget has room again")
		k.event(c, corev1.EventTypeNormal, crmv1.ReasonBudgetRestored, "the budget has room again; sending resumes")
	}
	return 0, nil
}

// exhaustionFigures says what was asked, spent and left when the cap refused: a 10 AZN
// grant refused with 5 AZN left reads "10.00 AZN asked, 0.00 AZN spent or held, 5.00 AZN
// left", not "spent".
func exhaustionFigures(ex *bus.BudgetExhaustion, currency string) string {
	f := func(micros int64) string { return money.FormatMicrosIn(micros, currency) + " " + currency }
	s := f(ex.Granted) + " spent or held by the dispatchers, " + f(max(0, ex.Cap-ex.Granted)) + " left"
	if ex.Asked > 0 {
		s = f(ex.Asked) + " asked, " + s
	}
	return s
}

// budgetLedger reads a Campaign's croupier-budget ledger, nil when none was written.
func (s *Store) budgetLedger(ctx context.Context, brand, campaign string) (*bus.BudgetLedger, error) {
	kv, err := s.JS.KeyValue(ctx, bus.BucketBudget)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, bus.BudgetKey(brand, campaign))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	led, err := bus.Decode[bus.BudgetLedger](e.Value())
	if err != nil {
		return nil, err
	}
	return &led, nil
}

// budgetWatch re-reconciles a Campaign whose croupier-budget ledger changed, so a cap the
// dispatchers reach shows as Paused within moments.
type budgetWatch struct {
	store  *Store
	events chan event.TypedGenericEvent[*crmv1.Campaign]
	log    logr.Logger
}

// NeedLeaderElection makes the watch run where the controllers run.
func (w *budgetWatch) NeedLeaderElection() bool { return true }

// Start follows croupier-budget until ctx ends.
func (w *budgetWatch) Start(ctx context.Context) error {
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Info("following croupier-budget again", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(topologyRecheck):
		}
	}
}

func (w *budgetWatch) follow(ctx context.Context) error {
	if err := w.store.Ready(ctx); err != nil {
		return err
	}
	kv, err := w.store.JS.KeyValue(ctx, bus.BucketBudget)
	if err != nil {
		return err
	}
	watch, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return err
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-watch.Updates():
			if !ok {
				return errors.New("the croupier-budget watch ended")
			}
			if e == nil {
				continue
			}
			brand, name, ok := strings.Cut(e.Key(), ".")
			if !ok {
				continue
			}
			c := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: brand, Name: name}}
			select {
			case w.events <- event.TypedGenericEvent[*crmv1.Campaign]{Object: c}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
