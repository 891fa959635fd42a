// Package reports makes the scheduled Report runs the manager publishes to REPORTS: it
// reads the brand's figures as the admin API serves them (the channel report over the
// period, each campaign's report and experiment, budget burn), writes them as PDF (tables
// and charts, DejaVu Sans embedded so Azerbaijani and Russian text survive) and as CSV
// (RFC 4180, formula cells escaped), stores the files in the croupier-reports object store
// (a PDF does not fit in a message) and mails them to the Report's staff recipients through
// the brand's email ChannelPolicy providers, outside player routing.
package reports

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// Source reads the figures the admin API serves (*api.Insight): the counters once, then
// the channel report and each campaign's report from them.
type Source interface {
	Sums(ctx context.Context, brand string, names []string) (map[string]map[string]int64, error)
	ChannelFiguresOf(brand, from, to string, names []string, sums map[string]map[string]int64, byDay bool) api.ChannelReportBody
	CampaignFiguresOf(brand string, cp *flow.Campaign, sum map[string]int64) api.CampaignReportBody
}

// Doc is one report run's content, which the PDF and the CSV both draw.
type Doc struct {
	Brand, Report, Title, Language string
	// From and To are the period's first and last day (YYYY-MM-DD) in Zone.
	From, To, Zone string
	// Generation is the Report's generation the run was made from.
	Generation int64
	Scheduled  time.Time
	Made       time.Time
	Contents   []crmv1.ReportContent
	Channels   api.ChannelReportBody
	Campaigns  []CampaignRow
	Experiment []ArmRow
	Budget     []BudgetRow
}

// CampaignRow is one campaign's line: its counters and report since it started.
type CampaignRow struct {
	Name                                         string
	Targeted, Sent, Delivered, Converted, Grants int64
	Report                                       *crmv1.CampaignReport
}

// ArmRow is one experiment arm.
type ArmRow struct {
	Campaign string
	Arm      crmv1.VariantStatus
}

// BudgetRow is a capped campaign's spend against its total budget.
type BudgetRow struct {
	Campaign, Currency, Budget, Spent string
	// Percent of the budget spent (may exceed 100 by the in-flight reservations' margin).
	Percent float64
}

// Period is the span of days a report covers for a run scheduled at slot, in loc.
func Period(p crmv1.ReportPeriod, slot time.Time, loc *time.Location) (from, to string) {
	day := slot.In(loc)
	d := func(t time.Time) string { return t.Format(time.DateOnly) }
	switch p {
	case crmv1.PeriodToday:
		return d(day), d(day)
	case crmv1.PeriodYesterday:
		y := day.AddDate(0, 0, -1)
		return d(y), d(y)
	case crmv1.PeriodLast30Days:
		return d(day.AddDate(0, 0, -30)), d(day.AddDate(0, 0, -1))
	case crmv1.PeriodMonthToDate:
		return d(time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc)), d(day)
	default: // last7Days
		return d(day.AddDate(0, 0, -7)), d(day.AddDate(0, 0, -1))
	}
}

// Build reads the figures of a run.
func Build(ctx context.Context, src Source, cat *flow.Catalog, run *bus.ReportRun, now time.Time) (*Doc, error) {
	loc, err := time.LoadLocation(run.Spec.Schedule.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("spec.schedule.timeZone: %w", err)
	}
	from, to := Period(run.Spec.Period, run.ScheduledTime, loc)
	title := run.Spec.Title
	if title == "" {
		title = run.Report
	}
	doc := &Doc{Brand: run.Brand, Report: run.Report, Title: title, Language: run.Spec.Language, From: from, To: to,
		Zone: loc.String(), Generation: run.Generation, Scheduled: run.ScheduledTime, Made: now.UTC(), Contents: run.Spec.Contents}
	b := cat.Brand(run.Brand)
	if b == nil {
		return nil, fmt.Errorf("nothing is published for brand %s", run.Brand)
	}
	names := make([]string, 0, len(b.Campaigns))
	for n := range b.Campaigns {
		names = append(names, n)
	}
	sort.Strings(names)
	sums, err := src.Sums(ctx, run.Brand, names)
	if err != nil {
		return nil, err
	}
	doc.Channels = src.ChannelFiguresOf(run.Brand, from, to, names, sums, false)
	for _, n := range names {
		cp := b.Campaigns[n]
		body := src.CampaignFiguresOf(run.Brand, cp, sums[n])
		c := body.Counters
		doc.Campaigns = append(doc.Campaigns, CampaignRow{Name: n, Targeted: c[bus.StatTargeted], Sent: c[bus.StatSent],
			Delivered: c[bus.StatDelivered], Converted: c[bus.StatConverted], Grants: c[bus.StatRewardsGranted], Report: body.Report})
		for _, v := range body.Variants {
			doc.Experiment = append(doc.Experiment, ArmRow{Campaign: n, Arm: v})
		}
		if bt := cp.Config.BudgetTotal; bt != nil && bt.Minor > 0 {
			spent, total := c[bus.StatCostRewards]+c[bus.StatCostMessages], money.MinorToMicros(bt.Minor, bt.Currency)
			doc.Budget = append(doc.Budget, BudgetRow{Campaign: n, Currency: bt.Currency,
				Budget: money.Format(bt.Minor, bt.Currency), Spent: money.FormatMicrosIn(spent, bt.Currency),
				Percent: float64(spent) / float64(total) * 100})
		}
	}
	return doc, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
