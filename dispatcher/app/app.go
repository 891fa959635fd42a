// Package app wires the dispatcher's parts into one process: partition leases and the
// players keeper, the HTTPS intake and admin API, and the health and metrics endpoint. The
// dispatcher binary and the local stack (make dev) both run it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/budget"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/email"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/dispatcher/channel/push"
	"github.com/croupier-crm/croupier/dispatcher/channel/sms"
	"github.com/croupier-crm/croupier/dispatcher/channel/viber"
	"github.com/croupier-crm/croupier/dispatcher/channel/webhook"
	"github.com/croupier-crm/croupier/dispatcher/export"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/reports"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// Options configure the dispatcher.
type Options struct {
	// Replica is this replica's name in croupier-leases (a subject token).
	Replica string
	// Partitions is the EVENTS stream's partition count (from EnsureTopology).
	Partitions int
	// LeaseTTL is how long a partition lease lasts without renewal.
	LeaseTTL time.Duration
	// Batch is the most events processed between two persists per partition.
	Batch int
	// Linger is how long a partition owner waits for more messages after the first of a
	// batch before persisting (default 5ms): longer batches, higher latency.
	Linger time.Duration
	// SweepEvery is the period of RFM scoring and inactivity checks.
	SweepEvery time.Duration
	// InactiveDays are the thresholds at which player.inactive is emitted.
	InactiveDays []int
	// APIAddr serves the HTTPS intake and admin API.
	APIAddr string
	// TLSCertFile and TLSKeyFile are the serving certificate (self-signed when empty).
	TLSCertFile, TLSKeyFile string
	// HealthAddr serves /healthz, /readyz and /metrics over plain HTTP.
	HealthAddr string
	// Kube is the Kubernetes client (Secrets, TokenReview, SubjectAccessReview). Without
	// it the intake has no keys and the admin API is off.
	Kube kubernetes.Interface
	// PublicURL is the base of unsubscribe and confirmation links in messages (none when
	// empty), e.g. https://crm.example-casino.az.
	PublicURL string
	// Providers are the provider types this dispatcher can send through (DefaultProviders
	// when nil); a channel without one is not consumed here.
	Providers map[crmv1.ProviderType]channel.Factory
	// Secrets are what providers' secretRefs name (the brands' Kubernetes Secrets when nil
	// and Kube is set).
	Secrets channel.Secrets
	// StallAfter is how long a held partition may have work pending without progress
	// before it is restarted and /readyz fails (default 10s).
	StallAfter time.Duration
	// DeliveryInFlight is the most jobs each channel worker sends at once (default 512).
	DeliveryInFlight int
	// DeliveryAckWait is how long after a crash the jobs a replica was sending go to
	// another (default 2m; more than the longest provider timeout).
	DeliveryAckWait time.Duration
	// Registry receives the metrics (a new one when nil).
	Registry *prometheus.Registry
	// DataKeyWrap, when set, is the key-encryption key of every brand's data keys (a
	// dispatcher without Kubernetes: --data-key-wrap-file); otherwise each brand's comes
	// from its integration Secret (dataKeyWrap, dataKeyWrapPrevious).
	DataKeyWrap []byte
	// ExportDir, when set, runs the warehouse export (dispatcher/export) into that
	// directory, pseudonymising player ids with keys derived from ExportKey per brand.
	ExportDir string
	ExportKey []byte
	// ExportS3Endpoint and ExportS3Bucket, when set instead, export into an
	// S3-compatible bucket (credentials from the environment).
	ExportS3Endpoint, ExportS3Bucket string
	// ExportPlayersEvery is how often the players' metrics are exported (0: 15 min).
	ExportPlayersEvery time.Duration
	// ExportLeaseTTL is how long the export's lease lasts unrenewed (0: 30 s): one replica
	// exports, another takes over that long after it died.
	ExportLeaseTTL time.Duration
	// Unsealed turns sealing with the players' data keys off: only to measure its cost in
	// make bench (no flag sets it).
	Unsealed bool
	// RetryBackoff is the first backoff between two rounds of a mandatory message's
	// channels (default flow.RetryBackoff).
	RetryBackoff time.Duration
	// Ready is closed once the servers listen.
	Ready chan<- struct{}
}

