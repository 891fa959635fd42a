package controllers

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/manifests"
)

// readManifests decodes every document of the YAML files in dir.
func readManifests(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestEverySampleBecomesReady(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	objs := readManifests(t, filepath.Join("..", "config", "samples"))
	kinds := map[string]int{}
	for _, u := range objs {
		u.SetNamespace(ns)
		if err := k8s.Create(ctx, u); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	for _, k := range []string{"Campaign", "Segment", "ChannelPolicy", "PreferencePolicy"} {
		if kinds[k] == 0 {
			t.Fatalf("samples have no %s", k)
		}
	}
	for _, u := range objs {
		if u.GetAPIVersion() != crmv1.GroupVersion.String() {
			continue
		}
		u := u
		eventually(t, 30*time.Second, fmt.Sprintf("%s %s Ready", u.GetKind(), u.GetName()), func() error {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == crmv1.ConditionReady {
					if m["status"] == "True" {
						return nil
					}
					return fmt.Errorf("Ready=%v %v: %v", m["status"], m["reason"], m["message"])
				}
			}
			return errors.New("no Ready condition")
		})
		rec, err := testStore.Published(ctx, ns, kindToken(u.GetKind()), u.GetName())
		if err != nil || rec == nil {
			t.Fatalf("%s %s not published: %v", u.GetKind(), u.GetName(), err)
		}
	}
	// The welcome series inlined its ConfigMap bodies and holds budget in minor units.
	rec, _ := testStore.Published(ctx, ns, bus.KindCampaign, "welcome-series")
	if rec.Campaign.BudgetTotal == nil || rec.Campaign.BudgetTotal.Minor != 5_000_000 || rec.Campaign.RewardValues["welcome-spins"].Minor != 1000 {
		t.Fatalf("compiled money wrong: budget %+v rewards %+v", rec.Campaign.BudgetTotal, rec.Campaign.RewardValues)
	}
	for _, c := range rec.Campaign.Spec.Contents {
		for _, m := range c.Messages {
			if m.BodyFrom != nil || m.Body == "" {
				t.Fatalf("content %s/%s/%s not inlined", c.Name, m.Channel, m.Locale)
			}
		}
	}
	var daily crmv1.Campaign
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "daily-free-spins"}, &daily); err != nil {
		t.Fatal(err)
	}
	if daily.Status.NextRunTime == nil || daily.Status.Phase != crmv1.PhaseScheduled {
		t.Fatalf("daily-free-spins: phase %q next run %v", daily.Status.Phase, daily.Status.NextRunTime)
	}
	baku, _ := time.LoadLocation("Asia/Baku")
	if h := daily.Status.NextRunTime.In(baku); h.Hour() != 10 || h.Minute() != 0 {
		t.Fatalf("next run %s is not 10:00 Baku", h)
	}
	if p := meta.FindStatusCondition(daily.Status.Conditions, crmv1.ConditionPaused); p == nil || p.Status != "False" {
		t.Fatalf("Paused condition: %+v", p)
	}
}

func kindToken(kind string) string {
	switch kind {
	case "Campaign":
		return bus.KindCampaign
	case "Segment":
		return bus.KindSegment
	case "ChannelPolicy":
		return bus.KindChannelPolicy
	case "PreferencePolicy":
		return bus.KindPreferencePolicy
	}
	return ""
}
