package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/croupier-crm/croupier/console"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/internal/people"
)

// startConsole serves the web console on addr until ctx ends. It knows the API server's
// address and CA from cfg and nothing of cfg's credentials.
func startConsole(ctx context.Context, addr string, cfg *rest.Config, dispatcherURL, dispatcherCA string, logTo io.Writer) (<-chan error, error) {
	if logTo == nil {
		logTo = io.Discard
	}
	h, err := console.New(console.Options{Cluster: &kube.Cluster{Host: cfg.Host, CA: cfg.CAData}, Brands: []string{brand},
		DispatcherURL: dispatcherURL, DispatcherCA: dispatcherCA},
		slog.New(slog.NewJSONHandler(logTo, nil)).With("component", "console"))
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			errc <- err
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return errc, nil
}

// writeTokens keeps the sample people's tokens in dir (one file a person, 0600).
func writeTokens(dir string, tokens map[string]string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, r := range people.Roles {
		if err := os.WriteFile(filepath.Join(dir, r.Person), []byte(tokens[r.Person]+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}
