package reports_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/reports"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// figures counts how often the figures are read (once per generation).
type figures struct {
	mu    sync.Mutex
	reads int
}

func (f *figures) Sums(_ context.Context, _ string, names []string) (map[string]map[string]int64, error) {
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	return map[string]map[string]int64{}, nil
}

func (f *figures) ChannelFiguresOf(brand, from, to string, _ []string, _ map[string]map[string]int64, _ bool) api.ChannelReportBody {
	return api.ChannelReportBody{Brand: brand, From: from, To: to, Total: []crmv1.ChannelReport{{Channel: "email", Sent: 7}}}
}

func (f *figures) CampaignFiguresOf(string, *flow.Campaign, map[string]int64) api.CampaignReportBody {
	return api.CampaignReportBody{}
}

// mailer refuses the first fails mails, then accepts; it keeps what it accepted.
type mailer struct {
	mu    sync.Mutex
	fails int
	got   []*channel.Message
}

func (m *mailer) SendStaff(_ context.Context, _ string, msg *channel.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails > 0 {
		m.fails--
		return "", channel.Errorf(channel.Transient, "connection refused")
	}
	m.got = append(m.got, msg)
	return "smtp", nil
}

// TestARunIsMadeOnceAndMailedUntilAccepted: a failed mail leaves the files made and the
// error in the result; the retry mails the same files without making new ones; a
// redelivery after the mail sends nothing.
func TestARunIsMadeOnceAndMailedUntilAccepted(t *testing.T) {
	srv := bustest.Start(t, 4)
	_, js := srv.Connect(t)
	cat := &flow.Catalog{}
	seg, _ := bus.Encode(&bus.ConfigRecord{Kind: bus.KindSegment, Brand: "baku", Name: "all", Segment: &bus.SegmentConfig{Spec: crmv1.SegmentSpec{Rule: "true"}}})
	cat.Put(bus.ConfigKey("baku", bus.KindSegment, "all"), seg)
	src, mail := &figures{}, &mailer{fails: 1}
	m := &reports.Maker{JS: js, Catalog: cat, Figures: src, Mail: mail}
	slot := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	run := &bus.ReportRun{RunID: bus.RunID("uid-1", slot), Brand: "baku", Report: "weekly", UID: "uid-1", Generation: 2, ScheduledTime: slot,
		Spec: crmv1.ReportSpec{Schedule: crmv1.ReportSchedule{Cron: "0 8 * * 1", TimeZone: "Asia/Baku"}, Recipients: []string{"a@x.az", "b@x.az"},
			Formats: []crmv1.ReportFormat{crmv1.ReportPDF, crmv1.ReportCSV}, Contents: []crmv1.ReportContent{crmv1.ReportChannels}, Period: crmv1.PeriodLast7Days, Language: "ru"}}
	ctx := context.Background()
	result := func() bus.ReportResult {
		e, err := bustest.KV(t, js, bus.BucketReportRuns).Get(ctx, bus.ReportRunKey("baku", "weekly", slot))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := bus.Decode[bus.ReportResult](e.Value())
		return r
	}
	err := m.Make(ctx, run, func() {})
	if err == nil {
		t.Fatal("the refused mail was not reported")
	}
	first := result()
	if first.Generated.IsZero() || len(first.Files) != 2 || first.Error == "" || !first.Sent.IsZero() {
		t.Fatalf("after the refusal: %+v", first)
	}
	if err := m.Make(ctx, run, func() {}); err != nil {
		t.Fatal(err)
	}
	second := result()
	if !second.Generated.Equal(first.Generated) || second.Sent.IsZero() || second.Error != "" {
		t.Fatalf("after the retry: %+v (first %+v)", second, first)
	}
	if src.reads != 1 {
		t.Fatalf("the figures were read %d times; one generation per run", src.reads)
	}
	if len(mail.got) != 2 || mail.got[0].Job.To != "a@x.az" || mail.got[1].Job.To != "b@x.az" || len(mail.got[0].Attachments) != 2 {
		t.Fatalf("mails %+v", mail.got)
	}
	if err := m.Make(ctx, run, func() {}); err != nil || len(mail.got) != 2 {
		t.Fatalf("a redelivered run mailed again (%d mails, %v)", len(mail.got), err)
	}
	store, err := js.ObjectStore(ctx, bus.ObjectReports)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range second.Files {
		if _, err := store.GetBytes(ctx, "baku/weekly/20261207T040000Z/"+f); err != nil {
			t.Errorf("%s not in the object store: %v", f, err)
		}
	}
}

// TestRunsCounted: runs taken from REPORTS are counted by result, which the alert
// CroupierReportFailing reads: a run mailed is sent; a run whose mail fails is retried
// while its deadline holds and failed (given up, acknowledged) once it has passed.
func TestRunsCounted(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	cat := &flow.Catalog{}
	for _, brand := range []string{"baku", "vegas"} {
		seg, _ := bus.Encode(&bus.ConfigRecord{Kind: bus.KindSegment, Brand: brand, Name: "all", Segment: &bus.SegmentConfig{Spec: crmv1.SegmentSpec{Rule: "true"}}})
		cat.Put(bus.ConfigKey(brand, bus.KindSegment, "all"), seg)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	runs := reports.NewRunsMetric(prometheus.NewRegistry())
	mail := &mailer{fails: 1 << 30} // every mail refused
	m := &reports.Maker{JS: js, Catalog: cat, Figures: &figures{}, Mail: mail, Runs: runs, Clock: func() time.Time { return now },
		Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	publish := func(brand, report string, slot time.Time) {
		t.Helper()
		run := bus.ReportRun{RunID: bus.RunID("uid-"+report, slot), Brand: brand, Report: report, UID: "uid-" + report, ScheduledTime: slot,
			Spec: crmv1.ReportSpec{Schedule: crmv1.ReportSchedule{Cron: "0 8 * * 1", TimeZone: "UTC"}, Recipients: []string{"a@x.az"},
				Formats: []crmv1.ReportFormat{crmv1.ReportCSV}, Contents: []crmv1.ReportContent{crmv1.ReportChannels}, Period: crmv1.PeriodLast7Days}}
		b, _ := bus.Encode(&run)
		if _, err := js.Publish(ctx, bus.ReportRunSubject(brand, report), b); err != nil {
			t.Fatal(err)
		}
	}
	count := func(brand, result string) float64 { return testutil.ToFloat64(runs.WithLabelValues(brand, result)) }
	// Scheduled 7 hours ago: past the 6-hour deadline, given up at once.
	publish("baku", "late", now.Add(-7*time.Hour))
	bustest.Eventually(t, 30*time.Second, "the late run failed", func() bool { return count("baku", reports.RunFailed) == 1 })
	// Scheduled now: retried (in a minute, not within this test).
	publish("vegas", "fresh", now)
	bustest.Eventually(t, 30*time.Second, "the fresh run retried", func() bool { return count("vegas", reports.RunRetried) == 1 })
	if count("vegas", reports.RunFailed) != 0 || count("baku", reports.RunSent) != 0 {
		t.Fatalf("failed vegas %v, sent baku %v", count("vegas", reports.RunFailed), count("baku", reports.RunSent))
	}
	// The mail works again: a new run is sent.
	mail.mu.Lock()
	mail.fails = 0
	mail.mu.Unlock()
	publish("baku", "weekly", now)
	bustest.Eventually(t, 30*time.Second, "the weekly run sent", func() bool { return count("baku", reports.RunSent) == 1 })
}
