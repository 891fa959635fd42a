package report

import (
	"math"
	"strconv"

	"gonum.org/v1/gonum/stat/distuv"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// significance is the p-value below which a difference is called significant.
const significance = 0.05

// arm is one experiment arm's sums from croupier-stats.
type arm struct {
	name                     string
	players, converted       int64
	revenue, revenueSq       float64 // minor units, and their squares
	conversion, revenueMean  float64
	conversionP, revenuePVal float64 // NaN when not computed
}

// Variants compares every arm with the control group (or, without one, with the
// first variant): conversion by Pearson's chi-square test on the 2x2 table, revenue per
// player by Welch's t-test, both with gonum's distributions. A result is significant only
// when both arms reached the experiment's minimum sample size: no peeking.
func Variants(e *crmv1.Experiment, sum map[string]int64) []crmv1.VariantStatus {
	if e == nil {
		return nil
	}
	var arms []*arm
	get := func(name string) *arm {
		a := &arm{name: name, conversionP: math.NaN(), revenuePVal: math.NaN(),
			players:   sum[bus.VariantStat(name, bus.StatVariantPlayers)],
			converted: sum[bus.VariantStat(name, bus.StatVariantConverted)],
			revenue:   float64(sum[bus.VariantStat(name, bus.StatVariantRevenue)]),
			revenueSq: float64(sum[bus.VariantStat(name, bus.StatVariantRevenueSq)])}
		if a.players > 0 {
			a.conversion = float64(a.converted) / float64(a.players)
			a.revenueMean = a.revenue / float64(a.players)
		}
		return a
	}
	if e.ControlPercent > 0 {
		arms = append(arms, get("control"))
	}
	for _, v := range e.Variants {
		arms = append(arms, get(v.Name))
	}
	min := int64(e.MinSampleSize)
	if min <= 0 {
		min = 1000
	}
	base := arms[0]
	out := make([]crmv1.VariantStatus, 0, len(arms))
	for i, a := range arms {
		vs := crmv1.VariantStatus{Name: a.name, Players: a.players, Converted: a.converted}
		if a.players > 0 {
			vs.ConversionRate = strconv.FormatFloat(a.conversion, 'f', 4, 64)
			vs.RevenuePerPlayer = strconv.FormatFloat(a.revenueMean/100, 'f', 2, 64)
		}
		armCost(&vs, sum)
		if i > 0 {
			if p := chiSquareP(base, a); !math.IsNaN(p) {
				vs.PValue = strconv.FormatFloat(p, 'f', 4, 64)
				a.conversionP = p
			}
			if p := welchP(base, a); !math.IsNaN(p) {
				vs.RevenuePValue = strconv.FormatFloat(p, 'f', 4, 64)
				a.revenuePVal = p
			}
			vs.Significant = base.players >= min && a.players >= min &&
				(a.conversionP < significance || a.revenuePVal < significance)
		}
		out = append(out, vs)
	}
	return out
}

// chiSquareP is the p-value of Pearson's chi-square test (one degree of freedom) of
// converted versus not between two arms; NaN when a margin is empty.
func chiSquareP(x, y *arm) float64 {
	a, b := float64(x.converted), float64(x.players-x.converted)
	c, d := float64(y.converted), float64(y.players-y.converted)
	n := a + b + c + d
	den := (a + b) * (c + d) * (a + c) * (b + d)
	if den == 0 {
		return math.NaN()
	}
	stat := n * (a*d - b*c) * (a*d - b*c) / den
	return distuv.ChiSquared{K: 1}.Survival(stat)
}

// welchP is the two-sided p-value of Welch's t-test of revenue per player between two
// arms, from each arm's sum and sum of squares; NaN with fewer than two players in an
// arm or no variance at all.
func welchP(x, y *arm) float64 {
	n1, n2 := float64(x.players), float64(y.players)
	if n1 < 2 || n2 < 2 {
		return math.NaN()
	}
	v1 := (x.revenueSq - n1*x.revenueMean*x.revenueMean) / (n1 - 1)
	v2 := (y.revenueSq - n2*y.revenueMean*y.revenueMean) / (n2 - 1)
	se1, se2 := math.Max(v1, 0)/n1, math.Max(v2, 0)/n2
	if se1+se2 == 0 {
		return math.NaN()
	}
	t := (x.revenueMean - y.revenueMean) / math.Sqrt(se1+se2)
	df := (se1 + se2) * (se1 + se2) / (se1*se1/(n1-1) + se2*se2/(n2-1))
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
}
