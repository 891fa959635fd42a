// Package controllers reconciles Croupier's five kinds: each controller validates what the
// API server cannot, publishes the compiled spec to croupier-config for the dispatchers,
// removes it on delete, and appends each new generation's diff to AUDIT.
package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// Object is one of Croupier's four kinds.
type Object interface {
	client.Object
	Common() *crmv1.CommonStatus
}

// specError is a verdict on the spec: the controller cannot go on until the spec or a
// referenced object changes. Reason is InvalidSpec, PolicyConflict or DependencyNotFound.
type specError struct {
	Reason  string
	Message string
}

func (e *specError) Error() string { return e.Reason + ": " + e.Message }

func invalid(field, format string, args ...any) *specError {
	return &specError{Reason: crmv1.ReasonInvalidSpec, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// kind is what differs between the four controllers.
type kind[T Object] interface {
	// token is the kind's token in config keys and audit subjects.
	token() string
	newObject() T
	// compile checks what the API server cannot and builds the compiled spec. A *specError
	// is a verdict; any other error is retried. A nil record with no error means the object
	// must not be published (it lost a policy conflict: compile returned the verdict).
	compile(ctx context.Context, obj T) (*bus.ConfigRecord, error)
	// observe fills kind-specific status after a successful publish (a Campaign's due run
	// is published here) and says when to look again (zero: on the next change only). An
	// error is retried.
	observe(ctx context.Context, obj T, now time.Time) (time.Duration, error)
	// spec returns the object's spec as JSON for audit diffs.
	spec(obj T) any
}

// reconciler runs the shared reconcile loop of every kind.
type reconciler[T Object] struct {
	client.Client
	Store    *Store
	Recorder events.EventRecorder
	Now      func() time.Time
	kind     kind[T]
}

// Reconcile follows the shape of STYLE.md: get, deletion, finalizer, one deferred status
// patch, then ordered steps.
func (r *reconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := r.kind.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if !controllerutil.ContainsFinalizer(obj, crmv1.Finalizer) {
		patch := client.MergeFrom(obj.DeepCopyObject().(T))
		controllerutil.AddFinalizer(obj, crmv1.Finalizer)
		if err := r.Patch(ctx, obj, patch); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := obj.DeepCopyObject().(T)
	defer func() {
		if equality.Semantic.DeepEqual(before.Common(), obj.Common()) && equality.Semantic.DeepEqual(statusOf(before), statusOf(obj)) {
			return
		}
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status: %w", err))
		}
	}()
	return r.reconcile(ctx, obj)
}

func (r *reconciler[T]) reconcile(ctx context.Context, obj T) (ctrl.Result, error) {
	st := obj.Common()
	if err := r.Store.Ready(ctx); err != nil {
		var missing *bus.MissingTopologyError
		reason := crmv1.ReasonNATSUnavailable
		if errors.As(err, &missing) {
			reason = crmv1.ReasonNATSTopologyMissing
		}
		setCondition(obj, crmv1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
		setCondition(obj, crmv1.ConditionStalled, metav1.ConditionTrue, reason, err.Error())
		meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionReconciling)
		return ctrl.Result{RequeueAfter: topologyRecheck}, nil
	}
	meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionStalled)

	if st.ObservedGeneration != obj.GetGeneration() {
		if err := r.audit(ctx, obj); err != nil {
			return r.transient(obj, err)
		}
	}

	rec, err := r.kind.compile(ctx, obj)
	var verdict *specError
	switch {
	case errors.As(err, &verdict):
		return r.judge(ctx, obj, verdict)
	case err != nil:
		return r.transient(obj, err)
	}
	brand := obj.GetNamespace()
	hash, err := hashSpec(rec)
	if err != nil {
		return ctrl.Result{}, err
	}
	rec.Kind, rec.Brand, rec.Name, rec.UID, rec.Generation, rec.SpecHash = r.kind.token(), brand, obj.GetName(), string(obj.GetUID()), obj.GetGeneration(), hash
	wrote, err := r.Store.Publish(ctx, rec)
	if err != nil {
		return r.transient(obj, err)
	}
	msg := fmt.Sprintf("generation %d published", obj.GetGeneration())
	if wrote {
		log.FromContext(ctx).Info("published compiled spec", "generation", obj.GetGeneration(), "specHash", hash[:12])
		r.event(obj, corev1.EventTypeNormal, crmv1.ReasonPublished, msg)
	}
	setCondition(obj, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished, msg)
	meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionReconciling)
	meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionStalled)
	st.ObservedGeneration = obj.GetGeneration()
	wake, err := r.kind.observe(ctx, obj, r.Now())
	if err != nil {
		return r.transient(obj, err)
	}
	return ctrl.Result{RequeueAfter: wake}, nil
}

// judge records a verdict on the spec. InvalidSpec and PolicyConflict are terminal for this
// generation (observedGeneration is set, Stalled is true); DependencyNotFound waits for
// the dependency's watch (Reconciling).
func (r *reconciler[T]) judge(ctx context.Context, obj T, v *specError) (ctrl.Result, error) {
	st := obj.Common()
	prev := meta.FindStatusCondition(st.Conditions, crmv1.ConditionReady)
	setCondition(obj, crmv1.ConditionReady, metav1.ConditionFalse, v.Reason, v.Message)
	if v.Reason == crmv1.ReasonDependencyNotFound {
		setCondition(obj, crmv1.ConditionReconciling, metav1.ConditionTrue, v.Reason, v.Message)
		meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionStalled)
	} else {
		setCondition(obj, crmv1.ConditionStalled, metav1.ConditionTrue, v.Reason, v.Message)
		meta.RemoveStatusCondition(&st.Conditions, crmv1.ConditionReconciling)
		st.ObservedGeneration = obj.GetGeneration()
	}
	if v.Reason == crmv1.ReasonPolicyConflict {
		// The loser must not stay published under its own name.
		if err := r.Store.Unpublish(ctx, obj.GetNamespace(), r.kind.token(), obj.GetName()); err != nil {
			return r.transient(obj, err)
		}
	}
	if prev == nil || prev.Reason != v.Reason || prev.Message != v.Message {
		r.event(obj, corev1.EventTypeWarning, v.Reason, v.Message)
	}
	_, _ = r.kind.observe(ctx, obj, r.Now())
	return ctrl.Result{}, nil
}

