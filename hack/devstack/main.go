// Command devstack is `make dev`: the whole system locally on embedded defaults
// (internal/devstack). Ctrl-C stops everything; the next run resumes with the same data.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/croupier-crm/croupier/internal/devstack"
)

// routeLogs sends the controllers' log (unless verbose: then the console) and the
// Kubernetes libraries' klog output to the stack's log. The libraries the dispatcher's
// admin API uses (delegated authentication's CA and token reviewers) log through klog, to
// stderr by default, which put their lines between make dev's own.
func routeLogs(logf io.Writer, verbose bool) {
	if verbose {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(logf, nil)))
	}
	klog.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(logf, nil)))
}

func main() {
	o := devstack.Options{Out: os.Stdout, ParentDeath: true}
	flag.StringVar(&o.State, "state", ".croupier", "where the local stack keeps its data")
	verbose := flag.Bool("v", false, "controller logs")
	flag.IntVar(&o.Players, "players", 3000, "players the traffic simulator plays (0: no simulator)")
	flag.Float64Var(&o.Speed, "speed", 60, "how much faster than real time the simulated casino day runs")
	flag.Parse()
	if err := os.MkdirAll(o.State, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "make dev:", err)
		os.Exit(1)
	}
	logf, err := os.OpenFile(filepath.Join(o.State, "stack.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make dev:", err)
		os.Exit(1)
	}
	defer logf.Close()
	o.Log = logf // the dispatcher's JSON log; the manager's too unless -v
	routeLogs(logf, *verbose)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := devstack.Run(ctx, o); err != nil {
		if ctx.Err() != nil {
			// Ctrl-C while starting: what was started is stopped; that is no failure.
			fmt.Fprintln(os.Stderr, "make dev: stopped while starting")
			return
		}
		fmt.Fprintln(os.Stderr, "make dev:", err)
		os.Exit(1)
	}
}
