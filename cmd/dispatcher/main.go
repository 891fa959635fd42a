// Command dispatcher owns the NATS topology and, as the later parts land, routes and
// delivers messages. With no --nats-url it embeds a NATS server with JetStream file storage
// under --data-dir: the default for one machine and for tests.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

func main() {
	var (
		natsURL, natsCreds, natsCA, dataDir, listen, httpAddr string
		partitions, replicas                                  int
	)
	flag.StringVar(&natsURL, "nats-url", "", "NATS server URL(s); empty embeds a server")
	flag.StringVar(&natsCreds, "nats-creds", "", "NATS credentials file (JWT + nkey)")
	flag.StringVar(&natsCA, "nats-ca", "", "CA file that signs the NATS servers' certificates")
	flag.StringVar(&dataDir, "data-dir", ".croupier/nats", "JetStream storage of the embedded server")
	flag.StringVar(&listen, "nats-listen", "127.0.0.1:4222", "client address of the embedded server")
	flag.StringVar(&httpAddr, "http-bind-address", ":8090", "address of /healthz and /readyz")
	flag.IntVar(&partitions, "partitions", bus.DefaultPartitions, "partitions of a new EVENTS stream")
	flag.IntVar(&replicas, "replicas", 1, "replicas of streams and buckets (3 on a cluster)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, natsURL, natsCreds, natsCA, dataDir, listen, httpAddr, partitions, replicas); err != nil {
		log.Error("dispatcher stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, natsURL, creds, ca, dataDir, listen, httpAddr string, partitions, replicas int) error {
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
	nc, err := nats.Connect(natsURL, bus.ClientOptions("croupier-dispatcher", creds, ca)...)
	if err != nil {
		return err
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: partitions, Replicas: replicas})
	if err != nil {
		return err
	}
	log.Info("NATS topology ensured", "partitions", topo.Partitions)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := bus.CheckTopology(r.Context(), js); err != nil || !nc.IsConnected() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	hs := &http.Server{Addr: httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health endpoint", "err", err)
			stop()
		}
	}()
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