// MaxPendingPublishes bounds the asynchronous publishes in flight (persists, dead letters,
// intake); a publisher waits when it is reached.
const MaxPendingPublishes = 1 << 16

// PublishAckTimeout is how long an asynchronous publish waits for its acknowledgement. The
// library's default is to wait for ever: a publish whose stream leader died before
// answering (a NATS node killed) never resolved, and a channel worker whose in-flight
// slots all waited on such publishes stopped delivering. A timed-out publish is an error
// its caller retries; message ids make the retry a no-op if the first one was stored.
const PublishAckTimeout = 10 * time.Second

// Metrics are the dispatcher's Prometheus metrics.
type Metrics struct {
	Events     *prometheus.CounterVec
	Owned      *prometheus.GaugeVec
	Lag        *prometheus.GaugeVec
	Pending    *prometheus.GaugeVec
	AckPending *prometheus.GaugeVec
	Idle       *prometheus.GaugeVec
	Stalled    *prometheus.GaugeVec
	Restarts   *prometheus.CounterVec
	Partitions prometheus.Gauge
	Players    prometheus.GaugeFunc
	BatchSize  prometheus.Histogram
	Decisions  *prometheus.CounterVec
	Dispatch   *prometheus.HistogramVec
	Breaches   *prometheus.CounterVec
	// Undelivered counts mandatory messages given up at their deadline (retryFor).
	Undelivered *prometheus.CounterVec
	Attempts    *prometheus.CounterVec
	Sends       *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, keeper *players.Keeper) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_events_total",
			Help: "Player events by type and result (accepted/rejected at the HTTP intake; applied, duplicate, invalid, dropped_erased, erased at the partition owner; deadletter)."},
			[]string{"type", "result"}),
		Owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_partition_owned",
			Help: "1 for each partition this replica holds the lease of."}, []string{"partition"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_consumer_lag",
			Help: "Messages of an owned partition not yet delivered to its owner, all sources (the consumers' pending counts on the server)."}, []string{"partition"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_partition_pending",
			Help: "Messages not yet delivered to an owned partition's worker, by source (events, intents, runs, outcomes), from the server."}, []string{"partition", "source"}),
		AckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_partition_ack_pending",
			Help: "Messages delivered to an owned partition's worker and not yet acknowledged, by source, from the server."}, []string{"partition", "source"}),
		Idle: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_partition_idle_seconds",
			Help: "How long an owned partition has had work pending without its acknowledged floor moving (0 when nothing is pending)."}, []string{"partition"}),
		Stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_partition_stalled",
			Help: "1 while an owned partition holds pending work and made no progress for the stall timeout (--stall-timeout)."}, []string{"partition"}),
		Partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "croupier_partitions",
			Help: "The EVENTS stream's partition count: what the replicas together must hold."}),
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_partition_restarts_total",
			Help: "Partition workers restarted after a failure, or given up (superseded, repeated), by reason."}, []string{"reason"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "croupier_partition_batch_events",
			Help: "Events processed between two persists.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)}),
	}
	m.Players = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "croupier_players",
		Help: "Players held in memory by this replica's partitions."}, func() float64 {
		n := 0
		for _, p := range keeper.Partitions() {
			n += p.Len()
		}
		return float64(n)
	})
	m.Decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_decisions_total",
		Help: "Routing decisions by message category, result (send, defer, suppress, drop) and reason."},
		[]string{"category", "result", "reason"})
	m.Dispatch = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "croupier_mandatory_dispatch_seconds",
		Help:    "Time from a mandatory message's intent to its delivery job being published, by category (the SLA measure).",
		Buckets: []float64{0.01, 0.05, 0.25, 1, 5, 30, 60, 120, 300, 600}}, []string{"category"})
	m.Breaches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_sla_breaches_total",
		Help: "Mandatory messages whose delivery job was published later than the category's SLA."}, []string{"category"})
	m.Undelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_mandatory_undelivered_total",
		Help: "Mandatory messages recorded undelivered: every channel failed in every round until the category's retryFor (dead-lettered)."},
		[]string{"brand", "category"})
	// The SLA series exist from the start, so an alert on increase() sees the first breach.
	for _, c := range []crmv1.Category{crmv1.CategoryService, crmv1.CategoryResponsibleGaming} {
		m.Dispatch.WithLabelValues(string(c))
		m.Breaches.WithLabelValues(string(c))
	}
	m.Attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_delivery_attempts_total",
		Help: "Provider attempts by channel, provider and result (sent, or the error kind: transient, providerFailed, rejected)."},
		[]string{"channel", "provider", "result"})
	m.Sends = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "croupier_provider_request_seconds",
		Help:    "Time of one provider request, by channel and provider.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 9)}, []string{"channel", "provider"})
	for _, r := range []string{partition.ReasonOpen, partition.ReasonConsumer, partition.ReasonHandle, partition.ReasonFlush, partition.ReasonTick,
		partition.ReasonPump, partition.ReasonAck, partition.ReasonStalled, partition.ReasonSuperseded, partition.ReasonRepeated, partition.ReasonGap} {
		m.Restarts.WithLabelValues(r)
	}
	reg.MustRegister(m.Events, m.Owned, m.Lag, m.Pending, m.AckPending, m.Idle, m.Stalled, m.Restarts, m.Partitions, m.Players, m.BatchSize, m.Decisions, m.Dispatch, m.Breaches, m.Undelivered, m.Attempts, m.Sends)
	return m
}

