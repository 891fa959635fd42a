package controllers

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/rules"
)

// +kubebuilder:rbac:groups=crm.croupier.dev,resources=segments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=segments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=segments/finalizers,verbs=update

type segmentKind struct{}

func (segmentKind) token() string             { return bus.KindSegment }
func (segmentKind) newObject() *crmv1.Segment { return &crmv1.Segment{} }
func (segmentKind) spec(s *crmv1.Segment) any { return s.Spec }
func (segmentKind) observe(context.Context, *crmv1.Segment, time.Time) (time.Duration, error) {
	return 0, nil
}

func (segmentKind) compile(_ context.Context, s *crmv1.Segment) (*bus.ConfigRecord, error) {
	if _, err := rules.Compile(rules.PlayerRule, s.Spec.Rule); err != nil {
		return nil, invalid("spec.rule", "%v", err)
	}
	return &bus.ConfigRecord{Segment: &bus.SegmentConfig{Spec: s.Spec}}, nil
}

// SetupSegment registers the Segment controller.
func SetupSegment(mgr ctrl.Manager, store *Store) error {
	r := newReconciler[*crmv1.Segment](mgr, store, segmentKind{}, "segment")
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1.Segment{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Named("segment").
		Complete(r)
}
