package controllers

import (
	"context"
	"sort"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Options configure every controller.
type Options struct {
	// Now is the clock (tests inject one); time.Now when nil.
	Now func() time.Time
	// StatsInterval is how often partition counters are summed into status (default 10s).
	StatsInterval time.Duration
	// StatusWrites, when set, is called for each status write of the counters summer.
	StatusWrites func()
}

// Setup registers the five controllers with a manager.
func Setup(mgr ctrl.Manager, store *Store, opts Options) error {
	now = opts.Now
	if now == nil {
		now = time.Now
	}
	for _, f := range []func(ctrl.Manager, *Store) error{SetupSegment, SetupCampaign, SetupChannelPolicy, SetupPreferencePolicy, SetupReport} {
		if err := f(mgr, store); err != nil {
			return err
		}
	}
	return mgr.Add(&StatsSummer{Client: mgr.GetClient(), Store: store, Interval: opts.StatsInterval,
		Log: mgr.GetLogger().WithName("stats"), Writes: opts.StatusWrites})
}

var now = time.Now

func newReconciler[T Object](mgr ctrl.Manager, store *Store, k kind[T], name string) *reconciler[T] {
	return &reconciler[T]{
		Client:   mgr.GetClient(),
		Store:    store,
		Recorder: mgr.GetEventRecorder("croupier-" + name),
		Now:      func() time.Time { return now() },
		kind:     k,
	}
}

// deletionPredicate passes updates that start a deletion (GenerationChanged already covers
// most, but a finalizer-only object's deletionTimestamp does not bump generation on all
// API servers).
func deletionPredicate() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectNew.GetDeletionTimestamp() != nil
	}}
}

// enqueueNamespace maps an object to every object of a list kind in its namespace.
func enqueueNamespace(c client.Client, newList func() client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		_ = forEachItem(list, func(item client.Object) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(item)})
		})
		return reqs
	})
}

// oldestFirst orders competing policies: the oldest creationTimestamp, then name, wins.
func oldestFirst[T client.Object](items []T) {
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].GetCreationTimestamp(), items[j].GetCreationTimestamp()
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].GetName() < items[j].GetName()
	})
}

// oldestLive returns the winner among the items that match and are not being deleted, or nil.
func oldestLive[E any, P interface {
	*E
	client.Object
}](items []E, match func(P) bool) P {
	var live []P
	for i := range items {
		p := P(&items[i])
		if p.GetDeletionTimestamp().IsZero() && match(p) {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil
	}
	oldestFirst(live)
	return live[0]
}