// transient records a retryable failure (NATS down, API errors) and returns it for backoff.
func (r *reconciler[T]) transient(obj T, err error) (ctrl.Result, error) {
	setCondition(obj, crmv1.ConditionReconciling, metav1.ConditionTrue, crmv1.ReasonProgressing, "retrying: "+err.Error())
	if c := meta.FindStatusCondition(obj.Common().Conditions, crmv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || obj.Common().ObservedGeneration != obj.GetGeneration() {
		setCondition(obj, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonNATSUnavailable, err.Error())
	}
	return ctrl.Result{}, err
}

// audit appends the new generation's spec diff, once per generation.
func (r *reconciler[T]) audit(ctx context.Context, obj T) error {
	brand, name := obj.GetNamespace(), obj.GetName()
	last, err := r.Store.LastAudit(ctx, brand, r.kind.token(), name)
	if err != nil {
		return fmt.Errorf("reading the audit trail: %w", err)
	}
	uid := string(obj.GetUID())
	if last != nil && last.UID == uid && last.Generation >= obj.GetGeneration() {
		return nil
	}
	spec, err := json.Marshal(r.kind.spec(obj))
	if err != nil {
		return err
	}
	action := bus.AuditCreated
	var prevSpec json.RawMessage
	if last != nil && last.UID == uid {
		action, prevSpec = bus.AuditUpdated, last.Spec
	}
	changes, err := specDiff(prevSpec, spec)
	if err != nil {
		return err
	}
	e := &bus.AuditEntry{
		Time: r.Now().UTC(), Brand: brand, Kind: r.kind.token(), Name: name, UID: uid,
		Generation: obj.GetGeneration(), Action: action, FieldManager: specManager(obj),
		Changes: changes, Spec: spec,
	}
	return r.Store.Audit(ctx, e, fmt.Sprintf("%s/%d", uid, obj.GetGeneration()))
}

// finalize removes the compiled spec, audits the deletion and releases the object.
func (r *reconciler[T]) finalize(ctx context.Context, obj T) error {
	if !controllerutil.ContainsFinalizer(obj, crmv1.Finalizer) {
		return nil
	}
	if err := r.Store.Ready(ctx); err != nil {
		return fmt.Errorf("cannot remove the compiled spec yet: %w", err)
	}
	brand, name := obj.GetNamespace(), obj.GetName()
	if err := r.Store.Unpublish(ctx, brand, r.kind.token(), name); err != nil {
		return err
	}
	e := &bus.AuditEntry{
		Time: r.Now().UTC(), Brand: brand, Kind: r.kind.token(), Name: name, UID: string(obj.GetUID()),
		Generation: obj.GetGeneration(), Action: bus.AuditDeleted, FieldManager: specManager(obj),
	}
	if err := r.Store.Audit(ctx, e, string(obj.GetUID())+"/deleted"); err != nil {
		return err
	}
	r.event(obj, corev1.EventTypeNormal, crmv1.ReasonDeleted, "compiled spec removed from the dispatchers")
	patch := client.MergeFrom(obj.DeepCopyObject().(T))
	controllerutil.RemoveFinalizer(obj, crmv1.Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, obj, patch))
}

func (r *reconciler[T]) event(obj T, eventType, reason, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, "Reconcile", "%s", note)
	}
}

func setCondition(obj Object, t string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	meta.SetStatusCondition(&obj.Common().Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration(),
	})
}

// statusOf returns the kind-specific status beyond the common part, for change detection.
func statusOf(obj Object) any {
	switch o := any(obj).(type) {
	case *crmv1.Campaign:
		s := o.Status
		s.CommonStatus = crmv1.CommonStatus{}
		return s
	case *crmv1.Segment:
		s := o.Status
		s.CommonStatus = crmv1.CommonStatus{}
		return s
	case *crmv1.Report:
		s := o.Status
		s.CommonStatus = crmv1.CommonStatus{}
		return s
	}
	return nil
}

// specManager is the field manager that last wrote the spec (kubectl, argocd-controller...).
func specManager(obj client.Object) string {
	var best metav1.ManagedFieldsEntry
	for _, m := range obj.GetManagedFields() {
		if m.Subresource != "" || m.FieldsV1 == nil || !strings.Contains(string(m.FieldsV1.Raw), `"f:spec"`) {
			continue
		}
		if best.Time == nil || (m.Time != nil && !m.Time.Before(best.Time)) {
			best = m
		}
	}
	return best.Manager
}

func hashSpec(rec *bus.ConfigRecord) (string, error) {
	b, err := json.Marshal(struct {
		C *bus.CampaignConfig
		S *bus.SegmentConfig
		H *bus.ChannelPolicyConfig
		P *bus.PreferencePolicyConfig
		R *bus.ReportConfig `json:",omitempty"`
	}{rec.Campaign, rec.Segment, rec.ChannelPolicy, rec.PreferencePolicy, rec.Report})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
