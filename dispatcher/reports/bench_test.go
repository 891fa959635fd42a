package reports_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/reports"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

// BenchmarkReportGeneration makes a full report (all four sections, PDF and CSV) for a
// brand with 200 campaigns whose counters are spread over 16 partitions and 35 days on four
// channels, as 1M players over a month leave them: the figures are sums, so the work grows
// with campaigns x partitions x counters, not with players. One op = read every counter
// document through the admin API's functions, build, draw the PDF, write the CSV.
func BenchmarkReportGeneration(b *testing.B) {
	const campaigns, parts = 200, bus.DefaultPartitions
	srv := bustest.Start(b, parts)
	_, js := srv.Connect(b)
	ctx := context.Background()
	cat := &flow.Catalog{}
	cat.Put(bus.ConfigKey("baku", bus.KindPreferencePolicy, "baku"), bustest.SamplePolicyRecord(b, "baku"))
	stats := bustest.KV(b, js, bus.BucketStats)
	today := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	channels := []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelSMS, crmv1.ChannelPush, crmv1.ChannelInApp}
	for i := range campaigns {
		name := fmt.Sprintf("campaign-%03d", i)
		spec := crmv1.CampaignSpec{Category: crmv1.CategoryMarketing,
			Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Steps:    []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
			Contents: []crmv1.Content{{Name: "hello", Messages: []crmv1.Message{{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Salam", Body: "Bonus"}}}},
			Budget:   &crmv1.Budget{Total: &crmv1.Money{Amount: "5000.00", Currency: "AZN"}}}
		if i%10 == 0 {
			spec.Experiment = &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50}}, GoalEvent: "deposit.completed"}
		}
		rec, _ := bus.Encode(&bus.ConfigRecord{Kind: bus.KindCampaign, Brand: "baku", Name: name, UID: "uid-" + name, Generation: 1,
			Campaign: &bus.CampaignConfig{Spec: spec, BudgetTotal: &bus.MinorAmount{Minor: 500_000, Currency: "AZN"}}})
		cat.Put(bus.ConfigKey("baku", bus.KindCampaign, name), rec)
		for p := range parts {
			c := map[string]int64{bus.StatTargeted: 312, bus.StatSent: 300, bus.StatDelivered: 290, bus.StatConverted: 12,
				bus.StatRewardsGranted: 10, bus.StatCostRewards: 20_000_000, bus.StatCostMessages: 1_050_000, bus.StatRevenue: 60_000}
			for _, v := range []string{"a", "b"} {
				c[bus.VariantStat(v, bus.StatVariantPlayers)] = 100
				c[bus.VariantStat(v, bus.StatVariantConverted)] = 4
			}
			for d := range 35 {
				day := today.AddDate(0, 0, -d).Format(time.DateOnly)
				for _, ch := range channels {
					for _, n := range []string{bus.StatSent, bus.StatDelivered, bus.StatOpened, bus.StatClicked, bus.StatConverted} {
						c[bus.DayStat(day, ch, n)] = int64(1 + (d+p)%7)
					}
				}
			}
			raw, _ := bus.Encode(&bus.PartitionStats{Brand: "baku", Kind: bus.KindCampaign, Name: name, Partition: p, Counters: c, Updated: today})
			if _, err := stats.Put(ctx, bus.StatsKey("baku", bus.KindCampaign, name, p), raw); err != nil {
				b.Fatal(err)
			}
		}
	}
	in := &api.Insight{JS: js, Catalog: cat, Partitions: parts, Clock: clock.Func(func() time.Time { return today })}
	run := &bus.ReportRun{RunID: "bench", Brand: "baku", Report: "weekly", ScheduledTime: today, Generation: 1,
		Spec: crmv1.ReportSpec{Schedule: crmv1.ReportSchedule{Cron: "0 9 * * 1", TimeZone: "Asia/Baku"}, Period: crmv1.PeriodLast30Days, Language: "az",
			Contents: []crmv1.ReportContent{crmv1.ReportChannels, crmv1.ReportCampaigns, crmv1.ReportExperiments, crmv1.ReportBudget}}}
	var pdfBytes, csvBytes int
	b.ResetTimer()
	cpu := clock.ProcessCPU()
	for range b.N {
		doc, err := reports.Build(ctx, in, cat, run, today)
		if err != nil {
			b.Fatal(err)
		}
		p, err := reports.PDF(doc)
		if err != nil {
			b.Fatal(err)
		}
		c, err := reports.CSV(doc)
		if err != nil {
			b.Fatal(err)
		}
		pdfBytes, csvBytes = len(p), len(c)
		if len(doc.Campaigns) != campaigns {
			b.Fatalf("%d campaigns in the report", len(doc.Campaigns))
		}
	}
	b.ReportMetric(float64(clock.ProcessCPU()-cpu)/float64(b.N)/1e6, "cpu-ms/report")
	b.ReportMetric(float64(pdfBytes)/1024, "pdf-KiB")
	b.ReportMetric(float64(csvBytes)/1024, "csv-KiB")
}
