package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// auditEntries returns every AUDIT entry of one object, oldest first.
func auditEntries(t *testing.T, brand, kind, name string) []bus.AuditEntry {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.AuditSubject(brand, kind, name)}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.AuditEntry
	for i := uint64(0); i < info.NumPending; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		e, err := bus.Decode[bus.AuditEntry](m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestSegmentLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	seg := &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "depositors"}, Spec: crmv1.SegmentSpec{Rule: `player.depositCount > 0`}}
	if err := k8s.Create(ctx, seg, client.FieldOwner("argocd-controller")); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, seg, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	if seg.Status.ObservedGeneration != 1 {
		t.Fatalf("observedGeneration = %d", seg.Status.ObservedGeneration)
	}
	rec, err := testStore.Published(ctx, ns, bus.KindSegment, "depositors")
	if err != nil || rec == nil || rec.Generation != 1 || rec.Segment.Spec.Rule != `player.depositCount > 0` {
		t.Fatalf("published %+v, %v", rec, err)
	}

	// A new generation: published again and audited with the diff and the field manager.
	seg.Spec.Rule = `player.depositCount > 2`
	if err := k8s.Update(ctx, seg, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "generation 2 published", func() error {
		rec, err := testStore.Published(ctx, ns, bus.KindSegment, "depositors")
		if err != nil || rec == nil || rec.Generation != 2 {
			return fmt.Errorf("record %+v, %v", rec, err)
		}
		return nil
	})
	waitCondition(t, seg, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	entries := auditEntries(t, ns, bus.KindSegment, "depositors")
	if len(entries) != 2 {
		t.Fatalf("%d audit entries, want 2: %+v", len(entries), entries)
	}
	if entries[0].Action != bus.AuditCreated || entries[0].FieldManager != "argocd-controller" || entries[0].Generation != 1 {
		t.Fatalf("first entry %+v", entries[0])
	}
	e := entries[1]
	if e.Action != bus.AuditUpdated || e.FieldManager != "kubectl-edit" || e.Generation != 2 || len(e.Changes) != 1 || e.Changes[0].Path != "spec.rule" ||
		string(e.Changes[0].Before) != `"player.depositCount \u003e 0"` && string(e.Changes[0].Before) != `"player.depositCount > 0"` {
		t.Fatalf("update entry %+v", e)
	}

	// A resync with nothing changed writes nothing: no status patch, no KV write, no audit.
	// The running controller's status write for generation 2 may still be on its way (its
	// audit entry is written first): wait for it, it is not the resync's.
	eventually(t, 30*time.Second, "generation 2 observed", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(seg), seg); err != nil {
			return err
		}
		if seg.Status.ObservedGeneration != seg.Generation {
			return fmt.Errorf("observed generation %d of %d", seg.Status.ObservedGeneration, seg.Generation)
		}
		return nil
	})
	r := &reconciler[*crmv1.Segment]{Client: k8s, Store: testStore, Now: time.Now, kind: segmentKind{}}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(seg), seg); err != nil {
		t.Fatal(err)
	}
	rv := seg.ResourceVersion
	kv, _ := js.KeyValue(ctx, bus.BucketConfig)
	before, _ := kv.Get(ctx, bus.ConfigKey(ns, bus.KindSegment, "depositors"))
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(seg)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(seg), seg); err != nil {
		t.Fatal(err)
	}
	after, _ := kv.Get(ctx, bus.ConfigKey(ns, bus.KindSegment, "depositors"))
	if seg.ResourceVersion != rv || after.Revision() != before.Revision() || len(auditEntries(t, ns, bus.KindSegment, "depositors")) != 2 {
		t.Fatalf("an unchanged resync wrote: resourceVersion %s->%s, KV revision %d->%d", rv, seg.ResourceVersion, before.Revision(), after.Revision())
	}

	// Delete: the compiled spec is purged, the deletion audited, the object released.
	if err := k8s.Delete(ctx, seg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "segment gone", func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(seg), &crmv1.Segment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
	if rec, _ := testStore.Published(ctx, ns, bus.KindSegment, "depositors"); rec != nil {
		t.Fatal("compiled spec survived the delete")
	}
	entries = auditEntries(t, ns, bus.KindSegment, "depositors")
	if last := entries[len(entries)-1]; last.Action != bus.AuditDeleted {
		t.Fatalf("last audit entry %+v", last)
	}
	// The Published event of the creation is recorded through events.k8s.io/v1.
	eventually(t, 10*time.Second, "Published event", func() error { return findEvent(ctx, ns, "depositors", crmv1.ReasonPublished) })
}

func findEvent(ctx context.Context, ns, name, reason string) error {
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("no %s event for %s among %d", reason, name, len(list.Items))
}

