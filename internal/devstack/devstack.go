// Package devstack runs Croupier locally for `make dev` (hack/devstack): a kube-apiserver
// and etcd built from Go modules (data kept under .croupier/), the dispatcher's embedded
// NATS with the topology, the manager's controllers, the Baku samples pointed at local
// provider sinks, and a traffic simulator. Cancelling the context stops everything; the
// next run resumes with the same data. The end-to-end test runs it headless.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/utils/ptr"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/controllers"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/manifests"
)

const brand = "baku-casino"

// Options place the local stack. The zero value is make dev's.
type Options struct {
	// State is where data is kept (.croupier); Root the repository (config/ is read).
	State, Root string
	// NATSPort is the embedded server's client port (4222; -1 picks a free one).
	NATSPort int
	// Addresses of the dispatcher's HTTPS API and health/metrics, the manager's metrics
	// and probes, and the local SMTP and HTTP sinks.
	APIAddr, HealthAddr, MetricsAddr, ProbeAddr, SMTPAddr, HTTPSinkAddr string
	// Players and Speed drive the traffic simulator (Players 0: none).
	Players int
	Speed   float64
	// StatsInterval is how often the manager sums counters into status (10 s).
	StatsInterval time.Duration
	// Out gets the welcome text and the live line (nothing when nil).
	Out io.Writer
	// Log gets the dispatcher's JSON log (discarded when nil).
	Log io.Writer
	// Ready receives what a client needs once everything runs.
	Ready chan<- Info
}

// Info is where the running stack is.
type Info struct {
	Kubeconfig string
	APIURL     string
	// Token is the brand's intake bearer token.
	Token string
	// MailDir holds the emails the SMTP sink received.
	MailDir string
	NATSURL string
}

