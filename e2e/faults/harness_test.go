// Package faults proves the dispatcher keeps its promises under faults: the real
// dispatcher binary, run as processes that are SIGKILLed, over an embedded NATS JetStream
// server that is restarted, sending through webhook providers on loopback that go down.
// Every test prints a "reliability:" line that `make reliability` gathers into
// docs/reliability.md.
package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/freeport"
)

const (
	brand      = "baku"
	partitions = 8
	// inFlight is each dispatcher's delivery in-flight limit (--delivery-in-flight).
	inFlight = 64
	leaseTTL = 2 * time.Second
	// messageCostMicros is every webhook provider's cost per message (0.01 AZN).
	messageCostMicros = 10000
)

var dispatcherBin, natsServerBin string

// batch is each dispatcher's --batch: the most events a partition owner holds decided but
// unacknowledged, part of the duplicate bound.
const batch = 200

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "croupier-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	dispatcherBin = filepath.Join(dir, "dispatcher")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	natsServerBin = filepath.Join(dir, "nats-server")
	// The dispatcher, and a nats-server from the module the project uses for the cluster.
	for bin, pkg := range map[string]string{dispatcherBin: "github.com/croupier-crm/croupier/cmd/dispatcher", natsServerBin: "github.com/nats-io/nats-server/v2"} {
		build := exec.Command(goBin, "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			return 1
		}
	}
	return m.Run()
}

// stack is NATS, either an embedded server on a fixed port (so it can be restarted where
// the dispatchers reconnect) or a three-node JetStream cluster of nats-server processes on
// loopback (R3 streams), and dispatcher processes.
type stack struct {
	tb      testing.TB
	dir     string
	cluster bool
	port    int
	srv     *server.Server
	nodes   []*node
	nc      *nats.Conn
	js      jetstream.JetStream

	mu    sync.Mutex
	procs map[string]*proc
	// players is how many players register registered (deposit i is player i%players's).
	players int
	// retryFor, when set, is the service category's retryFor in configure's policy.
	retryFor time.Duration
}

