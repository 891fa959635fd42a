package channel_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/push"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/freeport"
)

// target is the channel and provider a benchmark sends through.
type target struct {
	ch      crmv1.Channel
	prov    crmv1.Provider // the endpoint is the loopback provider's
	factory channel.Factory
	secrets channel.Secrets
	tls     bool // the provider serves HTTP/2 over TLS, with its CA in caCert
}

var webhookTarget = target{ch: crmv1.ChannelWebhook, prov: crmv1.Provider{Name: "hook", Type: crmv1.ProviderWebhook}, factory: webhook.New}

// benchWorker publishes n jobs, then starts one worker with inFlight sends at once
// against a loopback provider that answers after latency; it returns when all are sent.
func benchWorker(b *testing.B, tg target, n, inFlight int, latency time.Duration, limit int32, onRequest func(time.Time)) (elapsed, cpu time.Duration) {
	var js jetstream.JetStream
	if onRequest != nil {
		srv := bustest.Start(b, 16)
		_, js = srv.Connect(b)
	} else {
		js = bustest.Child(b)
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
		url = providerProcess(b, latency, tg.tls)
	}
	pjs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		p := fmt.Sprintf("p-%d", i%5000)
		j := bus.DeliveryJob{DecisionID: fmt.Sprintf("d-%d", i), Brand: "baku", Player: p, Campaign: "daily-spins", Step: "send",
			Channel: tg.ch, Locale: "az", TemplateID: "spins/az", ContentHash: "h", To: "tok-" + p, Subject: "Pulsuz fırlanmalar",
			Text: "Bu gün 20 pulsuz fırlanma sizi gözləyir!", Data: map[string]string{"category": "marketing", "deepLink": "casino://spins"}}
		raw, _ := bus.Encode(j)
		if _, err := pjs.PublishAsync(bus.DeliverySubject(string(tg.ch), "baku", bus.Partition(p, 16), p), raw, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-pjs.PublishAsyncComplete()
	prov := tg.prov
	prov.Endpoint = url
	if limit > 0 {
		prov.RateLimit = &crmv1.RateLimit{PerSecond: limit, Burst: 1}
	}
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: tg.ch, Providers: []crmv1.Provider{prov}}}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight * 2, MaxIdleConns: inFlight * 2}}
	w := &channel.Worker{JS: js, Channel: tg.ch, Policies: staticPolicy{cfg}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), InFlight: inFlight, HTTP: hc,
		Factories: map[crmv1.ProviderType]channel.Factory{prov.Type: tg.factory}, Secrets: tg.secrets}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, _ := js.Stream(ctx, bus.StreamDeliveries)
	b.ResetTimer()
	start, cpu0 := time.Now(), clock.ProcessCPU()
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
	elapsed, cpu = time.Since(start), clock.ProcessCPU()-cpu0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed, cpu
}

// providerEnv makes the test binary a loopback provider: "<addr> <latency>".
const providerEnv = "CROUPIER_LOOPBACK_PROVIDER"

func TestMain(m *testing.M) {
	bustest.ServeChild()
	if v := os.Getenv(providerEnv); v != "" {
		var addr, wait, cert, key string
		if _, err := fmt.Sscan(v, &addr, &wait, &cert, &key); err != nil {
			panic(err)
		}
		latency, err := time.ParseDuration(wait)
		if err != nil {
			panic(err)
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			time.Sleep(latency)
			w.WriteHeader(202)
		})
		srv := &http.Server{Addr: addr, Handler: h}
		if cert != "-" {
			_ = srv.ListenAndServeTLS(cert, key) // HTTP/2 with TLS
		} else {
			_ = srv.ListenAndServe()
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// providerProcess runs the loopback provider in a child process, so the CPU the benchmark
// reports is the dispatcher's (with its embedded NATS server) and not the provider's.
func providerProcess(b *testing.B, latency time.Duration, withTLS bool) string {
	addr := freeport.Addr(b)
	cert, key, scheme := "-", "-", "http"
	if withTLS {
		cert, key, scheme = filepath.Join(b.TempDir(), "cert.pem"), filepath.Join(b.TempDir(), "key.pem"), "https"
		certPEM, keyPEM := selfSigned(b)
		if os.WriteFile(cert, certPEM, 0o600) != nil || os.WriteFile(key, keyPEM, 0o600) != nil {
			b.Fatal("writing the provider's certificate")
		}
		benchCA = certPEM
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), providerEnv+"="+addr+" "+latency.String()+" "+cert+" "+key)
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
	return scheme + "://" + addr
}

// benchCA is the loopback TLS provider's certificate, for providers to trust.
var benchCA []byte

func selfSigned(b *testing.B) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provider"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

type staticPolicy struct{ cfg *bus.ChannelPolicyConfig }

func (s staticPolicy) ChannelPolicy(string, crmv1.Channel) *bus.ChannelPolicyConfig { return s.cfg }

// BenchmarkSendLoopbackHTTP: one worker sends b.N messages to a provider answering after
// 50 ms, 1,024 in flight; the provider and the NATS server run in child processes, so the
// cores reported are the dispatcher's own. Run with -benchtime 100000x.
func BenchmarkSendLoopbackHTTP(b *testing.B) {
	elapsed, cpu := benchWorker(b, webhookTarget, b.N, 1024, 50*time.Millisecond, 0, nil)
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
			benchWorker(b, webhookTarget, c.n, 256, time.Millisecond, c.limit, func(t time.Time) { mu.Lock(); at = append(at, t); mu.Unlock() })
			sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
			rate := float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(100*(rate-float64(c.limit))/float64(c.limit), "error-%")
		})
	}
}

// BenchmarkPushAPNs: one worker sends b.N notifications through the APNs provider (ES256
// provider token, HTTP/2) to a loopback HTTP/2 TLS server in a child process answering
// after 50 ms; reports pushes/s and the dispatcher's cores. Run with -benchtime 100000x.
func BenchmarkPushAPNs(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	tg := target{ch: crmv1.ChannelPush, factory: push.NewAPNs, tls: true,
		prov: crmv1.Provider{Name: "apns", Type: crmv1.ProviderAPNs, SecretRef: &crmv1.LocalObjectReference{Name: "apns"},
			Options: map[string]string{push.OptionKeyID: "K", push.OptionTeamID: "T", push.OptionTopic: "az.example.casino"}}}
	secrets := channel.StaticSecrets{"baku/apns": {push.SecretAuthKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}}
	tg.secrets = lazyCA{secrets}
	elapsed, cpu := benchWorker(b, tg, b.N, 1024, 50*time.Millisecond, 0, nil)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
}

// lazyCA adds the loopback provider's CA, known once it has started, to the Secret.
type lazyCA struct{ channel.StaticSecrets }

func (l lazyCA) Secret(ctx context.Context, brand, name string) (map[string][]byte, error) {
	d, err := l.StaticSecrets.Secret(ctx, brand, name)
	if err != nil {
		return nil, err
	}
	d[push.SecretCACert] = benchCA
	return d, nil
}
