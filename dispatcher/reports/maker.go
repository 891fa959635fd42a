package reports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Mailer sends staff mail through a brand's email providers (*channel.Worker of email).
type Mailer interface {
	SendStaff(ctx context.Context, brand string, m *channel.Message) (string, error)
}

// ConsumerName is the durable consumer of REPORTS every dispatcher shares (work queue:
// one dispatcher makes each run).
const ConsumerName = "reports"

// Deadline is how long after its scheduled time a run's mail is still retried; then the
// run ends with its error in the Report's status.
const Deadline = 6 * time.Hour

// retryEvery is the wait before a run whose mail failed is tried again.
const retryEvery = time.Minute

// Maker makes the report runs.
type Maker struct {
	JS      jetstream.JetStream
	Catalog *flow.Catalog
	Figures Source
	Mail    Mailer
	Clock   clock.Func
	Log     *slog.Logger
	// AckWait is how long a run stays this dispatcher's without news (default 5m).
	AckWait time.Duration
	// Runs, when set, counts the runs by brand and result (NewRunsMetric).
	Runs *prometheus.CounterVec
}

// Run results, the label values of croupier_report_runs_total.
const (
	RunSent    = "sent"    // made and mailed to every recipient
	RunRetried = "retried" // failed, tried again in a minute
	RunFailed  = "failed"  // failed past the deadline: given up, the error in the Report's status
)

// NewRunsMetric makes croupier_report_runs_total and registers it with reg; the alert
// CroupierReportFailing (config/prometheus) reads it.
func NewRunsMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "croupier_report_runs_total",
		Help: "Scheduled report runs by brand and result: sent, retried (the mail or the making failed; tried again in a minute), failed (given up at the deadline)."},
		[]string{"brand", "result"})
	reg.MustRegister(c)
	return c
}

func (m *Maker) count(brand, result string) {
	if m.Runs != nil {
		m.Runs.WithLabelValues(brand, result).Inc()
	}
}

// Run consumes REPORTS until ctx ends.
func (m *Maker) Run(ctx context.Context) error {
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.AckWait <= 0 {
		m.AckWait = 5 * time.Minute
	}
	cons, err := m.JS.CreateOrUpdateConsumer(ctx, bus.StreamReports, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: m.AckWait, MaxAckPending: 4,
	})
	if err != nil {
		return fmt.Errorf("the report consumer: %w", err)
	}
	return channel.Consume(ctx, m.Log, cons, 2, func(msg jetstream.Msg) { m.handle(ctx, msg) })
}