// node is one nats-server process of the cluster.
type node struct {
	name, conf string
	port       int
	cmd        *exec.Cmd
	done       chan struct{}
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(tb testing.TB) int { return freeport.Port(tb) }

// natsKinds are the NATS set-ups a fault test runs on: CROUPIER_FAULTS_NATS is single,
// cluster or both; unset, a test runs on the single server, and also on the cluster when
// it is one make test keeps (clusterToo).
func natsKinds(clusterToo bool) []string {
	switch os.Getenv("CROUPIER_FAULTS_NATS") {
	case "single":
		return []string{"single"}
	case "cluster":
		return []string{"cluster"}
	case "both":
		return []string{"single", "cluster"}
	}
	if clusterToo {
		return []string{"single", "cluster"}
	}
	return []string{"single"}
}

// onEachNATS runs f as a subtest per NATS set-up.
func onEachNATS(t *testing.T, clusterToo bool, f func(t *testing.T, cluster bool)) {
	for _, k := range natsKinds(clusterToo) {
		t.Run(k, func(t *testing.T) { f(t, k == "cluster") })
	}
}

// quick is a make test run (CROUPIER_FAULTS_NATS unset): the longest scenarios use fewer
// events there; make reliability runs them whole.
func quick() bool { return os.Getenv("CROUPIER_FAULTS_NATS") == "" }

// scaled is n times CROUPIER_FAULTS_SCALE (default 1), for runs on a loaded machine.
func scaled(n int) int {
	f, err := strconv.ParseFloat(os.Getenv("CROUPIER_FAULTS_SCALE"), 64)
	if err != nil || f <= 0 {
		return n
	}
	return max(1, int(float64(n)*f))
}

func newStack(tb testing.TB) *stack { return newStackOn(tb, false) }

func newStackOn(tb testing.TB, cluster bool) *stack {
	s := bareStack(tb, cluster)
	s.up()
	return s
}

// bareStack is a stack whose NATS has not started yet (up starts it); its cleanup ends
// every process it starts.
func bareStack(tb testing.TB, cluster bool) *stack {
	s := &stack{tb: tb, dir: tb.TempDir(), cluster: cluster, procs: map[string]*proc{}}
	// Registered before anything starts, so a failed start leaves no process behind.
	tb.Cleanup(func() {
		// CROUPIER_FAULTS_LOGS keeps every process's log for a look after the run.
		if keep := os.Getenv("CROUPIER_FAULTS_LOGS"); keep != "" {
			files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
			dst := filepath.Join(keep, strings.NewReplacer("/", "_").Replace(tb.Name()))
			_ = os.MkdirAll(dst, 0o755)
			for _, f := range files {
				if raw, err := os.ReadFile(f); err == nil {
					_ = os.WriteFile(filepath.Join(dst, filepath.Base(f)), raw, 0o644)
				}
			}
		}
		s.mu.Lock()
		procs := make([]*proc, 0, len(s.procs))
		for _, p := range s.procs {
			procs = append(procs, p)
		}
		s.mu.Unlock()
		for _, p := range procs {
			s.kill(p)
		}
		if s.nc != nil {
			s.nc.Close()
		}
		s.stopNATS()
		for i := range s.nodes {
			s.killNode(i)
		}
		// A failed run keeps the NATS store (EVENTS, OUTCOMES, the buckets) beside the
		// logs, so a loss can be traced after the run (nats-server or a test reading it).
		if keep := os.Getenv("CROUPIER_FAULTS_LOGS"); keep != "" && tb.Failed() {
			dst := filepath.Join(keep, strings.NewReplacer("/", "_").Replace(tb.Name()), "store")
			if err := os.CopyFS(dst, os.DirFS(s.dir)); err != nil {
				tb.Logf("keeping the NATS store of the failed run: %v", err)
			} else {
				tb.Logf("the NATS store and logs of the failed run are kept in %s", dst)
			}
		}
	})
	if !cluster {
		s.port = freePort(tb)
	}
	return s
}

// up starts NATS (the single server or the cluster), connects and ensures the topology.
func (s *stack) up() {
	tb, cluster := s.tb, s.cluster
	if cluster {
		s.startCluster()
	} else {
		s.startNATS()
	}
	nc, err := nats.Connect(s.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		tb.Fatal(err)
	}
	s.nc = nc
	if s.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		tb.Fatal(err)
	}
	if cluster {
		s.waitJetStream()
	}
	// Stream replicas left to the default: what the server offers (3 on the cluster).
	topo, err := bus.EnsureTopology(context.Background(), s.js, bus.TopologyOptions{Partitions: partitions})
	if err != nil {
		tb.Fatal(err)
	}
	if want := map[bool]int{false: 1, true: 3}[cluster]; topo.Replicas != want {
		tb.Fatalf("streams made with %d replicas, want %d", topo.Replicas, want)
	}
}

func (s *stack) url() string {
	if !s.cluster {
		return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	}
	urls := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.port)
	}
	return strings.Join(urls, ",")
}

func (s *stack) startNATS() {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: filepath.Join(s.dir, "nats"), Port: s.port})
	if err != nil {
		s.tb.Fatal(err)
	}
	s.srv = srv
}

func (s *stack) stopNATS() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// startCluster writes three nodes' configurations and starts them. A port taken between
// freePort and the node's listen (other test processes run on the machine) starts the
// cluster again on other ports, up to three times; any other failure ends the test with
// the node's log.
func (s *stack) startCluster() {
	for attempt := 1; ; attempt++ {
		err := s.tryCluster()
		if err == nil {
			return
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			s.tb.Fatal(err)
		}
		s.tb.Logf("starting the cluster: %v; again on other ports", err)
	}
}

var errPortTaken = errors.New("a port was taken by another process")

