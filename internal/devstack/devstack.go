// Package devstack runs Croupier locally for `make dev` (hack/devstack): a kube-apiserver
// and etcd built from Go modules (data kept under .croupier/), the dispatcher's embedded
// NATS with the topology, the manager's controllers, the Baku samples pointed at local
// provider sinks, and a traffic simulator. Cancelling the context stops everything; the
// next run resumes with the same data. The end-to-end test runs it headless.
package devstack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	certutil "k8s.io/client-go/util/cert"
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
	"github.com/croupier-crm/croupier/internal/people"
	"github.com/croupier-crm/croupier/internal/secretkeys"
	"github.com/croupier-crm/croupier/internal/testenv"
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
	// ConsoleAddr is where the web console listens (127.0.0.1:8088).
	ConsoleAddr string
	// ParentDeath starts etcd and kube-apiserver through this program's own executable
	// (see hack/devstack), which sets a parent-death signal before it runs them, so a
	// stack that is killed takes them along (Linux). Off in tests: the test binary is no
	// such wrapper.
	ParentDeath bool
	// Players and Speed drive the traffic simulator (Players 0: none).
	Players int
	Speed   float64
	// StatsInterval is how often the manager sums counters into status (10 s).
	StatsInterval time.Duration
	// Now is the manager's clock (tests move it to a Report's next slot); time.Now when nil.
	Now func() time.Time
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
	// ConsoleURL is the web console; People the sample people's tokens by person
	// (people.Roles).
	ConsoleURL string
	People     map[string]string
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
	def(&o.ConsoleAddr, "127.0.0.1:8088")
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
	// The warehouse export writes under .croupier/export/ with a key made once.
	exportKey, err := stateSecret(filepath.Join(state, "export.key"))
	if err != nil {
		return err
	}
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

	if err := reapStale(abs, o.Out); err != nil {
		return fmt.Errorf("stopping what a killed stack left behind (%s): %w", filepath.Join(abs, pidFile), err)
	}
	if o.ParentDeath {
		if err := wrapControlPlane(filepath.Join(abs, "bin")); err != nil {
			return fmt.Errorf("wrapping etcd and kube-apiserver: %w", err)
		}
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(o.Root, "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(abs, "etcd")}
	if o.Log != nil {
		// The test API server's and etcd's own output belongs in the stack's log, never
		// between the console's lines.
		env.ControlPlane.Etcd.Out, env.ControlPlane.Etcd.Err = o.Log, o.Log
		api := env.ControlPlane.GetAPIServer()
		api.Out, api.Err = o.Log, o.Log
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd (KUBEBUILDER_ASSETS=%s): %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	defer func() {
		_ = env.Stop()
		_ = os.Remove(filepath.Join(abs, pidFile))
	}()
	if err := writePIDs(abs, children(controlPlane)); err != nil {
		return err
	}
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
	if err := controllers.Setup(mgr, &controllers.Store{JS: js}, controllers.Options{StatsInterval: o.StatsInterval, Now: o.Now}); err != nil {
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
	// The simulator's first player (registered within seconds of the start).
	samplePlayer := (&simulator{}).player(0)
	playerJWT, err := playerToken(sec, samplePlayer)
	if err != nil {
		return err
	}
	certFile, keyFile, err := servingCert(filepath.Join(abs, "dispatcher-tls"))
	if err != nil {
		return err
	}
	if err := sk.reportDeliveries("https://"+o.APIAddr, certFile); err != nil {
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
			PublicURL: "https://" + o.APIAddr, TLSCertFile: certFile, TLSKeyFile: keyFile,
			ExportDir: filepath.Join(state, "export"), ExportKey: exportKey, ExportPlayersEvery: time.Minute,
		})
	}()
	select {
	case <-dispReady:
	case err := <-dispErr:
		return fmt.Errorf("dispatcher: %w", err)
	}
	// The console acts as the signed-in person: the sample people get ServiceAccounts bound
	// to config/rbac/people's roles, and tokens valid for a day.
	tokens, err := people.Ensure(ctx, kube, brand, 24*3600)
	if err != nil {
		return err
	}
	if err := writeTokens(filepath.Join(abs, "tokens"), tokens); err != nil {
		return err
	}
	consoleErr, err := startConsole(ctx, o.ConsoleAddr, cfg, "https://"+o.APIAddr, certFile, o.Log)
	if err != nil {
		return err
	}
	// The lines printed below work at once only when the brand's policy is published.
	if err := waitPublished(ctx, c, brand); err != nil {
		return err
	}
	welcome := fmt.Sprintf(`Croupier is running locally.
  kubeconfig   export KUBECONFIG=%[1]s
  samples      kubectl -n %[2]s get campaigns,segments,channelpolicies,preferencepolicies,reports
               (kubectl is %[3]s/kubectl; make build puts kubectl-croupier in bin/)
  NATS         %[4]s (JetStream under %[5]s/nats, %[6]d partitions)
  keys         bearer token %[7]s
               HMAC key     %[8]s
               dispatcher CA %[9]s
  events       BODY='{"specversion":"1.0","id":"dep-'$(date +%%s)'","source":"pam.baku","type":"deposit.completed","subject":"%[10]s","time":"'$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)'","data":{"amount":"50.00","currency":"AZN","method":"card","depositId":"d-'$(date +%%s)'"}}'
               curl -sS --cacert %[9]s -H 'Authorization: Bearer %[7]s' -H 'Content-Type: application/cloudevents+json' https://127.0.0.1:8443/v1/brands/%[2]s/events -d "$BODY"
  signed       T=$(date +%%s); SIG=$(printf '%%s.%%s' "$T" "$BODY" | openssl dgst -sha256 -hmac '%[8]s' | sed 's/^.* //')
               curl -sS --cacert %[9]s -H "Croupier-Signature: t=$T,v1=$SIG" -H 'Content-Type: application/cloudevents+json' https://127.0.0.1:8443/v1/brands/%[2]s/events -d "$BODY"
               (event shapes: EVENTS.md)
  admin API    https://127.0.0.1:8443/v1/brands/%[2]s/players/{import,<id>/export,<id>/erase,<id>/history,<id>/explain?campaign=}
               (client certificate or token from the kubeconfig's user)
  preferences  curl -sS --cacert %[9]s -H 'Authorization: Bearer %[11]s' https://127.0.0.1:8443/v1/brands/%[2]s/me/preferences
               (player %[10]s's token, valid 24h)
  inbox        https://127.0.0.1:8443/v1/brands/%[2]s/me/inbox (same token; /stream is the live feed)
  sinks        emails land in %[5]s/mail/*.eml (SMTP sink %[12]s); SMS, push (FCM), webhook
               messages and the casino callbacks in %[5]s/sinks.log (HTTP sink %[13]s).
  reports      Report ops-pulse mails today's figures (PDF) to ops@baku-casino.example every
               5 minutes: %[5]s/mail/*.eml; kubectl -n %[2]s get reports shows the next run.
  plugin       export CROUPIER_DISPATCHER=https://127.0.0.1:8443 CROUPIER_DISPATCHER_CA=%[9]s
               make build && PATH=$PWD/bin:%[3]s:$PATH kubectl croupier -n %[2]s status
  console      http://127.0.0.1:8088 (sign in with a token below: each person's own RBAC applies; also in %[5]s/tokens/)
  marketer     %[16]s
  analyst      %[17]s
  ops-manager  %[18]s
  support      %[19]s
  metrics      http://127.0.0.1:8080/metrics (manager), http://127.0.0.1:8090/metrics (dispatcher)
  simulator    %[14]d players (%[10]s and up), a casino day in %[15]s (flags: -players, -speed)
Ctrl-C stops everything; the next 'make dev' resumes with the same data.
`, kubeconfig, brand, kubectlDir(), srv.ClientURL(), state, topo.Partitions, token, string(sec.Data[ingest.SecretHMACKey]), certFile,
		samplePlayer, playerJWT, o.SMTPAddr, o.HTTPSinkAddr, simPlayers, (time.Duration(float64(24*time.Hour) / max(simSpeed, 1))).Round(time.Second),
		tokens["marketer"], tokens["analyst"], tokens["ops-manager"], tokens["support-agent"])
	fmt.Fprint(o.Out, strings.NewReplacer("127.0.0.1:8443", o.APIAddr, "127.0.0.1:8080", o.MetricsAddr, "127.0.0.1:8090", o.HealthAddr,
		"127.0.0.1:8088", o.ConsoleAddr).Replace(welcome))
	sim := &simulator{js: js, players: simPlayers, speed: max(simSpeed, 1)}
	if simPlayers > 0 {
		go sim.run(ctx)
	}
	line := &summaryLine{sim: sim, sinks: sk, c: c, metrics: "http://" + o.HealthAddr + "/metrics"}
	if o.Ready != nil {
		o.Ready <- Info{Kubeconfig: kubeconfig, APIURL: "https://" + o.APIAddr, Token: token, MailDir: filepath.Join(abs, "mail"), NATSURL: srv.ClientURL(),
			ConsoleURL: "http://" + o.ConsoleAddr, People: tokens}
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
		case err := <-consoleErr:
			return fmt.Errorf("console: %w", err)
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

// applySamples applies config/samples to the brand's namespace with server-side apply, so
// an edited sample takes effect at the next start (what the samples no longer set is
// removed; objects created by hand stay).
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
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(samplesFieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// samplesFieldOwner is the field manager of the applied samples.
const samplesFieldOwner = "croupier-dev"

// devIntegrationSecret makes sure the sample PreferencePolicy's integration Secret exists
// (a random HMAC key and bearer token, kept across restarts) and returns the token.
func devIntegrationSecret(ctx context.Context, c client.Client) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: brand, Name: brand + "-integration"}, &sec)
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	if err == nil && len(sec.Data[secretkeys.DataKeyWrap]) == 0 {
		// A state directory from before data keys were wrapped: the owners re-wrap the
		// keys they load.
		sec.Data[secretkeys.DataKeyWrap] = []byte(base64.StdEncoding.EncodeToString(kek))
		return &sec, c.Update(ctx, &sec)
	}
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
			ingest.SecretJWTKey: []byte(random()), secretkeys.DataKeyWrap: []byte(base64.StdEncoding.EncodeToString(kek))},
	}
	return &sec, c.Create(ctx, &sec)
}

