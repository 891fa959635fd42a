package report

import (
	"reflect"
	"testing"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// Reference values computed independently (mpmath): chi-square 6.2598, p 0.012351 for
// 200/2000 against 250/2000; Welch's t -2.4254 with 3906.6 degrees of freedom, p 0.015338
// for means 10.00 and 12.50 AZN with standard deviations 30 and 35 AZN.
func TestVariantResults(t *testing.T) {
	e := &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 45}, {Name: "b", Weight: 45}}, ControlPercent: 10, MinSampleSize: 2000}
	sum := map[string]int64{
		bus.VariantStat("control", bus.StatVariantPlayers): 2000, bus.VariantStat("control", bus.StatVariantConverted): 200,
		bus.VariantStat("control", bus.StatVariantRevenue): 2000 * 1000, bus.VariantStat("control", bus.StatVariantRevenueSq): 19_991_000_000,
		bus.VariantStat("a", bus.StatVariantPlayers): 2000, bus.VariantStat("a", bus.StatVariantConverted): 250,
		bus.VariantStat("a", bus.StatVariantRevenue): 2000 * 1250, bus.VariantStat("a", bus.StatVariantRevenueSq): 27_612_750_000,
		bus.VariantStat("b", bus.StatVariantPlayers): 1999, bus.VariantStat("b", bus.StatVariantConverted): 260,
	}
	got := Variants(e, sum)
	if len(got) != 3 || got[0].Name != "control" || got[1].Name != "a" || got[2].Name != "b" {
		t.Fatalf("arms %+v", got)
	}
	if c := got[0]; c.PValue != "" || c.Significant || c.ConversionRate != "0.1000" || c.RevenuePerPlayer != "10.00" {
		t.Fatalf("control %+v", c)
	}
	a := got[1]
	if a.PValue != "0.0124" || a.RevenuePValue != "0.0153" || a.ConversionRate != "0.1250" || a.RevenuePerPlayer != "12.50" || !a.Significant {
		t.Fatalf("variant a %+v", a)
	}
	// b converts even better but has 1,999 players: below the minimum sample, no verdict.
	if b := got[2]; b.PValue == "" || b.Significant {
		t.Fatalf("variant b %+v", b)
	}
	// Without a control group the first variant is the baseline.
	e.ControlPercent = 0
	if got := Variants(e, sum); len(got) != 2 || got[0].PValue != "" || got[1].PValue == "" {
		t.Fatalf("no control %+v", got)
	}
	// Nothing measured yet: no rates, no p-values, nothing significant.
	for _, v := range Variants(e, map[string]int64{}) {
		if v.PValue != "" || v.RevenuePValue != "" || v.Significant || v.ConversionRate != "" {
			t.Fatalf("empty %+v", v)
		}
	}
}

func TestCampaignReport(t *testing.T) {
	spec := &crmv1.CampaignSpec{Budget: &crmv1.Budget{Total: &crmv1.Money{Amount: "1000.00", Currency: "AZN"}}}
	if r := Campaign(spec, map[string]int64{}); r != nil {
		t.Fatalf("nothing happened yet: %+v", r)
	}
	r := Campaign(spec, map[string]int64{bus.StatRewardsGranted: 40, bus.StatCostRewards: 40_000_000, bus.StatCostMessages: 1_500_000,
		bus.StatConverted: 8, bus.StatRevenue: 123_450, bus.StatLeads: 4})
	// cost 41.50; CPA 41.50/8; CPL 41.50/4 = 10.375; ROI (1234.50-41.50)/41.50 = 28.7469...
	if r.Currency != "AZN" || r.Grants != 40 || r.RewardCost != "40" || r.MessageCost != "1.5" || r.Revenue != "1234.50" || r.CPA != "5.1875" ||
		r.Leads != 4 || r.CPL != "10.375" || r.ROI != "28.75" {
		t.Fatalf("report %+v", r)
	}
	e := &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 100}}}
	v := Variants(e, map[string]int64{bus.VariantStat("a", bus.StatVariantPlayers): 10, bus.VariantStat("a", bus.StatVariantConverted): 4,
		bus.VariantStat("a", bus.StatRewardsGranted): 10, bus.VariantStat("a", bus.StatCostRewards): 10_000_000, bus.VariantStat("a", bus.StatCostMessages): 20_000})
	if a := v[0]; a.Grants != 10 || a.Cost != "10.02" || a.CPA != "2.505" {
		t.Fatalf("arm %+v", a)
	}
}