func (s *stack) tryCluster() error {
	const n = 3
	s.nodes = nil
	cports := make([]int, n)
	for i := range n {
		s.nodes = append(s.nodes, &node{name: fmt.Sprintf("n%d", i+1), port: freePort(s.tb)})
		cports[i] = freePort(s.tb)
	}
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i, nd := range s.nodes {
		nd.conf = filepath.Join(s.dir, nd.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
max_payload: 1MB
jetstream { store_dir: %q }
cluster { name: croupier, listen: 127.0.0.1:%d, routes: [%s] }
`, nd.name, nd.port, filepath.Join(s.dir, nd.name), cports[i], strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			s.tb.Fatal(err)
		}
	}
	for i := range s.nodes {
		if err := s.launch(i); err != nil {
			for _, nd := range s.nodes[:i+1] {
				if nd.cmd != nil && nd.cmd.Process != nil {
					_ = nd.cmd.Process.Kill()
					<-nd.done
				}
			}
			return err
		}
	}
	return nil
}

// startNode starts node i (again) on its storage and waits until it accepts clients.
func (s *stack) startNode(i int) {
	if err := s.launch(i); err != nil {
		s.tb.Fatal(err)
	}
}

// launch starts node i and waits until it accepts clients or exits (an error with the
// end of its log; errPortTaken when its address was in use).
func (s *stack) launch(i int) error {
	nd := s.nodes[i]
	logPath := filepath.Join(s.dir, nd.name+".nats.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.tb.Fatal(err)
	}
	nd.cmd = exec.Command(natsServerBin, "-c", nd.conf)
	nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
	if err := nd.cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	nd.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); logf.Close(); close(done) }(nd.cmd, nd.done)
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", nd.port))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-nd.done:
			b, _ := os.ReadFile(logPath)
			tail := string(b[max(0, len(b)-2000):])
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("nats node %s exited: %w:\n%s", nd.name, errPortTaken, tail)
			}
			return fmt.Errorf("nats node %s exited before accepting connections:\n%s", nd.name, tail)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats node %s does not accept connections: %v", nd.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killNode SIGKILLs node i and waits for it to be gone.
func (s *stack) killNode(i int) {
	nd := s.nodes[i]
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	_ = nd.cmd.Process.Kill()
	<-nd.done
	nd.cmd = nil
}

// waitJetStream waits until the cluster has a JetStream meta leader; when it has none
// after two minutes it fails with the end of each node's log.
func (s *stack) waitJetStream() {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, nd := range s.nodes {
				raw, _ := os.ReadFile(filepath.Join(s.dir, nd.name+".nats.log"))
				lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
				state := "running"
				select {
				case <-nd.done:
					state = "exited"
				default:
				}
				fmt.Fprintf(&b, "--- %s (%s):\n%s\n", nd.name, state, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
			s.tb.Fatalf("no JetStream meta leader on the cluster within 2 minutes (%v):\n%s", err, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderOf is the server name leading a stream ("" when unknown).
func (s *stack) leaderOf(stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// gatherLeaders moves the leadership of the KV buckets' streams to the server leading
// EVENTS, so one kill takes the leader of all of them, and returns that node's index.
func (s *stack) gatherLeaders() (int, []string) {
	s.tb.Helper()
	leader := ""
	bustest.Eventually(s.tb, time.Minute, "a leader of EVENTS", func() bool { leader = s.leaderOf(bus.StreamEvents); return leader != "" })
	var led []string
	for _, stream := range []string{"KV_" + bus.BucketState, "KV_" + bus.BucketPlayers, "KV_" + bus.BucketLeases} {
		for range 10 {
			if s.leaderOf(stream) == leader {
				led = append(led, stream)
				break
			}
			req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, leader)
			_, _ = s.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), 5*time.Second)
			time.Sleep(500 * time.Millisecond)
		}
	}
	for i, nd := range s.nodes {
		if nd.name == leader {
			return i, append([]string{bus.StreamEvents}, led...)
		}
	}
	s.tb.Fatalf("leader %q is none of the nodes", leader)
	return 0, nil
}

// start runs a dispatcher process named name (its replica name in croupier-leases).
func (s *stack) start(name string) *proc { return s.startWith(name) }

// startWith starts a dispatcher with more flags (a flag given twice takes the last value).
func (s *stack) startWith(name string, flags ...string) *proc {
	s.tb.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.tb.Fatal(err)
	}
	// The data keys are wrapped with a key-encryption key from a file, as where the
	// dispatcher runs without Kubernetes.
	wrap := filepath.Join(s.dir, "data-key-wrap")
	if _, err := os.Stat(wrap); err != nil {
		if err := os.WriteFile(wrap, []byte("c3RhY2std3JhcC1rZXktZm9yLXRoZS1mYXVsdC1zdWk=\n"), 0o600); err != nil {
			s.tb.Fatal(err)
		}
	}
	cmd := exec.Command(dispatcherBin, "--nats-url", s.url(), "--no-kubernetes", "--replica-name", name, "--data-key-wrap-file", wrap,
		"--partitions", fmt.Sprint(partitions), "--lease-ttl", leaseTTL.String(), "--batch", fmt.Sprint(batch), "--stall-timeout", "5s",
		"--api-bind-address", "127.0.0.1:0", "--http-bind-address", "127.0.0.1:0",
		"--delivery-in-flight", fmt.Sprint(inFlight), "--delivery-ack-wait", "5s", "--sweep-interval", "1h")
	cmd.Args = append(cmd.Args, flags...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	return p
}

// kill SIGKILLs the process and waits for it to be gone.
func (s *stack) kill(p *proc) {
	_ = p.cmd.Process.Kill()
	<-p.done
	s.mu.Lock()
	if s.procs[p.name] == p {
		delete(s.procs, p.name)
	}
	s.mu.Unlock()
}

// logs are every dispatcher's output so far.
func (s *stack) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		b.Write(raw)
	}
	return b.String()
}

// owners reads croupier-leases: partition -> owner of an unexpired lease.
func (s *stack) owners() map[int]string {
	ctx := context.Background()
	kv, err := s.js.KeyValue(ctx, bus.BucketLeases)
	if err != nil {
		return nil
	}
	out := map[int]string{}
	now := time.Now()
	for p := range partitions {
		e, err := kv.Get(ctx, bus.LeaseKey(p))
		if err != nil {
			continue
		}
		var l bus.Lease
		if json.Unmarshal(e.Value(), &l) == nil && l.Owner != "" && l.Expires.After(now) {
			out[p] = l.Owner
		}
	}
	return out
}

// waitOwned waits until every partition is held by one of names.
func (s *stack) waitOwned(within time.Duration, names ...string) time.Duration {
	s.tb.Helper()
	start := time.Now()
	ok := map[string]bool{}
	for _, n := range names {
		ok[n] = true
	}
	bustest.Eventually(s.tb, within, fmt.Sprintf("every partition held by %v", names), func() bool {
		o := s.owners()
		for p := range partitions {
			if !ok[o[p]] {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// receiptsOn starts one dispatcher, d1, on a stack whose webhook sink gets a receipt for
// every deposit of players registered players, and returns the deposits 0..n-1.
func receiptsOn(tb testing.TB, players, n int) (*stack, *sink, []event) {
	return receiptsOnNATS(tb, false, players, n)
}

func receiptsOnNATS(tb testing.TB, cluster bool, players, n int) (*stack, *sink, []event) {
	tb.Helper()
	s := newStackOn(tb, cluster)
	hook := newSink(tb)
	s.configure([]string{hook.endpoint()}, receipts())
	s.register(players)
	s.start("d1")
	s.waitOwned(30*time.Second, "d1")
	evs := make([]event, n)
	for i := range n {
		evs[i] = deposit(i, players)
	}
	return s, hook, evs
}

// configure publishes the brand's PreferencePolicy, a webhook ChannelPolicy over the
// given provider endpoints (failover in order) and the Campaigns.
func (s *stack) configure(endpoints []string, campaigns ...bus.ConfigRecord) {
	s.tb.Helper()
	ctx := context.Background()
	kv, err := s.js.KeyValue(ctx, bus.BucketConfig)
	if err != nil {
		s.tb.Fatal(err)
	}
	put := func(kind, name string, r bus.ConfigRecord) {
		b, err := bus.Encode(r)
		if err != nil {
			s.tb.Fatal(err)
		}
		if _, err := kv.Put(ctx, bus.ConfigKey(brand, kind, name), b); err != nil {
			s.tb.Fatal(err)
		}
	}
	webhookOnly := []crmv1.CategoryChannel{{Channel: crmv1.ChannelWebhook, Default: crmv1.OptedIn}}
	put(bus.KindPreferencePolicy, "baku-casino", bus.ConfigRecord{Kind: "PreferencePolicy", Brand: brand, Name: "baku-casino", UID: "pp-baku", Generation: 1,
		// A dedup window of a millisecond: every thank-you is the same offer, and the
		// frequency cap, not the dedup, is what the tests hold under faults.
		PreferencePolicy: &bus.PreferencePolicyConfig{Spec: crmv1.PreferencePolicySpec{DefaultTimeZone: "Asia/Baku", DefaultLanguage: "az", Languages: []string{"az"},
			DedupWindow: &metav1.Duration{Duration: time.Millisecond},
			Categories: []crmv1.CategoryPolicy{
				{Category: crmv1.CategoryService, Channels: webhookOnly, RetryFor: retryFor(s.retryFor)},
				{Category: crmv1.CategoryMarketing, Channels: webhookOnly, FrequencyCaps: []crmv1.FrequencyCap{{Max: 2, Window: &metav1.Duration{Duration: 24 * time.Hour}}}},
			}}, Mandatory: map[crmv1.Category]bool{crmv1.CategoryService: true}}})
	var providers []crmv1.Provider
	costs := map[string]bus.MicroAmount{}
	for i, e := range endpoints {
		name := fmt.Sprintf("hook-%d", i)
		providers = append(providers, crmv1.Provider{Name: name, Type: crmv1.ProviderWebhook, Endpoint: e,
			Cost: &crmv1.Money{Amount: "0.01", Currency: "AZN"}, Timeout: &metav1.Duration{Duration: 2 * time.Second}})
		costs[name] = bus.MicroAmount{Micros: messageCostMicros, Currency: "AZN"}
	}
	put(bus.KindChannelPolicy, "webhook", bus.ConfigRecord{Kind: "ChannelPolicy", Brand: brand, Name: "webhook", UID: "cp-webhook", Generation: 1,
		ChannelPolicy: &bus.ChannelPolicyConfig{ProviderCosts: costs, Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook, Providers: providers,
			Retry: &crmv1.RetryPolicy{MaxAttempts: 2, InitialBackoff: &metav1.Duration{Duration: 50 * time.Millisecond}, MaxBackoff: &metav1.Duration{Duration: 200 * time.Millisecond}}}}})
	for _, c := range campaigns {
		put(bus.KindCampaign, c.Name, c)
	}
}

// thanks is a marketing Campaign that thanks for every deposit, within the frequency cap
// (2 a day) and a total budget of totalMinor (AZN cents) at 0.01 AZN a message.
func thanks(totalMinor int64) bus.ConfigRecord {
	return bus.ConfigRecord{Kind: "Campaign", Brand: brand, Name: "deposit-thanks", UID: "uid-thanks", Generation: 1,
		Campaign: &bus.CampaignConfig{BudgetTotal: &bus.MinorAmount{Minor: totalMinor, Currency: "AZN"}, Spec: crmv1.CampaignSpec{Category: crmv1.CategoryMarketing,
			Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Budget:  &crmv1.Budget{Total: &crmv1.Money{Amount: fmt.Sprintf("%d.%02d", totalMinor/100, totalMinor%100), Currency: "AZN"}},
			Steps:   []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "thanks"}}},
			Contents: []crmv1.Content{{Name: "thanks", Messages: []crmv1.Message{{Channel: crmv1.ChannelWebhook, Locale: "az",
				Body: "{{ .Event.depositId }}: təşəkkür edirik!"}}}}}}}
}

// receipts is a service Campaign that posts a receipt on every deposit.completed.
func receipts() bus.ConfigRecord {
	return bus.ConfigRecord{Kind: "Campaign", Brand: brand, Name: "deposit-receipt", UID: "uid-receipt", Generation: 1,
		Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{Category: crmv1.CategoryService,
			Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Steps:   []crmv1.Step{{Name: "send", Send: &crmv1.SendStep{Content: "receipt"}}},
			Contents: []crmv1.Content{{Name: "receipt", Messages: []crmv1.Message{{Channel: crmv1.ChannelWebhook, Locale: "az",
				Body: "{{ .Event.depositId }}: {{ .Event.amount }} {{ .Event.currency }} depozit qəbul edildi."}}}}}}}
}

func player(i int) string { return fmt.Sprintf("p-%06d", i) }

func retryFor(d time.Duration) *metav1.Duration {
	if d == 0 {
		return nil
	}
	return &metav1.Duration{Duration: d}
}

// register publishes n registrations and waits until they are stored.
func (s *stack) register(n int) {
	s.tb.Helper()
	s.players = n
	evs := make([]event, n)
	for i := range n {
		evs[i] = event{subject: bus.EventSubject(brand, player(i), "player.registered"), id: fmt.Sprintf("reg-%d", i),
			body: fmt.Appendf(nil, `{"specversion":"1.0","id":"reg-%d","source":"pam.baku","type":"player.registered","subject":%q,"time":"2026-11-22T10:00:00Z","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","kycStatus":"passed","ageVerified":true}}`, i, player(i))}
	}
	s.publish(evs)
}

type event struct {
	subject, id string
	body        []byte
}

// deposit i of player i%players; its receipt's body starts with "d-<i>:".
func deposit(i, players int) event {
	p := player(i % players)
	id := fmt.Sprintf("d-%d", i)
	return event{subject: bus.EventSubject(brand, p, "deposit.completed"), id: id,
		body: fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"pam.baku","type":"deposit.completed","subject":%q,"time":"2026-11-22T10:00:00Z","data":{"amount":"%d.00","currency":"AZN","method":"card","depositId":%q}}`, id, p, 10+i%90, id)}
}

