package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/secretkeys"
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
	for _, k := range []string{"Campaign", "Segment", "ChannelPolicy", "PreferencePolicy", "Report"} {
		if kinds[k] == 0 {
			t.Fatalf("samples have no %s", k)
		}
	}
	// A fresh namespace holds none of the Secrets the policies name: the policies say so,
	// naming the field and the Secret, instead of going green.
	for _, c := range []struct {
		obj        Object
		field, sec string
	}{
		{&crmv1.PreferencePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baku-casino"}}, "spec.integration.secretRef", "baku-casino-integration"},
		{&crmv1.ChannelPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "push"}}, "spec.providers[fcm].secretRef", "fcm-service-account"},
	} {
		cond := waitCondition(t, c.obj, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonSecretNotFound)
		if !strings.Contains(cond.Message, c.field+": Secret \""+c.sec+"\" does not exist") {
			t.Fatalf("%s: %q", c.obj.GetName(), cond.Message)
		}
	}
	// Every Secret they name, with the keys its provider needs; the integration Secret
	// first without them.
	secrets := map[string]secretkeys.Need{}
	for _, u := range objs {
		refs, err := secretkeys.OfManifest(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			secrets[r.Name] = append(secrets[r.Name], r.Need...)
		}
	}
	integration := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baku-casino-integration"}, Data: map[string][]byte{"unrelated": []byte("x")}}
	if err := k8s.Create(ctx, integration); err != nil {
		t.Fatal(err)
	}
	pp := &crmv1.PreferencePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baku-casino"}}
	cond := waitCondition(t, pp, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonSecretKeyMissing)
	if !strings.Contains(cond.Message, `Secret "baku-casino-integration" has no key hmacKey or bearerToken`) {
		t.Fatalf("message %q", cond.Message)
	}
	for name, need := range secrets {
		data := map[string][]byte{}
		for _, set := range need { // a Secret two fields name holds what both need
			maps.Copy(data, secretkeys.Need{set}.Sample())
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
		if name == integration.Name {
			integration.Data = data
			if err := k8s.Update(ctx, integration); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := k8s.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range objs {
		if u.GetAPIVersion() != crmv1.GroupVersion.String() {
			continue
		}
		u := u
		eventually(t, 60*time.Second, fmt.Sprintf("%s %s Ready", u.GetKind(), u.GetName()), func() error {
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
	if rec.Campaign.BudgetTotal == nil || rec.Campaign.BudgetTotal.Minor != 15_000_000 || rec.Campaign.RewardValues["welcome-spins"].Minor != 1000 {
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
	case "Report":
		return bus.KindReport
	}
	return ""
}

// A ChannelPolicy whose provider Secret lacks a key the provider needs is not Ready and
// names the Secret and the key (never a value); it turns Ready once the key is there,
// without any change to the policy (the manager looks again).
func TestChannelPolicyWaitsForItsSecretKeys(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	p := validChannelPolicy(ns, "sms", crmv1.ChannelSMS, crmv1.ProviderTwilio)
	p.Spec.Providers[0].SecretRef = &crmv1.LocalObjectReference{Name: "twilio-credentials"}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, p, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonSecretNotFound)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "twilio-credentials"},
		Data: map[string][]byte{secretkeys.AccountSID: []byte("AC-sample-account-0001")}}
	if err := k8s.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	cond := waitCondition(t, p, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonSecretKeyMissing)
	if cond.Message != `spec.providers[primary].secretRef: Secret "twilio-credentials" has no key authToken (looked for again every 15s)` {
		t.Fatalf("message %q", cond.Message)
	}
	if strings.Contains(cond.Message, "AC-sample-account-0001") {
		t.Fatal("the condition holds a Secret value")
	}
	if r := meta.FindStatusCondition(p.Status.Conditions, crmv1.ConditionReconciling); r == nil || r.Status != metav1.ConditionTrue {
		t.Fatalf("Reconciling %+v: a policy waiting for its Secret is in progress", r)
	}
	sec.Data[secretkeys.AuthToken] = []byte("sample-auth-token-0001")
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, p, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
}
