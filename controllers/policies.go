package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// +kubebuilder:rbac:groups=crm.croupier.dev,resources=channelpolicies;preferencepolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=channelpolicies/status;preferencepolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=channelpolicies/finalizers;preferencepolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// secretRecheck is how often a policy whose Secret (or key) is missing looks again. The
// manager reads only the Secrets policies name, by an uncached get, and watches none: no
// Secret of the cluster is cached in its memory.
const secretRecheck = 15 * time.Second

// checkSecrets gets each Secret a policy names and, when one is missing or lacks a key,
// sets Ready=False naming the field, the Secret and the key (never a value) and asks to
// look again in secretRecheck; the policy stays published, so the dispatchers hold its
// other settings.
func checkSecrets(ctx context.Context, r client.Reader, obj Object, refs []secretkeys.Ref) (time.Duration, error) {
	for _, n := range refs {
		var sec corev1.Secret
		err := r.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: n.Name}, &sec)
		switch {
		case apierrors.IsNotFound(err):
			waiting(obj, crmv1.ReasonSecretNotFound,
				fmt.Sprintf("%s: Secret %q does not exist in namespace %s (looked for again every %s)", n.Field, n.Name, obj.GetNamespace(), secretRecheck))
			return secretRecheck, nil
		case err != nil:
			return 0, fmt.Errorf("reading Secret %s named by %s: %w", n.Name, n.Field, err)
		}
		if miss := n.Need.Missing(sec.Data); miss != "" {
			waiting(obj, crmv1.ReasonSecretKeyMissing,
				fmt.Sprintf("%s: Secret %q has no key %s (looked for again every %s)", n.Field, n.Name, miss, secretRecheck))
			return secretRecheck, nil
		}
	}
	return 0, nil
}

