package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/campaigncheck"
)

// +kubebuilder:rbac:groups=crm.croupier.dev,resources=reports,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=reports/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.croupier.dev,resources=reports/finalizers,verbs=update

// ReportReach is how late after its scheduled time a report run may still be published
// (the manager was down): later than that, the slot is recorded as missed.
const ReportReach = time.Hour

// reportPending is how often a Report whose last run is not mailed yet is looked at again.
const reportPending = 10 * time.Second

type reportKind struct {
	client.Client
	store    *Store
	recorder events.EventRecorder
}

func (reportKind) token() string            { return bus.KindReport }
func (reportKind) newObject() *crmv1.Report { return &crmv1.Report{} }
func (reportKind) spec(r *crmv1.Report) any { return r.Spec }

// ReportDefaults fills what a Report's spec leaves out (as the CRD's defaults do).
func ReportDefaults(s crmv1.ReportSpec) crmv1.ReportSpec {
	if s.Schedule.TimeZone == "" {
		s.Schedule.TimeZone = campaigncheck.DefaultZone
	}
	if len(s.Contents) == 0 {
		s.Contents = []crmv1.ReportContent{crmv1.ReportChannels, crmv1.ReportCampaigns, crmv1.ReportExperiments, crmv1.ReportBudget}
	}
	if s.Period == "" {
		s.Period = crmv1.PeriodLast7Days
	}
	if s.Language == "" {
		s.Language = "en"
	}
	return s
}

// compile checks the cron, the zone and that the brand has an email ChannelPolicy to mail
// through.
func (k reportKind) compile(ctx context.Context, r *crmv1.Report) (*bus.ConfigRecord, error) {
	s := ReportDefaults(r.Spec)
	if _, err := campaigncheck.Cron.Parse(s.Schedule.Cron); err != nil {
		return nil, invalid("spec.schedule.cron", "%q is not a valid cron expression: %v", s.Schedule.Cron, err)
	}
	if _, err := time.LoadLocation(s.Schedule.TimeZone); err != nil {
		return nil, invalid("spec.schedule.timeZone", "unknown IANA time zone %q", s.Schedule.TimeZone)
	}
	if len(s.Recipients) == 0 {
		return nil, invalid("spec.recipients", "at least one address is required")
	}
	if len(s.Formats) == 0 {
		return nil, invalid("spec.formats", "PDF, CSV or both")
	}
	var policies crmv1.ChannelPolicyList
	if err := k.List(ctx, &policies, client.InNamespace(r.Namespace)); err != nil {
		return nil, err
	}
	if oldestLive(policies.Items, func(p *crmv1.ChannelPolicy) bool { return p.Spec.Channel == crmv1.ChannelEmail }) == nil {
		return nil, &specError{Reason: crmv1.ReasonDependencyNotFound,
			Message: "no email ChannelPolicy in " + r.Namespace + ": reports are mailed through its providers"}
	}
	return &bus.ConfigRecord{Report: &bus.ReportConfig{Spec: s}}, nil
}

// observe publishes the due run, sets next/last run and reads the last run's result.
func (k reportKind) observe(ctx context.Context, r *crmv1.Report, t time.Time) (time.Duration, error) {
	st := &r.Status
	st.NextRunTime = nil
	s := ReportDefaults(r.Spec)
	sched, err := campaigncheck.Cron.Parse(s.Schedule.Cron)
	if err != nil || r.Status.ObservedGeneration != r.Generation || !meta.IsStatusConditionTrue(r.Status.Conditions, crmv1.ConditionReady) {
		return 0, nil
	}
	loc, err := time.LoadLocation(s.Schedule.TimeZone)
	if err != nil {
		return 0, nil
	}
	from := r.CreationTimestamp.Time
	if st.LastScheduleTime != nil && st.LastScheduleTime.After(from) {
		from = st.LastScheduleTime.Time
	}
	if horizon := t.Add(-ReportReach - time.Minute); from.Before(horizon) {
		// Only the latest slot within reach is made; older ones were missed.
		var missed time.Time
		for n := sched.Next(maxTime(from, horizon.Add(-31*24*time.Hour)).In(loc)); !n.IsZero() && !n.After(horizon); n = sched.Next(n) {
			missed = n
		}
		if !missed.IsZero() {
			k.event(r, corev1.EventTypeWarning, crmv1.ReasonRunMissed, fmt.Sprintf("report %s was missed while the manager was down", missed.UTC().Format(time.RFC3339)))
		}
		from = horizon
	}
	var due time.Time
	for n := sched.Next(from.In(loc)); !n.IsZero() && !n.After(t); n = sched.Next(n) {
		due = n
	}
	if !due.IsZero() {
		at := metav1.NewTime(due.UTC())
		if s.Suspend {
			k.event(r, corev1.EventTypeNormal, crmv1.ReasonRunSkipped, fmt.Sprintf("report %s skipped: spec.suspend is true", due.UTC().Format(time.RFC3339)))
		} else {
			run := &bus.ReportRun{RunID: bus.RunID(string(r.UID), due), Brand: r.Namespace, Report: r.Name, UID: string(r.UID),
				Generation: r.Generation, ScheduledTime: due.UTC(), Spec: s}
			if err := k.store.PublishReportRun(ctx, run); err != nil {
				return 0, err
			}
			st.LastRunTime = &at
			st.LastError = ""
			k.event(r, corev1.EventTypeNormal, crmv1.ReasonRunPublished, fmt.Sprintf("report %s published", due.UTC().Format(time.RFC3339)))
		}
		st.LastScheduleTime = &at
	}
	var wake time.Duration
	if next := sched.Next(t.In(loc)); !next.IsZero() {
		nt := metav1.NewTime(next.UTC())
		st.NextRunTime = &nt
		wake = next.Sub(t)
	}
	if st.LastRunTime != nil && (st.LastSentTime == nil || st.LastSentTime.Before(st.LastRunTime)) {
		res, err := k.store.ReportResult(ctx, r.Namespace, r.Name, st.LastRunTime.Time)
		if err != nil {
			return 0, err
		}
		switch {
		case res != nil && !res.Sent.IsZero():
			sent := metav1.NewTime(res.Sent.UTC())
			st.LastSentTime, st.LastError = &sent, ""
		case res != nil && res.Error != "":
			st.LastError = res.Error
		default:
			if wake == 0 || wake > reportPending {
				wake = reportPending
			}
		}
	}
	return wake, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (k reportKind) event(r *crmv1.Report, eventType, reason, note string) {
	if k.recorder != nil {
		k.recorder.Eventf(r, nil, eventType, reason, "Schedule", "%s", note)
	}
}

// SetupReport registers the Report controller; the brand's ChannelPolicies re-reconcile its
// Reports (a Report waits for an email policy).
func SetupReport(mgr ctrl.Manager, store *Store) error {
	k := reportKind{Client: mgr.GetClient(), store: store, recorder: mgr.GetEventRecorder("croupier-report")}
	r := newReconciler[*crmv1.Report](mgr, store, k, "report")
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1.Report{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Watches(&crmv1.ChannelPolicy{}, enqueueNamespace(mgr.GetClient(), func() client.ObjectList { return &crmv1.ReportList{} })).
		Named("report").
		Complete(r)
}
