// Package e2e runs the manager and the dispatcher in one process against a real API
// server (envtest) and an embedded NATS JetStream server: manifests in, messages out.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/controllers"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/secretkeys"
	"github.com/croupier-crm/croupier/internal/testenv"
)

const partitions = 4

var (
	k8s     client.Client
	natsURL string
	js      jetstream.JetStream
	// clock is the manager's clock: real time plus an offset the tests set.
	clock     managerClock
	nsCounter atomic.Int64
)

type managerClock struct{ at atomic.Int64 }

// set makes the manager's clock read t now and run on from there.
func (c *managerClock) set(t time.Time) { c.at.Store(t.UnixNano() - time.Now().UnixNano()) }
func (c *managerClock) reset()          { c.at.Store(0) }
func (c *managerClock) now() time.Time  { return time.Now().Add(time.Duration(c.at.Load())) }

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(crmv1.AddToScheme(scheme))
	ctrl.SetLogger(logr.Discard())
	env, err := testenv.Start(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg := env.Config
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, _ := os.MkdirTemp("", "croupier-e2e-")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Shutdown()
	natsURL = srv.ClientURL()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: partitions}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := controllers.Setup(mgr, &controllers.Store{JS: js}, controllers.Options{Now: clock.now, StatsInterval: 500 * time.Millisecond}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = mgr.Start(ctx) }()
	return m.Run()
}

// startDispatcher runs a dispatcher in this process until the returned stop is called (or
// the test ends).
func startDispatcher(t *testing.T) (stop func()) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	o := app.Options{Replica: "e2e", Partitions: partitions, LeaseTTL: 3 * time.Second, Batch: 500, SweepEvery: time.Hour,
		APIAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", Ready: ready}
	go func() { done <- app.Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), nc, o) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("dispatcher: %v", err)
		}
		nc.Close()
	}
	t.Cleanup(stop)
	return stop
}

// brand makes a namespace and applies the policies, the Segment and the named Campaigns
// of testdata/brand.yaml, then waits until every object is Ready.
func brand(t *testing.T, campaigns ...string) string {
	return applyBrand(t, "testdata", campaigns...)
}

// applyBrand applies the manifests of dir (only the named Campaigns, or all with "*") to a
// new namespace and waits until every object is Ready.
func applyBrand(t *testing.T, dir string, campaigns ...string) string {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("brand-%d", nsCounter.Add(1))
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range campaigns {
		want[c] = true
	}
	var applied []*unstructured.Unstructured
	secrets := map[string]map[string][]byte{}
	for _, u := range objs {
		if u.GetKind() == "Campaign" && !want[u.GetName()] && !want["*"] {
			continue
		}
		refs, err := secretkeys.OfManifest(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs { // the brand's Secrets, with placeholder values
			if secrets[r.Name] == nil {
				secrets[r.Name] = map[string][]byte{}
			}
			maps.Copy(secrets[r.Name], r.Need.Sample())
		}
		u.SetNamespace(ns)
		if err := k8s.Create(ctx, u); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		applied = append(applied, u)
	}
	for name, data := range secrets {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
		if err := k8s.Create(ctx, sec); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, u := range applied {
		if u.GetAPIVersion() != crmv1.GroupVersion.String() {
			continue
		}
		eventually(t, 60*time.Second, u.GetKind()+" "+u.GetName()+" Ready", func() bool {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == crmv1.ConditionReady && m["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
	return ns
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not within %s: %s", within, what)
}

// publishEvent sends a player event the way the casino platform does.
func publishEvent(t *testing.T, brand, player, typ, id string, data string) {
	t.Helper()
	b, _ := bus.Encode(bus.CloudEvent{SpecVersion: "1.0", ID: id, Source: "pam", Type: typ, Subject: player, Time: time.Now().UTC(), Data: []byte(data)})
	if _, err := js.PublishAsync(bus.EventSubject(brand, player, typ), b, jetstream.WithStallWait(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func registration(player string) string {
	return `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}`
}

// outcomes reads a brand's OUTCOMES.
func outcomes(t *testing.T, brand string) []bus.Outcome {
	t.Helper()
	return collect[bus.Outcome](t, bus.StreamOutcomes, bus.BrandOutcomesFilter(brand))
}

func collect[T any](t *testing.T, stream, filter string) []T {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for left := info.NumPending; left > 0; {
		batch, err := c.FetchNoWait(int(min(left, 5000)))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			v, err := bus.Decode[T](m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
			n++
		}
		if n == 0 {
			break
		}
		left -= uint64(n)
	}
	return out
}

func campaign(t *testing.T, ns, name string) *crmv1.Campaign {
	t.Helper()
	var c crmv1.Campaign
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func kv(t *testing.T, bucket string) jetstream.KeyValue {
	t.Helper()
	b, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
