// Command dispatcher owns the NATS topology, takes its share of the partitions by lease,
// keeps players from their events, and serves the authenticated event intake and admin
// API. With no --nats-url it embeds a NATS server with JetStream file storage under
// --data-dir: the default for one machine and for tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/client-go/kubernetes"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/bus"
)

func main() {
	var (
		natsURL, natsCreds, natsCA, dataDir, listen, inactive string
		partitions, replicas                                  int
		noKube                                                bool
		deprecated                                            []string
		o                                                     app.Options
	)
	host, _ := os.Hostname()
	flag.StringVar(&natsURL, "nats-url", "", "NATS server URL(s); empty embeds a server")
	flag.StringVar(&natsCreds, "nats-creds", "", "NATS credentials: a .creds file (JWT + nkey) or an nkey user seed file")
	flag.StringVar(&natsCA, "nats-ca", "", "CA file that signs the NATS servers' certificates")
	flag.StringVar(&dataDir, "data-dir", ".croupier/nats", "JetStream storage of the embedded server")
	flag.StringVar(&listen, "nats-listen", "127.0.0.1:4222", "client address of the embedded server")
	flag.IntVar(&partitions, "partitions", bus.DefaultPartitions, "partitions of a new EVENTS stream")
	flag.IntVar(&replicas, "stream-replicas", 0, "replicas of streams and buckets; 0 follows the existing streams, or for a new topology what the server offers (3 on a cluster of three or more, 1 on one server); never lowered")
	flag.StringVar(&o.Replica, "replica-name", replicaName(host), "this dispatcher's name in croupier-leases (the pod name)")
	// Deprecated aliases, kept for one release.
	flag.Func("replicas", "deprecated: use --stream-replicas", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		replicas = n
		deprecated = append(deprecated, "--replicas is deprecated and will be removed: use --stream-replicas")
		return nil
	})
	flag.Func("replica", "deprecated: use --replica-name", func(v string) error {
		o.Replica = v
		deprecated = append(deprecated, "--replica is deprecated and will be removed: use --replica-name")
		return nil
	})
	flag.DurationVar(&o.StallAfter, "stall-timeout", 10*time.Second, "how long a held partition may have work pending without progress before it is restarted and /readyz fails")
	flag.DurationVar(&o.LeaseTTL, "lease-ttl", 6*time.Second, "partition lease duration without renewal (renewed every third)")
	flag.IntVar(&o.Batch, "batch", 1000, "most events processed per partition between two persists")
	flag.DurationVar(&o.Linger, "linger", 5*time.Millisecond, "how long a partition owner waits for more events before persisting a batch")
	flag.DurationVar(&o.SweepEvery, "sweep-interval", 10*time.Minute, "period of RFM scoring and inactivity checks")
	flag.StringVar(&inactive, "inactive-days", "7,14,30,60,90", "days without activity at which player.inactive is emitted")
	flag.StringVar(&o.APIAddr, "api-bind-address", ":8443", "HTTPS address of the event intake and admin API")
	flag.StringVar(&o.PublicURL, "public-url", "", "base URL players reach the dispatcher at, for unsubscribe and double opt-in links in messages (none when empty)")
	flag.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serving certificate (self-signed when empty)")
	flag.StringVar(&o.TLSKeyFile, "tls-key-file", "", "serving key")
	flag.StringVar(&o.HealthAddr, "http-bind-address", ":8090", "address of /healthz, /readyz and /metrics")
	flag.IntVar(&o.DeliveryInFlight, "delivery-in-flight", 512, "most jobs each channel worker sends at once")
	flag.DurationVar(&o.DeliveryAckWait, "delivery-ack-wait", channel.DefaultAckWait, "how long after a crash the jobs this replica was sending go to another (more than the longest provider timeout)")
	flag.BoolVar(&noKube, "no-kubernetes", false, "run without a Kubernetes API (no intake keys, no admin API)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	for _, d := range deprecated {
		log.Warn(d)
	}
	days, err := parseDays(inactive)
	if err != nil {
		log.Error("--inactive-days", "err", err)
		os.Exit(2)
	}
	o.InactiveDays = days
	if o.DeliveryInFlight < 1 || o.DeliveryInFlight > 65536 {
		log.Error("--delivery-in-flight: must be between 1 and 65536")
		os.Exit(2)
	}
	if o.DeliveryAckWait < 5*time.Second {
		log.Error("--delivery-ack-wait: must be at least 5s (and more than the longest provider timeout)")
		os.Exit(2)
	}
	if err := run(log, natsURL, natsCreds, natsCA, dataDir, listen, partitions, replicas, noKube, o); err != nil {
		log.Error("dispatcher stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, natsURL, creds, ca, dataDir, listen string, partitions, replicas int, noKube bool, o app.Options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if natsURL == "" {
		host, portStr, err := net.SplitHostPort(listen)
		if err != nil {
			return err
		}
		port, err := net.LookupPort("tcp", portStr)
		if err != nil {
			return err
		}
		srv, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dataDir, Host: host, Port: port})
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		natsURL = srv.ClientURL()
		log.Info("embedded NATS started", "url", natsURL, "dataDir", dataDir)
	}
	copts, err := bus.ClientOptions("croupier-dispatcher", creds, ca)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, copts...)
	if err != nil {
		return err
	}
	defer func() { _ = nc.Drain() }()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: partitions, Replicas: replicas})
	if err != nil {
		return err
	}
	log.Info("NATS topology ensured", "partitions", topo.Partitions, "streamReplicas", topo.Replicas)
	o.Partitions = topo.Partitions
	if !noKube {
		cfg, err := ctrlconfig.GetConfig()
		if err != nil {
			return fmt.Errorf("Kubernetes API (or --no-kubernetes): %w", err)
		}
		o.Kube, err = kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
	}
	return app.Run(ctx, log, nc, o)
}

var nonToken = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// replicaName makes a subject token of the host name (the pod name in Kubernetes).
func replicaName(host string) string {
	n := nonToken.ReplaceAllString(host, "-")
	if n == "" {
		n = "dispatcher"
	}
	if len(n) > 100 {
		n = n[:100]
	}
	return n + "-" + strconv.Itoa(os.Getpid())
}

func parseDays(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d <= 0 || d > 3650 {
			return nil, fmt.Errorf("%q: must be a comma-separated list of days between 1 and 3650", f)
		}
		if len(out) > 0 && d <= out[len(out)-1] {
			return nil, fmt.Errorf("%q: days must be ascending", f)
		}
		out = append(out, d)
	}
	return out, nil
}