func (o *Options) defaults() {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&o.State, ".croupier")
	def(&o.Root, ".")
	def(&o.APIAddr, "127.0.0.1:8443")
	def(&o.HealthAddr, "127.0.0.1:8090")
	def(&o.MetricsAddr, "127.0.0.1:8080")
	def(&o.ProbeAddr, "127.0.0.1:8081")
	def(&o.SMTPAddr, "127.0.0.1:2525")
	def(&o.HTTPSinkAddr, "127.0.0.1:8099")
	if o.NATSPort == 0 {
		o.NATSPort = 4222
	}
	if o.Speed <= 0 {
		o.Speed = 60
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// Run runs the local stack until ctx ends.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	state := o.State
	simPlayers, simSpeed := o.Players, o.Speed

	abs, err := filepath.Abs(state)
	if err != nil {
		return err
	}
	for _, d := range []string{"etcd", "nats"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return err
		}
	}

	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(o.Root, "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(abs, "etcd")}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd (KUBEBUILDER_ASSETS=%s): %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	defer func() { _ = env.Stop() }()
	kubeconfig := filepath.Join(abs, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return err
	}

	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: filepath.Join(abs, "nats"), Port: o.NATSPort})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := bus.ConnectEmbedded(srv, "croupier-dev")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{})
	if err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(crmv1.AddToScheme(scheme))
	// A process may run the stack more than once (the tests do): controller names are
	// only unique per manager.
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: o.MetricsAddr}, HealthProbeBindAddress: o.ProbeAddr,
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, &controllers.Store{JS: js}, controllers.Options{StatsInterval: o.StatsInterval}); err != nil {
		return err
	}
	mgrErr := make(chan error, 1)
	go func() { mgrErr <- mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if err := applyRBAC(ctx, c, filepath.Join(o.Root, "config", "rbac")); err != nil {
		return err
	}
	if err := applySamples(ctx, c, filepath.Join(o.Root, "config", "samples")); err != nil {
		return err
	}
	sk, err := startSinks(ctx, abs, o.SMTPAddr, o.HTTPSinkAddr)
	if err != nil {
		return err
	}
	if err := pointAtSinks(ctx, c, o.SMTPAddr, o.HTTPSinkAddr); err != nil {
		return err
	}
	sec, err := devIntegrationSecret(ctx, c)
	if err != nil {
		return err
	}
	token := string(sec.Data[ingest.SecretBearerToken])
	playerJWT, err := playerToken(sec, "p-1")
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dispErr := make(chan error, 1)
	dispReady := make(chan struct{})
	go func() {
		logTo := o.Log
		if logTo == nil {
			logTo = io.Discard
		}
		dispErr <- app.Run(ctx, slog.New(slog.NewJSONHandler(logTo, nil)), nc, app.Options{
			Replica: "dev", Partitions: topo.Partitions, LeaseTTL: 6 * time.Second, Batch: 1000,
			SweepEvery: 10 * time.Minute, InactiveDays: []int{7, 14, 30, 60, 90},
			APIAddr: o.APIAddr, HealthAddr: o.HealthAddr, Kube: kube, Ready: dispReady,
			PublicURL: "https://" + o.APIAddr,
		})
	}()
	select {
	case <-dispReady:
	case err := <-dispErr:
		return fmt.Errorf("dispatcher: %w", err)
	}
	welcome := fmt.Sprintf(`Croupier is running locally.
  kubeconfig   export KUBECONFIG=%s
  samples      kubectl -n %s get campaigns,segments,channelpolicies,preferencepolicies
  NATS         %s (JetStream under %s/nats, %d partitions)
  events       curl -k -H 'Authorization: Bearer %s' -H 'Content-Type: application/cloudevents+json' \
                 https://127.0.0.1:8443/v1/brands/%s/events -d @event.json   (shapes: EVENTS.md)
  admin API    https://127.0.0.1:8443/v1/brands/%s/players/{import,<id>/export,<id>/erase,<id>/history,<id>/explain?campaign=}
               (client certificate or token from the kubeconfig's user)
  preferences  curl -k -H 'Authorization: Bearer %s' \
                 https://127.0.0.1:8443/v1/brands/%s/me/preferences   (player p-1's token, valid 24h)
  inbox        https://127.0.0.1:8443/v1/brands/%s/me/inbox (same token; /stream is the live feed)
  sinks        emails land in %s/mail/*.eml (SMTP sink %s); SMS, push (FCM), webhook
               messages and the casino callbacks in %s/sinks.log (HTTP sink %s).
  plugin       make build && PATH=$PWD/bin:$PATH kubectl croupier -n %s status
               (preview, test-send, explain, history need --insecure-skip-dispatcher-verify)
  metrics      http://127.0.0.1:8080/metrics (manager), http://127.0.0.1:8090/metrics (dispatcher)
  simulator    %d players, a casino day in %s (flags: -players, -speed)
Ctrl-C stops everything; the next 'make dev' resumes with the same data.
`, kubeconfig, brand, srv.ClientURL(), state, topo.Partitions, token, brand, brand, playerJWT, brand, brand,
		state, o.SMTPAddr, state, o.HTTPSinkAddr, brand, simPlayers, (time.Duration(float64(24*time.Hour) / max(simSpeed, 1))).Round(time.Second))
	fmt.Fprint(o.Out, strings.NewReplacer("127.0.0.1:8443", o.APIAddr, "127.0.0.1:8080", o.MetricsAddr, "127.0.0.1:8090", o.HealthAddr).Replace(welcome))
	sim := &simulator{js: js, players: simPlayers, speed: max(simSpeed, 1)}
	if simPlayers > 0 {
		go sim.run(ctx)
	}
	line := &summaryLine{sim: sim, sinks: sk, c: c, metrics: "http://" + o.HealthAddr + "/metrics"}
	if o.Ready != nil {
		o.Ready <- Info{Kubeconfig: kubeconfig, APIURL: "https://" + o.APIAddr, Token: token, MailDir: filepath.Join(abs, "mail"), NATSURL: srv.ClientURL()}
	}

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.Out, "\nstopping")
			<-dispErr // partitions persist, acknowledge and release their leases
			return nil
		case err := <-dispErr:
			return fmt.Errorf("dispatcher: %w", err)
		case err := <-mgrErr:
			return err
		case <-tick.C:
			fmt.Fprintf(o.Out, "\r%s", line.next(ctx))
		}
	}
}

// applyRBAC installs the ClusterRoles, ServiceAccounts and bindings of config/rbac, as a
// cluster install would (people's roles included, for kubectl croupier users).
func applyRBAC(ctx context.Context, c client.Client, dir string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "croupier-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, d := range []string{dir, filepath.Join(dir, "people")} {
		objs, err := manifests.ReadDir(d)
		if err != nil {
			return err
		}
		for _, u := range objs {
			if u.GetKind() == "" {
				continue // kustomization.yaml
			}
			if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
			}
		}
	}
	return nil
}

func applySamples(ctx context.Context, c client.Client, dir string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: brand}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	objs, err := manifests.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, u := range objs {
		u.SetNamespace(brand)
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// devIntegrationSecret makes sure the sample PreferencePolicy's integration Secret exists
// (a random HMAC key and bearer token, kept across restarts) and returns the token.
func devIntegrationSecret(ctx context.Context, c client.Client) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: brand, Name: brand + "-integration"}, &sec)
	if err == nil || !apierrors.IsNotFound(err) {
		return &sec, err
	}
	random := func() string {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	sec = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: brand, Name: brand + "-integration"},
		Data: map[string][]byte{ingest.SecretHMACKey: []byte(random()), ingest.SecretBearerToken: []byte("dev-" + random()),
			ingest.SecretJWTKey: []byte(random())},
	}
	return &sec, c.Create(ctx, &sec)
}

// playerToken is a day-long token for a sample player, signed as the casino would sign it.
func playerToken(sec *corev1.Secret, player string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": player, "brand": brand,
		"exp": time.Now().Add(24 * time.Hour).Unix()}).SignedString(sec.Data[ingest.SecretJWTKey])
}
