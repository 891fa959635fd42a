// Command kubectl-croupier is the kubectl plugin for Croupier: `kubectl croupier status`,
// `preview`, `test-send`, `explain`, `history`, `pause` and `resume`, with kubectl's
// kubeconfig flags. Calls to the dispatcher's admin API carry the user's own Kubernetes
// identity, so the user's RBAC decides.
package main

import (
	"os"

	"github.com/croupier-crm/croupier/internal/cli"
)

func main() {
	if err := cli.NewCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		os.Exit(1)
	}
}
