// Package report turns a Campaign's summed partition counters into the figures people
// read: the experiment's results per arm and the campaign's cost, revenue and CPA. The
// manager writes them into status; the dispatcher's admin API serves the same report.
package report

import (
	"sort"
	"strconv"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// Currency is the currency a Campaign's report is in: its budget's, else its rewards'.
func Currency(spec *crmv1.CampaignSpec) string {
	if b := spec.Budget; b != nil {
		for _, m := range []*crmv1.Money{b.Total, b.PerPlayer} {
			if m != nil {
				return m.Currency
			}
		}
		if b.PerPeriod != nil {
			return b.PerPeriod.Amount.Currency
		}
	}
	for _, r := range spec.Rewards {
		switch {
		case r.FreeSpins != nil:
			return r.FreeSpins.SpinValue.Currency
		case r.MatchDeposit != nil:
			return r.MatchDeposit.Cap.Currency
		case r.Cashback != nil:
			return r.Cashback.Cap.Currency
		case r.Coupon != nil:
			return r.Coupon.Value.Currency
		}
	}
	return ""
}

// Campaign is the Campaign's report from its summed counters; nil before anything
// happened.
func Campaign(spec *crmv1.CampaignSpec, sum map[string]int64) *crmv1.CampaignReport {
	grants, rewards, messages := sum[bus.StatRewardsGranted], sum[bus.StatCostRewards], sum[bus.StatCostMessages]
	conv, revenue := sum[bus.StatConverted], sum[bus.StatRevenue]
	if grants == 0 && rewards == 0 && messages == 0 && conv == 0 && revenue == 0 {
		return nil
	}
	leads := sum[bus.StatLeads]
	r := &crmv1.CampaignReport{Currency: Currency(spec), Grants: grants, Conversions: conv, Leads: leads,
		RewardCost: money.FormatMicros(rewards), MessageCost: money.FormatMicros(messages),
		Revenue: minorString(revenue)}
	if conv > 0 {
		r.CPA = money.FormatMicros((rewards + messages) / conv)
	}
	if leads > 0 {
		r.CPL = money.FormatMicros((rewards + messages) / leads)
	}
	r.ROI = ROI(revenue, rewards+messages)
	return r
}

// ROI is (revenue - cost) / cost as a ratio with two decimals, revenue in minor units of
// a two-digit currency and cost in micros; "" when nothing was spent.
func ROI(revenueMinor, costMicros int64) string {
	if costMicros <= 0 {
		return ""
	}
	return strconv.FormatFloat(float64(revenueMinor*10_000-costMicros)/float64(costMicros), 'f', 2, 64)
}

// armCost fills an arm's grants, cost and CPA.
func armCost(vs *crmv1.VariantStatus, sum map[string]int64) {
	vs.Grants = sum[bus.VariantStat(vs.Name, bus.StatRewardsGranted)]
	cost := sum[bus.VariantStat(vs.Name, bus.StatCostRewards)] + sum[bus.VariantStat(vs.Name, bus.StatCostMessages)]
	if cost > 0 || vs.Players > 0 {
		vs.Cost = money.FormatMicros(cost)
	}
	if vs.Converted > 0 {
		vs.CPA = money.FormatMicros(cost / vs.Converted)
	}
}

// minorString writes minor units of a two-digit currency as a decimal string.
func minorString(minor int64) string {
	return strconv.FormatFloat(float64(minor)/100, 'f', 2, 64)
}

// Channels is a Campaign's figures per channel from its summed counters (ChannelStat),
// in the order of crmv1's channels; channels with nothing counted are left out.
func Channels(sum map[string]int64) []crmv1.ChannelReport {
	var out []crmv1.ChannelReport
	for _, ch := range channelOrder {
		get := func(name string) int64 { return sum[bus.ChannelStat(ch, name)] }
		r := crmv1.ChannelReport{Channel: ch, Sent: get(bus.StatSent), Delivered: get(bus.StatDelivered), Failed: get(bus.StatFailed),
			Undelivered: get(bus.StatUndelivered), Opened: get(bus.StatOpened), Clicked: get(bus.StatClicked), Bounced: get(bus.StatBounced),
			Complaints: get(bus.StatComplaints), Unsubscribes: get(bus.StatUnsubscribes), Converted: get(bus.StatConverted),
			Leads: get(bus.StatLeads)}
		cost, revenue := get(bus.StatCostMessages), get(bus.StatRevenue)
		if r == (crmv1.ChannelReport{Channel: ch}) && cost == 0 && revenue == 0 {
			continue
		}
		if cost > 0 {
			r.MessageCost = money.FormatMicros(cost)
		}
		if revenue > 0 {
			r.Revenue = minorString(revenue)
		}
		if r.Converted > 0 {
			r.CPA = money.FormatMicros(cost / r.Converted)
		}
		if r.Leads > 0 {
			r.CPL = money.FormatMicros(cost / r.Leads)
		}
		r.ROI = ROI(revenue, cost)
		out = append(out, r)
	}
	return out
}

var channelOrder = []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelSMS, crmv1.ChannelViber, crmv1.ChannelPush,
	crmv1.ChannelWebPush, crmv1.ChannelInApp, crmv1.ChannelWebhook}

// SegmentRow is a campaign's figures for the players with one value of a dimension (a VIP
// level, a country, an RFM segment) when they were counted.
type SegmentRow struct {
	Value     string `json:"value"`
	Targeted  int64  `json:"targeted,omitempty"`
	Sent      int64  `json:"sent,omitempty"`
	Converted int64  `json:"converted,omitempty"`
	// ConversionRate is converted / targeted with four decimals.
	ConversionRate string `json:"conversionRate,omitempty"`
}

// Segments is a campaign's figures by one dimension from its summed counters
// (SegmentStat), the values with the most targeted players first.
func Segments(sum map[string]int64, dim string) []SegmentRow {
	rows := map[string]*SegmentRow{}
	for k, v := range sum {
		d, value, name, ok := bus.ParseSegmentStat(k)
		if !ok || d != dim {
			continue
		}
		r := rows[value]
		if r == nil {
			r = &SegmentRow{Value: value}
			rows[value] = r
		}
		switch name {
		case bus.StatTargeted:
			r.Targeted += v
		case bus.StatSent:
			r.Sent += v
		case bus.StatConverted:
			r.Converted += v
		}
	}
	out := make([]SegmentRow, 0, len(rows))
	for _, r := range rows {
		if r.Targeted > 0 {
			r.ConversionRate = strconv.FormatFloat(float64(r.Converted)/float64(r.Targeted), 'f', 4, 64)
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Targeted != out[j].Targeted {
			return out[i].Targeted > out[j].Targeted
		}
		return out[i].Value < out[j].Value
	})
	return out
}
