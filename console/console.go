// Package console assembles the web console (cmd/console, and make dev): the API server's
// address and CA, the session keys, the routes and the embedded front end.
package console

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/console/server"
	"github.com/croupier-crm/croupier/console/session"
	"github.com/croupier-crm/croupier/console/web"
)

// Options configure a console.
type Options struct {
	Addr string
	// Kubeconfig gives the API server's address and CA (its user is ignored); empty: the
	// cluster the console runs in. Cluster, when set, is used instead.
	Kubeconfig string
	Cluster    *kube.Cluster
	Brands     []string
	// SessionKeyFile holds the 32-byte key sealing session cookies.
	SessionKeyFile string
	// SessionKey is the key itself (tests); neither: a random one.
	SessionKey              []byte
	TLSCertFile, TLSKeyFile string
	// DispatcherURL is the dispatcher's admin API (https://...), DispatcherCA the file of
	// the CA that signs its certificate; empty URL: no admin reads.
	DispatcherURL, DispatcherCA string
	// GitOpsConfig is the file naming each Git-managed brand's repository (gitops.Config);
	// GitCredentialsDir holds the Secrets it names, one directory each.
	GitOpsConfig, GitCredentialsDir string
	// Git is the setting itself (tests), used instead of GitOpsConfig.
	Git *gitops.Config
}

// New is the console's HTTP handler.
func New(o Options, log *slog.Logger) (http.Handler, error) {
	cl := o.Cluster
	if cl == nil {
		var err error
		if o.Kubeconfig != "" {
			cl, err = kube.FromKubeconfig(o.Kubeconfig)
		} else {
			cl, err = kube.InCluster()
		}
		if err != nil {
			return nil, fmt.Errorf("finding the API server: %w", err)
		}
	}
	key := o.SessionKey
	if o.SessionKeyFile != "" {
		b, err := os.ReadFile(o.SessionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
		key = []byte(strings.TrimSpace(string(b)))
		if len(key) != 32 {
			return nil, fmt.Errorf("session key %s: %d bytes, want 32", o.SessionKeyFile, len(key))
		}
	}
	sm, err := session.NewManager(key, cl.Verify)
	if err != nil {
		return nil, err
	}
	assets, _ := web.Assets()
	s := &server.Server{Cluster: cl, Sessions: sm, Brands: o.Brands, Assets: assets, Log: log}
	if o.DispatcherURL != "" {
		if s.Dispatcher, err = server.NewDispatcher(o.DispatcherURL, o.DispatcherCA); err != nil {
			return nil, err
		}
	}
	gc := o.Git
	if gc == nil && o.GitOpsConfig != "" {
		if gc, err = gitops.LoadConfig(o.GitOpsConfig); err != nil {
			return nil, fmt.Errorf("gitops config: %w", err)
		}
	}
	if gc != nil && len(gc.Repositories) > 0 {
		if err := gc.Check(); err != nil {
			return nil, fmt.Errorf("gitops config: %w", err)
		}
		s.Git = gitops.New(gc, o.GitCredentialsDir)
	}
	return s.Handler(), nil
}
