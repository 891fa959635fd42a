package controllers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// reconciles reads controller-runtime's count of the campaign controller's reconciles.
func reconciles(tb testing.TB) float64 {
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "campaign" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// BenchmarkApplyCampaigns applies CROUPIER_BENCH_CAMPAIGNS (default 1,000) Campaigns at once
// to one namespace and reports the seconds until every one is Ready; then it makes every
// Campaign reconcile again with nothing changed (a PreferencePolicy appears, which all
// Campaigns watch) and reports the status writes that caused (resourceVersions that moved).
func BenchmarkApplyCampaigns(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CROUPIER_BENCH_CAMPAIGNS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	for b.Loop() {
		ns := newNamespace(&testing.T{})
		start := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					c := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("receipt-%04d", i)},
						Spec: crmv1.CampaignSpec{Category: crmv1.CategoryService,
							Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
							Steps:    []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "receipt"}}},
							Contents: []crmv1.Content{{Name: "receipt", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "Depozit {{ .Event.amount }}"}}}}}}
					if err := k8s.Create(ctx, c); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		versions := map[string]string{}
		for {
			var list crmv1.CampaignList
			if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			ready := 0
			for i := range list.Items {
				if c := meta.FindStatusCondition(list.Items[i].Status.Conditions, crmv1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
					ready++
				}
				versions[list.Items[i].Name] = list.Items[i].ResourceVersion
			}
			if ready == n {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("%d of %d Ready after 5 minutes", ready, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-to-ready")

		before := reconciles(b)
		if err := k8s.Create(ctx, validPreferencePolicy(ns, "policy")); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for reconciles(b)-before < float64(n) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
		var list crmv1.CampaignList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		writes := 0
		for i := range list.Items {
			if versions[list.Items[i].Name] != list.Items[i].ResourceVersion {
				writes++
			}
		}
		b.ReportMetric(reconciles(b)-before, "resync-reconciles")
		b.ReportMetric(float64(writes), "resync-status-writes")
	}
}