// TestChannels: the per-channel figures from summed counters, hand-computed: email sent
// 1,000 messages for 2.50 (2,500,000 micros) and 5 attributed conversions (CPA 0.50), 2 of
// them leads, with 120.00 of deposits; SMS failed twice and cost nothing; push counted
// nothing (left out).
func TestChannels(t *testing.T) {
	sum := map[string]int64{
		bus.ChannelStat(crmv1.ChannelEmail, bus.StatSent): 1000, bus.ChannelStat(crmv1.ChannelEmail, bus.StatOpened): 310,
		bus.ChannelStat(crmv1.ChannelEmail, bus.StatClicked): 42, bus.ChannelStat(crmv1.ChannelEmail, bus.StatBounced): 7,
		bus.ChannelStat(crmv1.ChannelEmail, bus.StatComplaints): 1, bus.ChannelStat(crmv1.ChannelEmail, bus.StatConverted): 5,
		bus.ChannelStat(crmv1.ChannelEmail, bus.StatCostMessages): 2_500_000, bus.ChannelStat(crmv1.ChannelEmail, bus.StatRevenue): 12_000,
		bus.ChannelStat(crmv1.ChannelSMS, bus.StatFailed): 2, bus.StatSent: 1000,
		bus.ChannelStat(crmv1.ChannelEmail, bus.StatLeads): 2,
	}
	got := Channels(sum)
	want := []crmv1.ChannelReport{
		// CPL 2.50/2; ROI (120.00-2.50)/2.50 = 47.
		{Channel: crmv1.ChannelEmail, Sent: 1000, Opened: 310, Clicked: 42, Bounced: 7, Complaints: 1, Converted: 5, MessageCost: "2.5", Revenue: "120.00", CPA: "0.5",
			Leads: 2, CPL: "1.25", ROI: "47.00"},
		{Channel: crmv1.ChannelSMS, Failed: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Channels:\n got %+v\nwant %+v", got, want)
	}
}

// TestSegments: figures by VIP level from summed counters, hand-computed: level 3
// targeted 10, sent 8, converted 2 (0.2000); level 0 targeted 40, converted 1 (0.0250);
// the country counters are another dimension's.
func TestSegments(t *testing.T) {
	sum := map[string]int64{
		bus.SegmentStat(bus.DimVIP, "3", bus.StatTargeted): 10, bus.SegmentStat(bus.DimVIP, "3", bus.StatSent): 8,
		bus.SegmentStat(bus.DimVIP, "3", bus.StatConverted): 2, bus.SegmentStat(bus.DimVIP, "0", bus.StatTargeted): 40,
		bus.SegmentStat(bus.DimVIP, "0", bus.StatConverted): 1, bus.SegmentStat(bus.DimCountry, "AZ", bus.StatTargeted): 50,
		bus.StatTargeted: 50,
	}
	got := Segments(sum, bus.DimVIP)
	want := []SegmentRow{{Value: "0", Targeted: 40, Converted: 1, ConversionRate: "0.0250"}, {Value: "3", Targeted: 10, Sent: 8, Converted: 2, ConversionRate: "0.2000"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Segments:\n got %+v\nwant %+v", got, want)
	}
	if rows := Segments(sum, bus.DimRFM); len(rows) != 0 {
		t.Fatalf("rfm: %+v", rows)
	}
}
