package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

func TestStalledUntilTopologyExists(t *testing.T) {
	if topologyMissing == nil {
		t.Fatal("TestMain did not record the condition")
	}
	if topologyMissing.Status != metav1.ConditionFalse || topologyMissing.Reason != crmv1.ReasonNATSTopologyMissing {
		t.Fatalf("Ready before the topology existed = %s/%s, want False/%s", topologyMissing.Status, topologyMissing.Reason, crmv1.ReasonNATSTopologyMissing)
	}
	if !strings.Contains(topologyMissing.Message, "EVENTS") || !strings.Contains(topologyMissing.Message, "croupier-config") {
		t.Fatalf("message does not name what is missing: %q", topologyMissing.Message)
	}
	seg := &crmv1.Segment{}
	seg.Namespace, seg.Name = topologySegment.Namespace, topologySegment.Name
	waitCondition(t, seg, crmv1.ConditionReady, metav1.ConditionTrue, crmv1.ReasonPublished)
	for _, c := range seg.Status.Conditions {
		if c.Type == crmv1.ConditionStalled {
			t.Fatalf("Stalled still present after the topology appeared: %+v", c)
		}
	}
}