func TestPolicyConflictOldestWins(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	first := validPreferencePolicy(ns, "brand-policy")
	if err := k8s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, first, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	second := validPreferencePolicy(ns, "another-policy")
	if err := k8s.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, second, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonPolicyConflict)
	if !strings.Contains(c.Message, `PreferencePolicy "brand-policy" is older`) {
		t.Fatalf("message %q", c.Message)
	}
	if rec, _ := testStore.Published(ctx, ns, bus.KindPreferencePolicy, "another-policy"); rec != nil {
		t.Fatal("the loser was published")
	}
	eventually(t, 10*time.Second, "PolicyConflict event", func() error { return findEvent(ctx, ns, "another-policy", crmv1.ReasonPolicyConflict) })

	// The winner goes: the loser is re-reconciled and takes over.
	if err := k8s.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, second, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)

	// Channel policies conflict per channel, not per namespace.
	sms1 := validChannelPolicy(ns, "sms-a", crmv1.ChannelSMS, crmv1.ProviderSMSRest)
	push := validChannelPolicy(ns, "push", crmv1.ChannelPush, crmv1.ProviderFCM)
	for _, o := range []client.Object{sms1, push} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitCondition(t, sms1, crmv1.ConditionReady, metav1.ConditionTrue, "")
	waitCondition(t, push, crmv1.ConditionReady, metav1.ConditionTrue, "")
	time.Sleep(1100 * time.Millisecond)
	sms2 := validChannelPolicy(ns, "sms-b", crmv1.ChannelSMS, crmv1.ProviderTwilio)
	if err := k8s.Create(ctx, sms2); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, sms2, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonPolicyConflict)
}

func TestCampaignDependenciesAndConfigMapAudit(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := validCampaign(ns, "vip-reload")
	c.Spec.Trigger = crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * 1", TimeZone: "Asia/Baku"}}
	c.Spec.Audience = &crmv1.Audience{SegmentRef: &crmv1.LocalObjectReference{Name: "vips"}}
	c.Spec.Contents[0].Messages[1].Body = ""
	c.Spec.Contents[0].Messages[1].Format = crmv1.FormatHTML
	c.Spec.Contents[0].Messages[1].BodyFrom = &crmv1.ConfigMapKeyReference{Name: "reload-html", Key: "az.html"}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Neither the Segment nor the ConfigMap exists yet: waiting, not failed.
	cond := waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonDependencyNotFound)
	if !strings.Contains(cond.Message, `Segment "vips" not found`) {
		t.Fatalf("message %q", cond.Message)
	}
	waitCondition(t, c, crmv1.ConditionReconciling, metav1.ConditionTrue, crmv1.ReasonDependencyNotFound)
	if c.Status.ObservedGeneration == c.Generation {
		t.Fatal("observedGeneration set while waiting for a dependency")
	}
	if err := k8s.Create(ctx, &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vips"}, Spec: crmv1.SegmentSpec{Rule: "player.vipLevel >= 3"}}); err != nil {
		t.Fatal(err)
	}
	cond = waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonDependencyNotFound)
	eventually(t, 20*time.Second, "waiting on the ConfigMap", func() error {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(c), c)
		for _, x := range c.Status.Conditions {
			if x.Type == crmv1.ConditionReady && strings.Contains(x.Message, `ConfigMap "reload-html" not found`) {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", c.Status.Conditions)
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reload-html"}, Data: map[string]string{"az.html": "<p>Həftəsonu reload: 50%</p>"}}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	if c.Status.Phase != crmv1.PhaseScheduled || c.Status.NextRunTime == nil {
		t.Fatalf("phase %q next %v", c.Status.Phase, c.Status.NextRunTime)
	}
	// kubectl get campaigns shows the next run readably: a date-typed column over a future
	// time is "<invalid>" in the API server's table.
	if cell := tableCell(t, ns, c.Name, "Next Run"); cell != c.Status.NextRunTime.UTC().Format(time.RFC3339) {
		t.Errorf("NEXT RUN column shows %q, want %s", cell, c.Status.NextRunTime.UTC().Format(time.RFC3339))
	}

	// Changing the ConfigMap republishes the content and audits the change.
	cm.Data["az.html"] = "<p>Həftəsonu reload: 75%</p>"
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "new body published", func() error {
		rec, err := testStore.Published(ctx, ns, bus.KindCampaign, "vip-reload")
		if err != nil || rec == nil {
			return fmt.Errorf("%v", err)
		}
		for _, m := range rec.Campaign.Spec.Contents[0].Messages {
			if m.Channel == crmv1.ChannelEmail && strings.Contains(m.Body, "75%") {
				return nil
			}
		}
		return fmt.Errorf("old body still published")
	})
	entries := auditEntries(t, ns, bus.KindConfigMap, "reload-html")
	if len(entries) != 1 || entries[0].Changes[0].Path != "data.az.html" || !strings.Contains(entries[0].Note, "vip-reload") {
		t.Fatalf("configmap audit %+v", entries)
	}

	// Pausing: Paused=True, phase Paused, still Ready.
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
		t.Fatal(err)
	}
	c.Spec.Paused = true
	if err := k8s.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, crmv1.ConditionPaused, metav1.ConditionTrue, crmv1.ReasonSpecPaused)
	waitCondition(t, c, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	if c.Status.Phase != crmv1.PhasePaused {
		t.Fatalf("phase %q", c.Status.Phase)
	}
}

// tableCell is what `kubectl get campaigns` prints in a column for a Campaign: the API
// server's Table rendering (server-side printing).
func tableCell(t *testing.T, ns, name, column string) string {
	t.Helper()
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(restCfg.Host, "/")+"/apis/"+crmv1.GroupVersion.String()+"/namespaces/"+ns+"/campaigns/"+name, nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatal(err)
	}
	for i, col := range table.ColumnDefinitions {
		if col.Name == column && len(table.Rows) == 1 {
			return fmt.Sprint(table.Rows[0].Cells[i])
		}
	}
	t.Fatalf("no column %q in %+v", column, table.ColumnDefinitions)
	return ""
}
