// Command manager runs Croupier's controllers: it validates Campaigns, Segments,
// ChannelPolicies and PreferencePolicies, publishes their compiled specs to NATS and keeps
// their status.
package main

import (
	"flag"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/controllers"
	"github.com/croupier-crm/croupier/internal/bus"
)

func main() {
	var (
		natsURL, natsCreds, natsCA string
		metricsAddr, probeAddr     string
		leaderElect                bool
	)
	flag.StringVar(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	flag.StringVar(&natsCreds, "nats-creds", "", "NATS credentials: a .creds file (JWT + nkey) or an nkey user seed file")
	flag.StringVar(&natsCA, "nats-ca", "", "CA file that signs the NATS servers' certificates")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the metrics endpoint")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect one active manager among replicas")
	zopts := zap.Options{}
	zopts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(crmv1.AddToScheme(scheme))

	opts, err := bus.ClientOptions("croupier-manager", natsCreds, natsCA)
	if err != nil {
		log.Error(err, "NATS options")
		os.Exit(1)
	}
	nc, err := nats.Connect(natsURL, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		log.Error(err, "connecting to NATS")
		os.Exit(1)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Error(err, "JetStream context")
		os.Exit(1)
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "croupier-manager.crm.croupier.dev",
	})
	if err != nil {
		log.Error(err, "creating the manager")
		os.Exit(1)
	}
	if err := controllers.Setup(mgr, &controllers.Store{JS: js}, controllers.Options{}); err != nil {
		log.Error(err, "setting up controllers")
		os.Exit(1)
	}
	utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))
	log.Info("starting manager", "nats", nc.ConnectedUrlRedacted())
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