// waitPublished waits until the brand's PreferencePolicy is Ready for its current
// generation (published, its integration Secret present), so intake knows the brand's keys.
func waitPublished(ctx context.Context, c client.Client, ns string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list crmv1.PreferencePolicyList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err == nil {
			for _, p := range list.Items {
				if r := meta.FindStatusCondition(p.Status.Conditions, crmv1.ConditionReady); r != nil && r.Status == metav1.ConditionTrue &&
					p.Status.ObservedGeneration == p.Generation {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the PreferencePolicy of %s was not Ready within 2 minutes (kubectl -n %s get preferencepolicies)", ns, ns)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// servingCert keeps the dispatcher's self-signed serving certificate (localhost,
// 127.0.0.1) in dir across restarts, so the CA file make dev prints stays valid.
func servingCert(dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return certFile, keyFile, nil
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, []string{"croupier-dispatcher"})
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(certFile, certPEM, 0o644)
}

// kubectlDir is where hack/build-envtest.sh put kubectl (KUBEBUILDER_ASSETS).
func kubectlDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return "$HOME/.cache/croupier/k8s-" + testenv.K8sVersion
}

// playerToken is a day-long token for a sample player, signed as the casino would sign it.
func playerToken(sec *corev1.Secret, player string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": player, "brand": brand,
		"exp": time.Now().Add(24 * time.Hour).Unix()}).SignedString(sec.Data[ingest.SecretJWTKey])
}

// stateSecret reads a secret kept in the state directory, making it on first use.
func stateSecret(file string) ([]byte, error) {
	if b, err := os.ReadFile(file); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b = []byte(hex.EncodeToString(b))
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	return b, os.WriteFile(file, b, 0o600)
}
