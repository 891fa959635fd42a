// Command console serves Croupier's web console. It holds no rights of its own: people
// sign in with a Kubernetes bearer token and every call is made with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/croupier-crm/croupier/console"
)

func main() {
	var o console.Options
	var brands string
	flag.StringVar(&o.Addr, "listen", "127.0.0.1:8088", "address to serve on")
	flag.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig whose server and CA are used (its user is not); empty: the cluster the console runs in")
	flag.StringVar(&brands, "brands", "", "comma-separated brand namespaces offered at sign-in")
	flag.StringVar(&o.SessionKeyFile, "session-key-file", "", "32-byte key sealing session cookies (shared by replicas); empty: a random key, sessions end with the process")
	flag.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serving certificate (empty: plain HTTP, for loopback or behind a TLS-terminating proxy)")
	flag.StringVar(&o.TLSKeyFile, "tls-key-file", "", "serving key")
	flag.StringVar(&o.DispatcherURL, "dispatcher-url", "", "the dispatcher's admin API, https://host:port (reports, history, explain read as the person)")
	flag.StringVar(&o.DispatcherCA, "dispatcher-ca", "", "CA file that signs the dispatcher's certificate (empty: the system's)")
	flag.StringVar(&o.GitOpsConfig, "gitops-config", "", "file naming the Git repository each brand's edits are committed to (empty or no repositories: edits are applied with server-side apply)")
	flag.StringVar(&o.GitCredentialsDir, "git-credentials-dir", "", "directory holding the mounted Secret each repository names (username, password or token)")
	flag.Parse()
	for _, b := range strings.Split(brands, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Brands = append(o.Brands, b)
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, o); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, o console.Options) error {
	h, err := console.New(o, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: o.Addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		log.Info("console serving", "addr", o.Addr, "tls", o.TLSCertFile != "")
		if o.TLSCertFile != "" {
			errc <- srv.ListenAndServeTLS(o.TLSCertFile, o.TLSKeyFile)
		} else {
			errc <- srv.ListenAndServe()
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
