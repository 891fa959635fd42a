// Command dispatcher owns the NATS topology, takes its share of the partitions by lease,
// keeps players from their events, and serves the authenticated event intake and admin
// API. With no --nats-url it embeds a NATS server with JetStream file storage under
// --data-dir: the default for one machine and for tests.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/client-go/kubernetes"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/datakey"
)

func main() {
	var (
		natsURL, natsCreds, natsCA, dataDir, listen, inactive, wrapFile string
		partitions, replicas                                            int
		noKube                                                          bool
		deprecated                                                      []string
		o                                                               app.Options
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
	flag.StringVar(&wrapFile, "data-key-wrap-file", "", "file holding the key-encryption key (32 bytes, raw or base64) that wraps every brand's data keys; without it each brand's comes from its integration Secret (dataKeyWrap), and a brand with none stores its data keys unwrapped")
	var exportKeyFile string
	flag.StringVar(&o.ExportDir, "export-dir", "", "directory the warehouse export writes to (brand=/date=/ Parquet and NDJSON, docs/export.md); empty: no export")
	flag.StringVar(&exportKeyFile, "export-key-file", "", "file holding the secret (at least 16 bytes) each brand's player-id pseudonymisation key is derived from")
	flag.StringVar(&o.ExportS3Endpoint, "export-s3-endpoint", "", "S3-compatible endpoint the warehouse export writes to instead of a directory, https://host[:port][/prefix] (credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the pod's IAM role)")
	flag.StringVar(&o.ExportS3Bucket, "export-s3-bucket", "", "the bucket of --export-s3-endpoint")
	flag.DurationVar(&o.ExportPlayersEvery, "export-players-every", 15*time.Minute, "how often the warehouse export writes the players' metrics (the players changed since the time before, each once)")
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
	if wrapFile != "" {
		raw, err := os.ReadFile(wrapFile)
		if err == nil {
			o.DataKeyWrap, err = datakey.ParseKEK(raw)
		}
		if err != nil {
			log.Error("--data-key-wrap-file", "err", err)
			os.Exit(2)
		}
	}
	if o.ExportDir != "" || o.ExportS3Endpoint != "" {
		raw, err := os.ReadFile(exportKeyFile)
		if err == nil && len(bytes.TrimSpace(raw)) < 16 {
			err = errors.New("at least 16 bytes are needed")
		}
		if err != nil {
			log.Error("--export-key-file", "err", err)
			os.Exit(2)
		}
		o.ExportKey = bytes.TrimSpace(raw)
	}
	if o.ExportPlayersEvery < time.Second {
		log.Error("--export-players-every: must be at least 1s")
		os.Exit(2)
	}
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
	nc, topo, err := waitForNATS(ctx, log, natsURL, copts, o.HealthAddr, bus.TopologyOptions{Partitions: partitions, Replicas: replicas})
	if err != nil {
		return err
	}
	defer func() { _ = nc.Drain() }()
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

// waitForNATS connects and ensures the topology, retrying with backoff until both work
// (NATS not reachable yet, or a fresh cluster still electing its leaders): a dispatcher
// started before NATS waits instead of exiting. Meanwhile /healthz answers ok and /readyz
// 503 with the last error on the health address; the dispatcher's own health server
// takes the address over once NATS answers. A refusal that retrying cannot mend (the
// topology's own checks, such as a lower --stream-replicas) ends the wait.
func waitForNATS(ctx context.Context, log *slog.Logger, url string, copts []nats.Option, healthAddr string, topts bus.TopologyOptions) (*nats.Conn, bus.Topology, error) {
	var last atomic.Value
	last.Store("connecting to NATS")
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for NATS: "+last.Load().(string), http.StatusServiceUnavailable)
	})
	var srv *http.Server
	if ln, err := net.Listen("tcp", healthAddr); err != nil {
		log.Warn("health listener while waiting for NATS", "err", err)
	} else {
		srv = &http.Server{Handler: health, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
	}
	stopHealth := func() {
		if srv != nil {
			_ = srv.Close()
		}
	}
	defer stopHealth()
	// The client keeps reconnecting by itself once connected; a first connection that
	// fails is retried here.
	copts = append(copts, nats.RetryOnFailedConnect(true))
	nc, err := nats.Connect(url, copts...)
	if err != nil {
		return nil, bus.Topology{}, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, bus.Topology{}, err
	}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var topo bus.Topology
		err := errNotConnected
		if nc.IsConnected() {
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			topo, err = bus.EnsureTopology(tctx, js, topts)
			cancel()
			if err == nil {
				return nc, topo, nil
			}
			if errors.Is(err, bus.ErrTopologyRefused) {
				nc.Close()
				return nil, bus.Topology{}, err
			}
		}
		last.Store(err.Error())
		log.Warn("waiting for NATS: the dispatcher starts once it answers", "attempt", attempt, "retryIn", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, bus.Topology{}, ctx.Err()
		case <-time.After(backoff + rand.N(backoff/4)):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

var errNotConnected = errors.New("not connected to NATS")

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
