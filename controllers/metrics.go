package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// budgetUsed is the share of each Campaign's total budget spent, for the "budget near the
// cap" alert (config/prometheus).
var budgetUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "croupier_campaign_budget_used_ratio",
	Help: "Share of the Campaign's total budget spent (rewards plus settled message costs)."}, []string{"namespace", "campaign"})

func init() { crmetrics.Registry.MustRegister(budgetUsed) }