// waiting marks an object not ready while it waits for something outside its spec
// (Ready=False and Reconciling=True with the same reason, as kstatus reads it).
func waiting(obj Object, reason, msg string) {
	setCondition(obj, crmv1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(obj, crmv1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
}

type channelPolicyKind struct {
	client.Client
	// secrets reads Secrets uncached (the manager's API reader).
	secrets client.Reader
}

func (channelPolicyKind) token() string                   { return bus.KindChannelPolicy }
func (channelPolicyKind) newObject() *crmv1.ChannelPolicy { return &crmv1.ChannelPolicy{} }
func (channelPolicyKind) spec(p *crmv1.ChannelPolicy) any { return p.Spec }
func (k channelPolicyKind) observe(ctx context.Context, p *crmv1.ChannelPolicy, _ time.Time) (time.Duration, error) {
	return checkSecrets(ctx, k.secrets, p, secretkeys.OfChannelPolicy(&p.Spec))
}

func (k channelPolicyKind) compile(ctx context.Context, p *crmv1.ChannelPolicy) (*bus.ConfigRecord, error) {
	w, err := channelPolicyWinner(ctx, k.Client, p.Namespace, p.Spec.Channel)
	if err != nil {
		return nil, err
	}
	if w != nil && w.Name != p.Name {
		return nil, &specError{Reason: crmv1.ReasonPolicyConflict, Message: fmt.Sprintf(
			"ChannelPolicy %q is older and already configures channel %s in this namespace; one ChannelPolicy per channel (delete or change one)", w.Name, p.Spec.Channel)}
	}
	cfg := &bus.ChannelPolicyConfig{Spec: p.Spec, ProviderCosts: map[string]bus.MicroAmount{}}
	for _, pr := range p.Spec.Providers {
		if pr.Cost == nil {
			continue
		}
		micros, err := money.ParseMicros(pr.Cost.Amount, pr.Cost.Currency)
		if err != nil {
			return nil, invalid(fmt.Sprintf("spec.providers[%s].cost", pr.Name), "%v", err)
		}
		cfg.ProviderCosts[pr.Name] = bus.MicroAmount{Micros: micros, Currency: pr.Cost.Currency}
	}
	return &bus.ConfigRecord{ChannelPolicy: cfg}, nil
}

// channelPolicyWinner is the oldest live ChannelPolicy of a channel in a namespace.
func channelPolicyWinner(ctx context.Context, c client.Client, ns string, ch crmv1.Channel) (*crmv1.ChannelPolicy, error) {
	var list crmv1.ChannelPolicyList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return oldestLive(list.Items, func(p *crmv1.ChannelPolicy) bool { return p.Spec.Channel == ch }), nil
}

// SetupChannelPolicy registers the ChannelPolicy controller. Every change to a
// ChannelPolicy re-reconciles its namespace's others, so a loser takes over when the
// winner goes.
func SetupChannelPolicy(mgr ctrl.Manager, store *Store) error {
	r := newReconciler[*crmv1.ChannelPolicy](mgr, store, channelPolicyKind{mgr.GetClient(), mgr.GetAPIReader()}, "channelpolicy")
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1.ChannelPolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&crmv1.ChannelPolicy{}, enqueueNamespace(mgr.GetClient(), func() client.ObjectList { return &crmv1.ChannelPolicyList{} }),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Named("channelpolicy").
		Complete(r)
}

type preferencePolicyKind struct {
	client.Client
	secrets client.Reader
}

func (preferencePolicyKind) token() string                      { return bus.KindPreferencePolicy }
func (preferencePolicyKind) newObject() *crmv1.PreferencePolicy { return &crmv1.PreferencePolicy{} }
func (preferencePolicyKind) spec(p *crmv1.PreferencePolicy) any { return p.Spec }
func (k preferencePolicyKind) observe(ctx context.Context, p *crmv1.PreferencePolicy, _ time.Time) (time.Duration, error) {
	return checkSecrets(ctx, k.secrets, p, secretkeys.OfPreferencePolicy(&p.Spec))
}

func (k preferencePolicyKind) compile(ctx context.Context, p *crmv1.PreferencePolicy) (*bus.ConfigRecord, error) {
	w, err := preferencePolicyWinner(ctx, k.Client, p.Namespace)
	if err != nil {
		return nil, err
	}
	if w != nil && w.Name != p.Name {
		return nil, &specError{Reason: crmv1.ReasonPolicyConflict, Message: fmt.Sprintf(
			"PreferencePolicy %q is older and already governs this namespace; one PreferencePolicy per brand (delete one)", w.Name)}
	}
	if p.Spec.DefaultTimeZone != "" {
		if _, err := time.LoadLocation(p.Spec.DefaultTimeZone); err != nil {
			return nil, invalid("spec.defaultTimeZone", "unknown IANA time zone %q", p.Spec.DefaultTimeZone)
		}
	}
	cfg := &bus.PreferencePolicyConfig{Spec: p.Spec, Mandatory: map[crmv1.Category]bool{}}
	for i := range p.Spec.Categories {
		c := &p.Spec.Categories[i]
		cfg.Mandatory[c.Category] = c.IsMandatory()
		if c.QuietHours != nil && c.QuietHours.Action == crmv1.QuietHoursBypass && !c.IsMandatory() {
			return nil, invalid(fmt.Sprintf("spec.categories[%s].quietHours.action", c.Category), "bypass is only allowed on a mandatory category")
		}
	}
	return &bus.ConfigRecord{PreferencePolicy: cfg}, nil
}

// preferencePolicyWinner is the oldest live PreferencePolicy of a namespace.
func preferencePolicyWinner(ctx context.Context, c client.Client, ns string) (*crmv1.PreferencePolicy, error) {
	var list crmv1.PreferencePolicyList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return oldestLive(list.Items, func(*crmv1.PreferencePolicy) bool { return true }), nil
}

// SetupPreferencePolicy registers the PreferencePolicy controller.
func SetupPreferencePolicy(mgr ctrl.Manager, store *Store) error {
	r := newReconciler[*crmv1.PreferencePolicy](mgr, store, preferencePolicyKind{mgr.GetClient(), mgr.GetAPIReader()}, "preferencepolicy")
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1.PreferencePolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&crmv1.PreferencePolicy{}, enqueueNamespace(mgr.GetClient(), func() client.ObjectList { return &crmv1.PreferencePolicyList{} }),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Named("preferencepolicy").
		Complete(r)
}