// publish stores every event in EVENTS with its id as the message id, publishing again
// what a server restart refused until every one is acknowledged.
func (s *stack) publish(evs []event) {
	s.tb.Helper()
	const window = 2000
	for start := 0; start < len(evs); start += window {
		todo := evs[start:min(start+window, len(evs))]
		for attempt := 0; len(todo) > 0; attempt++ {
			if attempt > 600 {
				s.tb.Fatalf("%d events not stored after %d attempts", len(todo), attempt)
			}
			futures := make([]jetstream.PubAckFuture, len(todo))
			var failed []event
			for i, e := range todo {
				f, err := s.js.PublishAsync(e.subject, e.body, jetstream.WithMsgID(e.id), jetstream.WithStallWait(10*time.Second))
				if err != nil {
					failed = append(failed, e)
					continue
				}
				futures[i] = f
			}
			for i, f := range futures {
				if f == nil {
					continue
				}
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, todo[i])
				case <-time.After(10 * time.Second):
					failed = append(failed, todo[i])
				}
			}
			if len(failed) > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			todo = failed
		}
	}
}

// sink is a webhook endpoint on loopback: it counts the posts by Idempotency-Key and can
// be taken down (its port refuses connections) and brought back on the same port.
type sink struct {
	tb   testing.TB
	addr string

	mu       sync.Mutex
	srv      *http.Server
	byKey    map[string]int
	first    map[string]time.Time
	posts    int
	mismatch int
	players  map[string]int
	campaign map[string]string
	up       atomic.Bool
}

