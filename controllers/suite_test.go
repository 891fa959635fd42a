package controllers

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/testenv"
)

var (
	restCfg   *rest.Config
	k8s       client.Client
	js        jetstream.JetStream
	testStore *Store
	scheme    = runtime.NewScheme()
	nsCounter atomic.Int64

	// topologyMissing is the Ready condition a Segment had before the topology existed,
	// recorded by TestMain (the manager runs before the dispatcher made the topology).
	topologyMissing *metav1.Condition
	topologySegment client.ObjectKey
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(crmv1.AddToScheme(scheme))
	if os.Getenv("CROUPIER_TEST_VERBOSE") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	env, err := testenv.Start(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restCfg = env.Config
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	dir, _ := os.MkdirTemp("", "croupier-nats-")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Shutdown()
	nc, err := bus.ConnectEmbedded(srv, "manager-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)

	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testStore = &Store{JS: js}
	if err := Setup(mgr, testStore, Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	// Before the dispatcher creates the topology, the manager reports it missing.
	if err := recordTopologyMissing(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: 8}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func recordTopologyMissing(ctx context.Context) error {
	ns := "topology-missing"
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	seg := &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "early"}, Spec: crmv1.SegmentSpec{Rule: `player.ltv > 1.0`}}
	if err := k8s.Create(ctx, seg); err != nil {
		return err
	}
	topologySegment = client.ObjectKeyFromObject(seg)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var got crmv1.Segment
		if err := k8s.Get(ctx, topologySegment, &got); err == nil {
			if c := meta.FindStatusCondition(got.Status.Conditions, crmv1.ConditionReady); c != nil {
				if s := meta.FindStatusCondition(got.Status.Conditions, crmv1.ConditionStalled); s != nil && s.Status == metav1.ConditionTrue {
					topologyMissing = c.DeepCopy()
					return nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("segment never reported the missing topology")
}

// newNamespace makes a namespace (a brand) for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("brand-%d", nsCounter.Add(1))
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// waitCondition waits until obj's condition has the status and reason and returns it.
func waitCondition(t *testing.T, obj Object, condType string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var found *metav1.Condition
	eventually(t, 45*time.Second, fmt.Sprintf("%s %s=%s/%s", obj.GetName(), condType, status, reason), func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.Common().Conditions, condType)
		if c == nil {
			return fmt.Errorf("no %s condition yet (conditions %+v)", condType, obj.Common().Conditions)
		}
		if c.Status != status || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("%s is %s/%s: %s", condType, c.Status, c.Reason, c.Message)
		}
		found = c
		return nil
	})
	return found
}
