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
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
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

var dispatcherBin string

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
	build := exec.Command(goBin, "build", "-o", dispatcherBin, "github.com/croupier-crm/croupier/cmd/dispatcher")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the dispatcher:", err)
		return 1
	}
	return m.Run()
}

// stack is an embedded NATS server on a fixed port (so it can be restarted where the
// dispatchers reconnect) and dispatcher processes.
type stack struct {
	tb   testing.TB
	dir  string
	port int
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newStack(tb testing.TB) *stack {
	s := &stack{tb: tb, dir: tb.TempDir(), port: freePort(tb), procs: map[string]*proc{}}
	s.startNATS()
	nc, err := nats.Connect(s.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		tb.Fatal(err)
	}
	s.nc = nc
	if s.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		tb.Fatal(err)
	}
	if _, err := bus.EnsureTopology(context.Background(), s.js, bus.TopologyOptions{Partitions: partitions}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.mu.Lock()
		procs := make([]*proc, 0, len(s.procs))
		for _, p := range s.procs {
			procs = append(procs, p)
		}
		s.mu.Unlock()
		for _, p := range procs {
			s.kill(p)
		}
		nc.Close()
		s.stopNATS()
	})
	return s
}

func (s *stack) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

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

// start runs a dispatcher process named name (its replica name in croupier-leases).
func (s *stack) start(name string) *proc {
	s.tb.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.tb.Fatal(err)
	}
	cmd := exec.Command(dispatcherBin, "--nats-url", s.url(), "--no-kubernetes", "--replica", name,
		"--partitions", fmt.Sprint(partitions), "--lease-ttl", leaseTTL.String(),
		"--api-bind-address", "127.0.0.1:0", "--http-bind-address", "127.0.0.1:0",
		"--delivery-in-flight", fmt.Sprint(inFlight), "--delivery-ack-wait", "5s", "--sweep-interval", "1h")
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
	tb.Helper()
	s := newStack(tb)
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
		PreferencePolicy: &bus.PreferencePolicyConfig{Spec: crmv1.PreferencePolicySpec{DefaultTimeZone: "Asia/Baku", DefaultLanguage: "az", Languages: []string{"az"},
			Categories: []crmv1.CategoryPolicy{
				{Category: crmv1.CategoryService, Channels: webhookOnly},
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

// register publishes n registrations and waits until they are stored.
func (s *stack) register(n int) {
	s.tb.Helper()
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

// waitDistinct waits until the sinks together saw n distinct keys.
func (s *stack) waitDistinct(within time.Duration, n int, sinks ...*sink) {
	s.tb.Helper()
	deadline := time.Now().Add(within)
	for distinctKeys(sinks...) < n {
		if time.Now().After(deadline) {
			s.tb.Fatalf("not within %s: %d distinct deliveries (%d seen)\n%s", within, n, distinctKeys(sinks...), s.diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