func newSink(tb testing.TB) *sink {
	k := &sink{tb: tb, addr: fmt.Sprintf("127.0.0.1:%d", freePort(tb)), byKey: map[string]int{}, first: map[string]time.Time{}, players: map[string]int{}, campaign: map[string]string{}}
	k.start()
	tb.Cleanup(k.stop)
	return k
}

func (k *sink) endpoint() string { return "http://" + k.addr + "/hook" }

func (k *sink) start() {
	k.tb.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a stop
		if l, err = net.Listen("tcp", k.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		k.tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(k.serve), ReadHeaderTimeout: 5 * time.Second}
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
	k.up.Store(true)
	go func() { _ = srv.Serve(l) }()
}

// stop closes the listener and every connection: the provider is down.
func (k *sink) stop() {
	k.up.Store(false)
	k.mu.Lock()
	srv := k.srv
	k.srv = nil
	k.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (k *sink) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var b webhook.Body
	if err != nil || json.Unmarshal(raw, &b) != nil || b.DecisionID == "" {
		http.Error(w, "not a webhook body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(webhook.IdempotencyKeyHeader)
	k.mu.Lock()
	k.posts++
	if key != b.DecisionID+"."+string(crmv1.ChannelWebhook) {
		k.mismatch++
	}
	if k.byKey[key] == 0 {
		k.first[key] = time.Now()
		k.players[b.Campaign+"/"+b.Player]++
		k.campaign[key] = b.Campaign
	}
	k.byKey[key]++
	k.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// counts returns the posts, the distinct idempotency keys and the posts whose key was not
// their decision id.
func (k *sink) counts() (posts, distinct, mismatch int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.posts, len(k.byKey), k.mismatch
}

// duplicates are the posts beyond the first of each key.
func (k *sink) duplicates() int {
	p, d, _ := k.counts()
	return p - d
}

// waitDistinct waits until the sinks together saw n distinct keys. It fails when no new
// key arrived for 60 s (a stall), however long the whole takes on a slow machine.
func (s *stack) waitDistinct(n int, sinks ...*sink) {
	s.tb.Helper()
	const quiet = 60 * time.Second
	last, since := -1, time.Now()
	for {
		got := distinctKeys(sinks...)
		if got >= n {
			return
		}
		if got != last {
			last, since = got, time.Now()
		}
		if time.Since(since) > quiet {
			s.tb.Fatalf("no new delivery for %s: %d of %d distinct deliveries\n%s", quiet, got, n, s.diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stallWatch polls every partition's consumers on the server and keeps the longest time a
// partition had work pending without any of its acknowledged floors moving.
type stallWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	longest time.Duration
	which   string
	from    time.Time // when the longest stall began, to find it in the logs
}

func (s *stack) watchStalls() *stallWatch {
	w := &stallWatch{stop: make(chan struct{}), done: make(chan struct{})}
	type seen struct {
		floor   uint64
		moved   time.Time
		pending bool
	}
	state := map[string]*seen{}
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			// A partition progresses while any of its consumers with work pending moves
			// its floor; its idle time is the smallest among them.
			for p := range partitions {
				idle, which, from := time.Duration(-1), "", time.Time{}
				for _, src := range []struct{ stream, prefix string }{{bus.StreamEvents, "events"}, {bus.StreamIntents, "intents"}, {bus.StreamOutcomes, "outcomes"}} {
					name := src.prefix + "-" + strconv.Itoa(p)
					st := state[name]
					if st == nil {
						st = &seen{moved: now}
						state[name] = st
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					c, err := s.js.Consumer(ctx, src.stream, name)
					cancel()
					if err == nil {
						info := c.CachedInfo()
						st.pending = info.NumPending+uint64(info.NumAckPending) > 0
						if !st.pending || info.AckFloor.Stream != st.floor {
							st.floor, st.moved = info.AckFloor.Stream, now
						}
					}
					// Unknown now (a node down, the consumer being made again): the time
					// keeps counting from the last progress seen.
					if st.pending && (idle < 0 || now.Sub(st.moved) < idle) {
						idle, which, from = now.Sub(st.moved), name, st.moved
					}
				}
				if idle > w.get() {
					w.mu.Lock()
					w.longest, w.which, w.from = idle, fmt.Sprintf("partition %d (%s)", p, which), from
					w.mu.Unlock()
				}
			}
		}
	}()
	s.tb.Cleanup(w.end)
	return w
}

func (w *stallWatch) get() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.longest
}

func (w *stallWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// maxStall is the bar: no partition with pending work may go without progress this long.
const maxStall = 15 * time.Second

// check ends the watch and fails the test when a partition stalled past the bar; it
// returns the longest stall for the report.
func (w *stallWatch) check(tb testing.TB) time.Duration {
	tb.Helper()
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	tb.Logf("longest stall: %s on %s, from %s", w.longest.Round(100*time.Millisecond), w.which, w.from.UTC().Format("15:04:05.000"))
	if w.longest >= maxStall {
		tb.Errorf("%s had work pending and made no progress for %s (bar %s)", w.which, w.longest.Round(100*time.Millisecond), maxStall)
	}
	return w.longest.Round(100 * time.Millisecond)
}

// diagnose describes the streams, the consumers and the end of the logs.
func (s *stack) diagnose() string {
	ctx := context.Background()
	var b strings.Builder
	for _, name := range []string{bus.StreamEvents, bus.StreamIntents, bus.StreamDeliveries, bus.StreamOutcomes} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %d messages\n", name, st.CachedInfo().State.Msgs)
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for ci := range st.ListConsumers(lctx).Info() {
			fmt.Fprintf(&b, "  %s: pending %d, ack pending %d, redelivered %d, waiting %d\n", ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		}
		cancel()
	}
	logs := strings.Split(strings.TrimSpace(s.logs()), "\n")
	fmt.Fprintf(&b, "last log lines:\n%s", strings.Join(logs[max(0, len(logs)-40):], "\n"))
	return b.String()
}

func distinctKeys(sinks ...*sink) int {
	keys := map[string]bool{}
	for _, k := range sinks {
		k.mu.Lock()
		for key := range k.byKey {
			keys[key] = true
		}
		k.mu.Unlock()
	}
	return len(keys)
}

// perCampaign returns the distinct keys of a campaign and the most any one player got.
func (k *sink) perCampaign(name string) (distinct, most int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.campaign {
		if c == name {
			distinct++
		}
	}
	for pk, n := range k.players {
		if strings.HasPrefix(pk, name+"/") {
			most = max(most, n)
		}
	}
	return distinct, most
}

// keys returns the distinct keys seen.
func (k *sink) keys() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]int, len(k.byKey))
	for key, n := range k.byKey {
		out[key] = n
	}
	return out
}

// noContact fails when the dispatchers' logs hold a player's contact or a message body.
func noContact(tb testing.TB, logs string, forbidden ...string) {
	tb.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, f := range forbidden {
			if strings.Contains(sc.Text(), f) {
				tb.Errorf("a dispatcher log line holds %q: %s", f, sc.Text())
			}
		}
	}
}

// trace says, for each deposit index, what the streams hold of it: the stored event, a
// delivery job still waiting, and every outcome recorded under its decision id.
func (s *stack) trace(deposits []int) string {
	var b strings.Builder
	for _, i := range deposits {
		p := player(i % max(s.players, 1))
		part := bus.Partition(p, partitions)
		decision := route.DecisionID(fmt.Sprintf("uid-receipt/pam.baku/d-%d/send", i))
		fmt.Fprintf(&b, "deposit d-%d (player %s, partition %d, decision %s):\n", i, p, part, decision)
		stored := 0
		s.scan(bus.StreamEvents, bus.StoredEventSubject(brand, part, p, "deposit.completed"), func(m jetstream.Msg, meta *jetstream.MsgMetadata) {
			if m.Headers().Get(jetstream.MsgIDHeader) == fmt.Sprintf("d-%d", i) {
				stored++
				fmt.Fprintf(&b, "  EVENTS seq %d at %s\n", meta.Sequence.Stream, meta.Timestamp.Format(time.TimeOnly+".000"))
			}
		})
		if stored == 0 {
			b.WriteString("  not in EVENTS\n")
		}
		s.scan(bus.StreamDeliveries, bus.DeliverySubject(string(crmv1.ChannelWebhook), brand, part, p), func(m jetstream.Msg, meta *jetstream.MsgMetadata) {
			if strings.HasPrefix(m.Headers().Get(jetstream.MsgIDHeader), decision) {
				fmt.Fprintf(&b, "  DELIVERIES seq %d still stored (%s)\n", meta.Sequence.Stream, m.Headers().Get(jetstream.MsgIDHeader))
			}
		})
		outcomes := 0
		s.scan(bus.StreamOutcomes, bus.OutcomeSubject(brand, part, p), func(m jetstream.Msg, meta *jetstream.MsgMetadata) {
			var o bus.Outcome
			if json.Unmarshal(m.Data(), &o) != nil || o.DecisionID != decision {
				return
			}
			outcomes++
			fmt.Fprintf(&b, "  OUTCOMES seq %d at %s: %s %s %s %s\n", meta.Sequence.Stream, meta.Timestamp.Format(time.TimeOnly+".000"), o.Kind, o.Result, o.Reason, o.Detail)
		})
		if outcomes == 0 {
			b.WriteString("  no outcome\n")
		}
	}
	return b.String()
}

// scan reads every message of a stream under a subject with an ordered consumer.
func (s *stack) scan(stream, subject string, f func(jetstream.Msg, *jetstream.MsgMetadata)) {
	// Batches, not a pull per message: tens of thousands of outcomes on a loaded cluster
	// took longer than any fixed bound one round trip at a time. The bound is progress:
	// a batch that brings nothing within 20 s ends the scan (logged).
	// subject "" reads the whole stream: a single wildcard filter travels in the consumer
	// create request's subject, which a cluster answered with "no responders".
	ctx := context.Background()
	cfg := jetstream.OrderedConsumerConfig{}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	c, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		s.tb.Logf("scan %s %s: %v", stream, subject, err)
		return
	}
	info, err := c.Info(ctx)
	if err != nil {
		s.tb.Logf("scan %s %s: %v", stream, subject, err)
		return
	}
	for left := int(info.NumPending); left > 0; {
		batch, err := c.Fetch(min(left, 500), jetstream.FetchMaxWait(20*time.Second))
		if err != nil {
			s.tb.Logf("scan %s %s: %v", stream, subject, err)
			return
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			f(m, meta)
		}
		if n == 0 {
			s.tb.Logf("scan %s %s: nothing within 20 s, %d left: %v", stream, subject, left, batch.Error())
			return
		}
		left -= n
	}
}
