package channel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWorker publishes n webhook jobs, then starts one worker with inFlight sends at once
// against a loopback provider that answers after latency; it returns when all are sent.
func benchWorker(b *testing.B, n, inFlight int, latency time.Duration, limit int32, onRequest func(time.Time)) (elapsed, cpu time.Duration) {
	var js jetstream.JetStream
	if onRequest != nil {
		srv := bustest.Start(b, 16)
		_, js = srv.Connect(b)
	} else {
		js = natsProcess(b)
	}
	url := ""
	if onRequest != nil {
		ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			onRequest(time.Now())
			time.Sleep(latency)
			w.WriteHeader(202)
		}))
		b.Cleanup(ep.Close)
		url = ep.URL
	} else {
		url = providerProcess(b, latency)
	}
	pjs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		p := fmt.Sprintf("p-%d", i%5000)
		j := bus.DeliveryJob{DecisionID: fmt.Sprintf("d-%d", i), Brand: "baku", Player: p, Campaign: "daily-spins", Step: "send",
			Channel: crmv1.ChannelWebhook, Locale: "az", TemplateID: "spins/webhook/az", ContentHash: "h", To: p,
			Text: "Bu gün 20 pulsuz fırlanma sizi gözləyir!", Data: map[string]string{"category": "marketing"}}
		raw, _ := bus.Encode(j)
		if _, err := pjs.PublishAsync(bus.DeliverySubject("webhook", "baku", bus.Partition(p, 16), p), raw); err != nil {
			b.Fatal(err)
		}
	}
	<-pjs.PublishAsyncComplete()
	prov := crmv1.Provider{Name: "hook", Type: crmv1.ProviderWebhook, Endpoint: url}
	if limit > 0 {
		prov.RateLimit = &crmv1.RateLimit{PerSecond: limit, Burst: 1}
	}
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook, Providers: []crmv1.Provider{prov}}}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight * 2, MaxIdleConns: inFlight * 2}}
	w := &channel.Worker{JS: js, Channel: crmv1.ChannelWebhook, Policies: staticPolicy{cfg}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), InFlight: inFlight, HTTP: hc,
		Factories: map[crmv1.ProviderType]channel.Factory{crmv1.ProviderWebhook: webhook.New}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, _ := js.Stream(ctx, bus.StreamDeliveries)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed, cpu = time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed, cpu
}

// providerEnv makes the test binary a loopback provider: "<addr> <latency>".
const providerEnv = "CROUPIER_LOOPBACK_PROVIDER"

// natsEnv makes the test binary a NATS server with the topology: "<data dir> <port>".
const natsEnv = "CROUPIER_BENCH_NATS"

func TestMain(m *testing.M) {
	if v := os.Getenv(natsEnv); v != "" {
		var dir string
		var port int
		if _, err := fmt.Sscan(v, &dir, &port); err != nil {
			panic(err)
		}
		s, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir, Port: port})
		if err != nil {
			panic(err)
		}
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			panic(err)
		}
		js, _ := jetstream.New(nc)
		if _, err := bus.EnsureTopology(context.Background(), js, bus.TopologyOptions{Partitions: 16}); err != nil {
			panic(err)
		}
		fmt.Println("ready")
		select {}
	}
	if v := os.Getenv(providerEnv); v != "" {
		var addr string
		var latency time.Duration
		if _, err := fmt.Sscan(v, &addr, &latency); err != nil {
			panic(err)
		}
		_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			time.Sleep(latency)
			w.WriteHeader(202)
		}))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// providerProcess runs the loopback provider in a child process, so the CPU the benchmark
// reports is the dispatcher's (with its embedded NATS server) and not the provider's.
func providerProcess(b *testing.B, latency time.Duration) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), providerEnv+"="+addr+" "+latency.String())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	bustest.Eventually(b, 10*time.Second, "the provider process", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return "http://" + addr
}

// natsProcess runs a NATS server in a child process, as production runs a NATS cluster
// beside the dispatchers, and connects to it.
func natsProcess(b *testing.B) jetstream.JetStream {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", natsEnv, b.TempDir(), port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		b.Fatalf("the NATS process: %q %v", line, err)
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return js
}

type staticPolicy struct{ cfg *bus.ChannelPolicyConfig }

func (s staticPolicy) ChannelPolicy(string, crmv1.Channel) *bus.ChannelPolicyConfig { return s.cfg }

// BenchmarkSendLoopbackHTTP: one worker sends b.N messages to a provider answering after
// 50 ms, 1,024 in flight; the provider and the NATS server run in child processes, so the
// cores reported are the dispatcher's own. Run with -benchtime 100000x.
func BenchmarkSendLoopbackHTTP(b *testing.B) {
	elapsed, cpu := benchWorker(b, b.N, 1024, 50*time.Millisecond, 0, nil)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
}

// BenchmarkPacing sends at a provider rate limit (burst 1) and reports the rate the
// provider saw between its first and last request, and the error against the limit.
func BenchmarkPacing(b *testing.B) {
	for _, c := range []struct {
		limit int32
		n     int
	}{{1, 6}, {100, 501}, {1000, 5001}} {
		b.Run(fmt.Sprintf("%d-per-s", c.limit), func(b *testing.B) {
			var mu sync.Mutex
			var at []time.Time
			benchWorker(b, c.n, 256, time.Millisecond, c.limit, func(t time.Time) { mu.Lock(); at = append(at, t); mu.Unlock() })
			sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
			rate := float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(100*(rate-float64(c.limit))/float64(c.limit), "error-%")
		})
	}
}