// Run runs the dispatcher until ctx ends, then shuts down in order: the HTTP servers
// finish their requests, every partition stops fetching, finishes, persists, acknowledges
// and hands its lease over.
func Run(ctx context.Context, log *slog.Logger, nc *nats.Conn, o Options) error {
	if err := bus.CheckToken("replica", o.Replica); err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		return err
	}
	// Persists and other asynchronous publishes go over a second connection: one client
	// connection has one reader, which the partitions' deliveries keep busy.
	opts := nc.Opts
	opts.Name += "-publish"
	pnc, err := opts.Connect()
	if err != nil {
		return err
	}
	defer func() { _ = pnc.Drain() }()
	pjs, err := jetstream.New(pnc, jetstream.WithPublishAsyncMaxPending(MaxPendingPublishes), jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		return err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	playersKV, err := js.KeyValue(ctx, bus.BucketPlayers)
	if err != nil {
		return err
	}
	leasesKV, err := js.KeyValue(ctx, bus.BucketLeases)
	if err != nil {
		return err
	}
	configKV, err := js.KeyValue(ctx, bus.BucketConfig)
	if err != nil {
		return err
	}
	statsKV, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return err
	}
	stateKV, err := js.KeyValue(ctx, bus.BucketState)
	if err != nil {
		return err
	}
	prefsKV, err := js.KeyValue(ctx, bus.BucketPrefs)
	if err != nil {
		return err
	}
	keysKV, err := js.KeyValue(ctx, bus.BucketKeys)
	if err != nil {
		return err
	}
	// The brands' keys: from the Secrets their PreferencePolicies name, where there is a
	// Kubernetes API.
	var brandKeys ingest.KeySource = ingest.StaticKeys{}
	if o.Kube != nil {
		brandKeys = &ingest.SecretKeys{Config: configKV, Secrets: o.Kube.CoreV1()}
	}
	keks := dataKeyWrap(o, brandKeys, log)
	// Channel workers, the inbox and the APIs open what the partition owners sealed.
	dataKeys := &datakey.Reader{KV: keysKV, Partitions: o.Partitions, KEKs: keks}
	keeper := &players.Keeper{JS: pjs, Players: playersKV, Keys: keysKV, KEKs: keks, Unsealed: o.Unsealed, Log: log, InactiveDays: o.InactiveDays}
	m := newMetrics(reg, keeper)
	keeper.Count = func(t, r string) { m.Events.WithLabelValues(t, r).Inc() }
	m.Partitions.Set(float64(o.Partitions))

	// The brands' configuration and the players' preferences are read before any
	// partition is taken, so no decision is made without them.
	wctx, stopWatches := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatches()
	catalog := &flow.Catalog{Log: log}
	prefsCache := prefs.NewCache()
	watchErrs := make(chan error, 2)
	catalogReady, prefsReady := make(chan struct{}), make(chan struct{})
	go func() { watchErrs <- catalog.Run(wctx, configKV, catalogReady) }()
	go func() { watchErrs <- prefsCache.Run(wctx, prefsKV, prefsReady) }()
	for _, ready := range []chan struct{}{catalogReady, prefsReady} {
		select {
		case <-ready:
		case err := <-watchErrs:
			return fmt.Errorf("loading configuration: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	couponsKV, err := js.KeyValue(ctx, bus.BucketCoupons)
	if err != nil {
		return err
	}
	couponStore := &reward.Coupons{KV: couponsKV}
	budgetKV, err := js.KeyValue(ctx, bus.BucketBudget)
	if err != nil {
		return err
	}
	// Budget blocks are given back after the partitions stopped, so none is taken after.
	budgets := &budget.Leases{KV: budgetKV, Caps: catalog.Caps, Log: log}
	bctx, stopBudgets := context.WithCancel(context.WithoutCancel(ctx))
	budgetsDone := make(chan struct{})
	go func() {
		defer close(budgetsDone)
		_ = budgets.Run(bctx)
	}()
	defer func() {
		stopBudgets()
		<-budgetsDone
	}()
	owner := &flow.Owner{Keeper: keeper, JS: pjs, State: stateKV, Stats: statsKV, Catalog: catalog, Prefs: prefsCache, Log: log,
		Partitions: o.Partitions, Budget: budgets, Rewards: reward.Engine{}, Coupons: couponStore,
		Decided: func(c, r, why string) { m.Decisions.WithLabelValues(c, r, why).Inc() },
		Dispatched: func(brand string, c crmv1.Category, took, sla time.Duration) {
			// The brand's undelivered series exists from its first mandatory send, so an
			// alert on increase() sees the first one given up.
			m.Undelivered.WithLabelValues(brand, string(c))
			m.Dispatch.WithLabelValues(string(c)).Observe(took.Seconds())
			if took > sla {
				m.Breaches.WithLabelValues(string(c)).Inc()
			}
		},
		Undelivered:  func(brand string, c crmv1.Category) { m.Undelivered.WithLabelValues(brand, string(c)).Inc() },
		RetryBackoff: o.RetryBackoff}
	runner := &partition.Runner{JS: js, Handler: owner, Log: log, Batch: o.Batch, TickEvery: o.SweepEvery, Linger: o.Linger,
		Sources:    []partition.Source{partition.Events, partition.Intents, partition.Runs, partition.Outcomes},
		StallAfter: o.StallAfter,
		Observe:    func(_, n int) { m.BatchSize.Observe(float64(n)) },
		Restarted:  func(_ int, reason string) { m.Restarts.WithLabelValues(reason).Inc() },
		Progress: func(p partition.Progress) {
			part := strconv.Itoa(p.Partition)
			var lag uint64
			for _, sp := range p.Sources {
				if sp.Err != nil {
					continue
				}
				lag += sp.Pending
				m.Pending.WithLabelValues(part, sp.What).Set(float64(sp.Pending))
				m.AckPending.WithLabelValues(part, sp.What).Set(float64(sp.AckPending))
			}
			m.Lag.WithLabelValues(part).Set(float64(lag))
			m.Idle.WithLabelValues(part).Set(p.Idle.Seconds())
			stalled := 0.0
			if p.Stalled {
				stalled = 1
			}
			m.Stalled.WithLabelValues(part).Set(stalled)
		}}
	cb := runner.Callbacks()
	leases := &partition.Leases{KV: leasesKV, Replica: o.Replica, Partitions: o.Partitions, TTL: o.LeaseTTL, Log: log, Connected: nc.IsConnected}
	runner.GiveUp = leases.GiveUp
	callbacks := partition.Callbacks{
		Acquired: func(ctx context.Context, part int, epoch uint64) {
			cb.Acquired(ctx, part, epoch)
			p := strconv.Itoa(part)
			m.Owned.WithLabelValues(p).Set(1)
			// The partition's series exist from the start; the monitor fills them in.
			m.Lag.WithLabelValues(p).Set(0)
			m.Idle.WithLabelValues(p).Set(0)
			m.Stalled.WithLabelValues(p).Set(0)
		},
		Released: func(part int) {
			cb.Released(part)
			p := strconv.Itoa(part)
			m.Owned.DeleteLabelValues(p)
			m.Lag.DeleteLabelValues(p)
			m.Idle.DeleteLabelValues(p)
			m.Stalled.DeleteLabelValues(p)
			m.Pending.DeletePartialMatch(prometheus.Labels{"partition": p})
			m.AckPending.DeletePartialMatch(prometheus.Labels{"partition": p})
		},
	}

	mux := http.NewServeMux()
	intake := &ingest.Intake{JS: pjs, Log: log, Count: func(t, r string) { m.Events.WithLabelValues(t, r).Inc() }}
	intake.Keys = brandKeys
	if o.Kube == nil {
		log.Warn("no Kubernetes API: intake keys, player tokens and the admin API are unavailable")
	}
	service := &prefs.Service{JS: js, KV: prefsKV, Cache: prefsCache, Policy: catalog.Policy, Partitions: o.Partitions}
	prefsAPI := &api.Preferences{Service: service, Keys: intake.Keys, PublicURL: o.PublicURL, Log: log}
	prefsAPI.Register(mux)
	owner.Links = prefsAPI.UnsubscribeLink
	insight := &api.Insight{JS: js, Catalog: catalog, Prefs: service, Partitions: o.Partitions, DataKeys: dataKeys}
	insight.RegisterPlayer(mux, prefsAPI)
	inboxKV, err := js.KeyValue(ctx, bus.BucketInbox)
	if err != nil {
		return err
	}
	inbox := &inapp.Store{KV: inboxKV, Partitions: o.Partitions, Keys: dataKeys}
	linksKV, err := js.KeyValue(ctx, bus.BucketLinks)
	if err != nil {
		return err
	}
	(&api.Redirects{JS: pjs, Links: linksKV, Partitions: o.Partitions}).Register(mux)
	leaderboards := &api.Leaderboards{Stats: statsKV, Catalog: catalog, Keys: intake.Keys, Partitions: o.Partitions}
	leaderboards.Register(mux, prefsAPI)
	(&api.Coupons{Store: couponStore, Keys: intake.Keys, JS: pjs, Players: playersKV, Catalog: catalog,
		Partitions: o.Partitions, Log: log, DataKeys: dataKeys}).Register(mux)
	feedsDone := make(chan struct{})
	(&api.Inbox{Store: inbox, Done: feedsDone}).Register(mux, prefsAPI)
	if o.Kube != nil {
		authn, authz, err := api.Delegated(ctx, o.Kube)
		if err != nil {
			return err
		}
		admin := &api.Admin{Authn: authn, Authz: authz, JS: js, Partitions: o.Partitions, Log: log, DataKeys: dataKeys}
		admin.Register(mux)
		prefsAPI.RegisterAdmin(mux, admin)
		insight.RegisterAdmin(mux, admin)
		leaderboards.RegisterAdmin(mux, admin)
		(&api.CouponImport{Store: couponStore}).Register(mux, admin)
		(&api.Campaigns{JS: pjs, Catalog: catalog, Partitions: o.Partitions,
			Preview: func(r *http.Request, brand, campaign string) (*bus.Preview, error) {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				defer cancel()
				return flow.GatherPreview(ctx, nc, brand, campaign, o.Partitions)
			},
			Count: func(r *http.Request, brand, rule string) (*bus.Preview, error) {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				defer cancel()
				return flow.GatherCount(ctx, nc, brand, rule, o.Partitions)
			}}).Register(mux, admin)
	}
	mux.Handle("POST /v1/brands/{brand}/events", intake)
	secrets := o.Secrets
	if secrets == nil && o.Kube != nil {
		secrets = &channel.KubeSecrets{Client: o.Kube.CoreV1()}
	}
	(&api.ProviderHooks{JS: pjs, Links: linksKV, Policies: catalog, Secrets: secrets, Prefs: service, Partitions: o.Partitions}).Register(mux)

	cert, err := servingCert(o)
	if err != nil {
		return err
	}
	apiSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}}
	apiSrv.RegisterOnShutdown(func() { close(feedsDone) }) // live inbox feeds end, so shutdown does not wait on them
	var leasesRunning sync.WaitGroup
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "NATS not connected", http.StatusServiceUnavailable)
			return
		}
		if _, err := bus.CheckTopology(r.Context(), js); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := runner.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	health.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	healthSrv := &http.Server{Handler: health, ReadHeaderTimeout: 5 * time.Second}

	apiLn, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return fmt.Errorf("API listener: %w", err)
	}
	healthLn, err := net.Listen("tcp", o.HealthAddr)
	if err != nil {
		_ = apiLn.Close()
		return fmt.Errorf("health listener: %w", err)
	}
	errs := make(chan error, 8+len(prefs.Channels))
	go func() {
		if err := apiSrv.ServeTLS(apiLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("API server: %w", err)
		}
	}()
	go func() {
		if err := healthSrv.Serve(healthLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("health server: %w", err)
		}
	}()
	lctx, stopLeases := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLeases()
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		if err := leases.Run(lctx, callbacks); err != nil {
			errs <- err
		}
	}()
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		runner.Monitor(lctx)
	}()
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		if err := flow.ServePreviews(lctx, nc, owner); err != nil {
			errs <- err
		}
	}()
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		if err := flow.ServeCounts(lctx, nc, owner); err != nil {
			errs <- err
		}
	}()
	if o.ExportDir != "" || o.ExportS3Endpoint != "" {
		if len(o.ExportKey) < 16 {
			return errors.New("the warehouse export needs a key of at least 16 bytes (--export-key-file)")
		}
		var sink export.Sink = export.Dir(o.ExportDir)
		if o.ExportS3Endpoint != "" {
			if o.ExportDir != "" {
				return errors.New("the warehouse export goes to a directory or to a bucket, not both")
			}
			s3, err := export.NewS3(o.ExportS3Endpoint, o.ExportS3Bucket)
			if err != nil {
				return err
			}
			sink = s3
		}
		// One replica exports at a time: the holder of the export's lease.
		metrics, keys := export.NewMetrics(reg), export.BrandKeys(o.ExportKey)
		exporter := func() *export.Exporter {
			return &export.Exporter{JS: js, Sink: sink, Key: keys, PlayersEvery: o.ExportPlayersEvery, Metrics: metrics,
				Log: log.With("component", "export")}
		}
		leasesRunning.Add(1)
		go func() {
			defer leasesRunning.Done()
			if err := export.RunHeld(lctx, leasesKV, o.Replica, o.ExportLeaseTTL, exporter); err != nil && lctx.Err() == nil {
				errs <- err
			}
		}()
	}
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		if err := ingest.DeadLetterUntransformed(lctx, pjs, log); err != nil {
			errs <- err
		}
	}()
	// Erased players' events are overwritten on disk outside the partition owners' loops.
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		eraser := &players.Eraser{JS: pjs, Players: playersKV, Partitions: o.Partitions, Log: log}
		if err := eraser.Run(lctx); err != nil {
			errs <- err
		}
	}()
	// Channel workers: their own connection, so sends and their outcomes do not queue
	// behind the partitions' traffic.
	dopts := nc.Opts
	dopts.Name += "-delivery"
	dnc, err := dopts.Connect()
	if err != nil {
		return err
	}
	defer func() { _ = dnc.Drain() }()
	djs, err := jetstream.New(dnc, jetstream.WithPublishAsyncMaxPending(MaxPendingPublishes), jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		return err
	}
	factories := o.Providers
	if factories == nil {
		factories = DefaultProviders(inbox)
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 1024,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true}}
	var emailWorker *channel.Worker
	for _, ch := range prefs.Channels {
		if !servable(ch, factories) {
			continue
		}
		w := &channel.Worker{JS: djs, Channel: ch, Policies: catalog, Secrets: secrets, Factories: factories, HTTP: hc, Log: log,
			Links: &channel.Links{JS: djs}, Keys: dataKeys,
			InFlight: o.DeliveryInFlight, AckWait: o.DeliveryAckWait,
			Observe: func(ch crmv1.Channel, provider, result string, took time.Duration) {
				m.Attempts.WithLabelValues(string(ch), provider, result).Inc()
				m.Sends.WithLabelValues(string(ch), provider).Observe(took.Seconds())
			}}
		if ch == crmv1.ChannelEmail {
			emailWorker = w
		}
		leasesRunning.Add(1)
		go func() {
			defer leasesRunning.Done()
			if err := w.Run(lctx); err != nil {
				errs <- err
			}
		}()
	}
	if emailWorker != nil {
		// Scheduled reports are mailed through the brands' email providers.
		maker := &reports.Maker{JS: djs, Catalog: catalog, Figures: insight, Mail: emailWorker, Runs: reports.NewRunsMetric(reg),
			Log: log.With("component", "reports")}
		leasesRunning.Add(1)
		go func() {
			defer leasesRunning.Done()
			if err := maker.Run(lctx); err != nil && lctx.Err() == nil {
				errs <- err
			}
		}()
	}
	casinoCallbacks := &webhook.Callbacks{JS: djs, Policies: catalog, Secrets: secrets, HTTP: hc, Log: log}
	leasesRunning.Add(1)
	go func() {
		defer leasesRunning.Done()
		if err := casinoCallbacks.Run(lctx); err != nil {
			errs <- err
		}
	}()
	log.Info("dispatcher running", "replica", o.Replica, "partitions", o.Partitions, "api", apiLn.Addr().String(), "health", healthLn.Addr().String())
	if o.Ready != nil {
		close(o.Ready)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	log.Info("dispatcher stopping: finishing requests, then partitions")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = apiSrv.Shutdown(sctx)
	stopLeases()
	leasesRunning.Wait()
	_ = healthSrv.Shutdown(sctx)
	log.Info("dispatcher stopped")
	return runErr
}

