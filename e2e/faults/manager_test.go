package faults_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/controllers"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/testenv"
)

// offsetClock is the managers' clock: real time plus an offset.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) set(t time.Time) { c.off.Store(t.UnixNano() - time.Now().UnixNano()) }
func (c *offsetClock) now() time.Time  { return time.Now().Add(time.Duration(c.off.Load())) }

// startManager runs a manager in this process until the returned stop is called.
func startManager(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme, s *stack, clk *offsetClock) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, &controllers.Store{JS: s.js}, controllers.Options{Now: clk.now, StatsInterval: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// The manager stopped the moment its daily 10:00 run reached RUNS, with the status write
// that records the run lost, and a new manager started: the run happens once; every
// member of the Segment gets one message.
func TestManagerRestartedDuringCronRun(t *testing.T) {
	const players = 2000
	ctrl.SetLogger(logr.Discard())
	env, err := testenv.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1.AddToScheme(scheme)
	k8s, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	s := newStack(t)
	hook := newSink(t)
	clk := &offsetClock{}
	stop1 := startManager(t, env.Config, scheme, s, clk)
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: brand}}); err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var campaign *unstructured.Unstructured
	for _, u := range objs {
		u.SetNamespace(brand)
		switch u.GetKind() {
		case "Campaign":
			campaign = u
			continue
		case "ChannelPolicy":
			if err := unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "hook", "type": "webhook", "endpoint": hook.endpoint()}}, "spec", "providers"); err != nil {
				t.Fatal(err)
			}
		}
		if err := k8s.Create(ctx, u); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	s.start("d1")
	s.waitOwned(30*time.Second, "d1")
	s.register(players)
	var seg crmv1.Segment
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("segment status %+v", seg.Status)
			t.Log(s.diagnose())
			for _, b := range []string{bus.BucketStats, bus.BucketConfig} {
				kv, _ := s.js.KeyValue(ctx, b)
				keys, _ := kv.Keys(ctx)
				t.Logf("%s: %v", b, keys)
			}
		}
	})
	bustest.Eventually(t, time.Minute, "the Segment's member count", func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: brand, Name: "az-players"}, &seg) == nil &&
			seg.Status.MemberCount != nil && *seg.Status.MemberCount == players
	})

	baku, _ := time.LoadLocation("Asia/Baku")
	base := time.Now().Add(time.Hour).In(baku)
	due := time.Date(base.Year(), base.Month(), base.Day(), 10, 0, 0, 0, baku)
	if !due.After(base) {
		due = due.AddDate(0, 0, 1)
	}
	clk.set(due.Add(-3 * time.Second))
	if err := k8s.Create(ctx, campaign); err != nil {
		t.Fatal(err)
	}
	runs := func() int { return len(bustest.ReadAll(t, s.js, bus.StreamRuns, bus.RunSubject(brand, "daily-spins"))) }
	bustest.Eventually(t, 20*time.Second, "the run in RUNS", func() bool { return runs() >= 1 })
	stop1() // the manager goes away the moment the run is published

	var c crmv1.Campaign
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: brand, Name: "daily-spins"}, &c); err != nil {
		t.Fatal(err)
	}
	recorded := c.Status.LastRunTime != nil
	if recorded { // lose the status write, as a crash between publish and status would
		before := c.DeepCopy()
		c.Status.LastRunTime, c.Status.LastScheduleTime = nil, nil
		if err := k8s.Status().Patch(ctx, &c, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	startManager(t, env.Config, scheme, s, clk)
	bustest.Eventually(t, 30*time.Second, "the new manager records the run", func() bool {
		var c crmv1.Campaign
		return k8s.Get(ctx, client.ObjectKey{Namespace: brand, Name: "daily-spins"}, &c) == nil &&
			c.Status.LastRunTime != nil && c.Status.LastRunTime.Time.Equal(due)
	})
	s.waitDistinct(players, hook)
	bustest.Eventually(t, 30*time.Second, "the status counts every message", func() bool {
		var c crmv1.Campaign
		return k8s.Get(ctx, client.ObjectKey{Namespace: brand, Name: "daily-spins"}, &c) == nil &&
			c.Status.Counters != nil && c.Status.Counters.Sent == players
	})
	time.Sleep(3 * time.Second)

	if n := runs(); n != 1 {
		t.Errorf("%d runs in RUNS; want 1", n)
	}
	distinct, most := hook.perCampaign("daily-spins")
	if most != 1 || distinct != players {
		t.Errorf("%d players reached, most %d messages a player; want %d players, 1 each", distinct, most, players)
	}
	dups := hook.duplicates()
	t.Logf("the stopped manager had recorded the run: %v; runs %d, messages %d, duplicates %d", recorded, runs(), distinct, dups)
	bustest.Reliability(t, "manager restarted during a cron run", fmt.Sprintf("daily 10:00 Baku run to a Segment of %d players", players),
		"manager stopped as the run reached RUNS, its status write lost, new manager started", players-distinct, dups,
		fmt.Sprintf("runs published: %d; most messages a player: %d", runs(), most))
}
