// Package testenv starts the test API server (envtest: kube-apiserver and etcd built by
// hack/build-envtest.sh) for the test suites that need one.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// K8sVersion is the version of the binaries hack/build-envtest.sh builds.
const K8sVersion = "1.36.3"

// Start starts the API server from KUBEBUILDER_ASSETS (by default the cache that
// hack/build-envtest.sh fills), with Croupier's CRDs installed when crds is true. The
// caller stops it with env.Stop; env.Config is its client configuration.
func Start(crds bool) (*envtest.Environment, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		home, _ := os.UserHomeDir()
		os.Setenv("KUBEBUILDER_ASSETS", filepath.Join(home, ".cache", "croupier", "k8s-"+K8sVersion))
	}
	env := &envtest.Environment{}
	if crds {
		_, file, _, _ := runtime.Caller(0)
		env.CRDDirectoryPaths = []string{filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")}
		env.ErrorIfCRDPathMissing = true
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting the test API server (run hack/build-envtest.sh first): %w", err)
	}
	return env, nil
}