// servingCert loads the certificate files or makes a self-signed one for localhost.
func servingCert(o Options) (tls.Certificate, error) {
	if o.TLSCertFile != "" {
		return tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, []string{"croupier-dispatcher"})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// DefaultProviders are the provider types built into the dispatcher; in-app messages go to
// the inbox store.
func DefaultProviders(inbox *inapp.Store) map[crmv1.ProviderType]channel.Factory {
	return map[crmv1.ProviderType]channel.Factory{
		crmv1.ProviderInApp:    inapp.Factory(inbox),
		crmv1.ProviderWebhook:  webhook.New,
		crmv1.ProviderSMTP:     email.NewSMTP,
		crmv1.ProviderSendGrid: email.NewSendGrid,
		crmv1.ProviderMailgun:  email.NewMailgun,
		crmv1.ProviderTwilio:   sms.NewTwilio,
		crmv1.ProviderSMSRest:  sms.NewREST,
		crmv1.ProviderFCM:      push.NewFCM,
		crmv1.ProviderAPNs:     push.NewAPNs,
		crmv1.ProviderWebPush:  push.NewWebPush,
		crmv1.ProviderViber:    viber.New,
	}
}

// servable reports whether some provider type of the channel is built in.
func servable(ch crmv1.Channel, f map[crmv1.ProviderType]channel.Factory) bool {
	for _, t := range crmv1.ProviderTypesByChannel[ch] {
		if f[t] != nil {
			return true
		}
	}
	return false
}

// dataKeyWrap is where the players' data keys get their key-encryption keys: the flag's
// key for every brand, else each brand's integration Secret. A brand with neither stores
// its data keys unwrapped (crypto-shredding still holds: erasure destroys the key; but a
// copy of the NATS store then carries the keys beside what they seal); each such brand is
// logged once.
func dataKeyWrap(o Options, keys ingest.KeySource, log *slog.Logger) datakey.KEKs {
	if o.DataKeyWrap != nil {
		kek := [][]byte{o.DataKeyWrap}
		return func(context.Context, string) ([][]byte, error) { return kek, nil }
	}
	var warned sync.Map
	return func(ctx context.Context, brand string) ([][]byte, error) {
		k, err := keys.Keys(ctx, brand)
		if err != nil && !errors.Is(err, ingest.ErrNoKeys) {
			return nil, err
		}
		if len(k.DataKeyWrap) == 0 {
			if _, done := warned.LoadOrStore(brand, true); !done {
				log.Warn("the brand's data keys are stored unwrapped: put a 32-byte dataKeyWrap in its integration Secret (or run with --data-key-wrap-file)", "brand", brand)
			}
		}
		return k.DataKeyWrap, nil
	}
}