func (m *Maker) handle(ctx context.Context, msg jetstream.Msg) {
	run, err := bus.Decode[bus.ReportRun](msg.Data())
	if err != nil {
		m.Log.Error("unreadable report run; dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	log := m.Log.With("brand", run.Brand, "report", run.Report, "scheduled", run.ScheduledTime.Format(time.RFC3339))
	err = m.Make(ctx, &run, func() { _ = msg.InProgress() })
	switch {
	case err == nil:
		m.count(run.Brand, RunSent)
		_ = msg.Ack()
	case ctx.Err() != nil:
		_ = msg.Nak() // another dispatcher (or this one restarted) makes it
	case m.Clock.Now().Sub(run.ScheduledTime) > Deadline:
		m.count(run.Brand, RunFailed)
		log.Error("report run failed; its deadline passed", "err", err)
		_ = msg.Ack()
	default:
		m.count(run.Brand, RunRetried)
		log.Warn("report run failed; retried", "err", err, "in", retryEvery)
		_ = msg.NakWithDelay(retryEvery)
	}
}

// Make makes one run: the files once per run (kept in the object store, so a redelivered
// run mails the same files), then the mail to every recipient; the result goes to
// croupier-report-runs for the Report's status. A mail accepted for some recipients and
// retried for all is at least once, as every mail is (DESIGN.md section 7).
func (m *Maker) Make(ctx context.Context, run *bus.ReportRun, progress func()) error {
	kv, err := m.JS.KeyValue(ctx, bus.BucketReportRuns)
	if err != nil {
		return err
	}
	store, err := m.JS.ObjectStore(ctx, bus.ObjectReports)
	if err != nil {
		return err
	}
	key := bus.ReportRunKey(run.Brand, run.Report, run.ScheduledTime)
	res := bus.ReportResult{RunID: run.RunID}
	if e, err := kv.Get(ctx, key); err == nil {
		if res, err = bus.Decode[bus.ReportResult](e.Value()); err != nil {
			return err
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if !res.Sent.IsZero() {
		return nil // made and mailed before a redelivery
	}
	save := func() error {
		raw, err := bus.Encode(&res)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, key, raw)
		return err
	}
	object := func(file string) string { return bus.ReportObject(run.Brand, run.Report, run.ScheduledTime, file) }
	made := map[string][]byte{} // files made by this call: mailed without reading them back
	if res.Generated.IsZero() {
		files, err := m.generate(ctx, run)
		if err != nil {
			res.Error = "making the report: " + err.Error()
			_ = save()
			return err
		}
		res.Files = nil
		for _, f := range files {
			if _, err := store.PutBytes(ctx, object(f.Name), f.Data); err != nil {
				return fmt.Errorf("storing %s: %w", f.Name, err)
			}
			res.Files = append(res.Files, f.Name)
			made[f.Name] = f.Data
		}
		res.Generated, res.Error = m.Clock.Now().UTC(), ""
		if err := save(); err != nil {
			return err
		}
	}
	progress()
	var atts []channel.Attachment
	for _, name := range res.Files {
		data, ok := made[name]
		if !ok {
			if data, err = store.GetBytes(ctx, object(name)); err != nil {
				return fmt.Errorf("reading %s back: %w", name, err)
			}
		}
		atts = append(atts, channel.Attachment{Name: name, ContentType: bus.ReportFileType(name), Data: data})
	}
	title := run.Spec.Title
	if title == "" {
		title = run.Report
	}
	loc, _ := time.LoadLocation(run.Spec.Schedule.TimeZone)
	if loc == nil {
		loc = time.UTC
	}
	from, to := Period(run.Spec.Period, run.ScheduledTime, loc)
	subject := fmt.Sprintf("%s: %s (%s – %s)", t(run.Spec.Language, "subject"), title, from, to)
	text := fmt.Sprintf("%s\n%s: %s\n%s: %s – %s (%s)\n%s: %d\n", title, t(run.Spec.Language, "brand"), run.Brand,
		t(run.Spec.Language, "period"), from, to, loc, t(run.Spec.Language, "generation"), run.Generation)
	for i, to := range run.Spec.Recipients {
		progress()
		msg := &channel.Message{
			Job: &bus.DeliveryJob{Brand: run.Brand, Channel: crmv1.ChannelEmail, To: to, Subject: subject, Text: text,
				DecisionID: fmt.Sprintf("report-%s-%d", run.RunID, i)},
			IdempotencyKey: fmt.Sprintf("report.%s.%d", bus.ReportRunKey(run.Brand, run.Report, run.ScheduledTime), i),
			Attachments:    atts,
		}
		if _, err := m.Mail.SendStaff(ctx, run.Brand, msg); err != nil {
			// The error names the recipient's place in the list, never the address.
			res.Error = fmt.Sprintf("mailing recipient %d of %d: %v", i+1, len(run.Spec.Recipients), err)
			_ = save()
			return errors.New(res.Error)
		}
	}
	res.Sent, res.Error = m.Clock.Now().UTC(), ""
	return save()
}

// File is one attachment.
type File struct {
	Name string
	Data []byte
}

func (m *Maker) generate(ctx context.Context, run *bus.ReportRun) ([]File, error) {
	doc, err := Build(ctx, m.Figures, m.Catalog, run, m.Clock.Now())
	if err != nil {
		return nil, err
	}
	base := run.Report + "-" + doc.To
	var files []File
	for _, f := range run.Spec.Formats {
		var data []byte
		var name string
		switch f {
		case crmv1.ReportPDF:
			data, err = PDF(doc)
			name = base + ".pdf"
		case crmv1.ReportCSV:
			data, err = CSV(doc)
			name = base + ".csv"
		default:
			return nil, fmt.Errorf("spec.formats: unknown format %q", f)
		}
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, nil
}
