package flow

import (
	"fmt"
	"testing"
	"time"
)

// TestMandatoryPendingIsNeverTrimmed: beyond MaxPending the oldest marketing sends go, but a
// mandatory message inside its deadline stays however old and however many follow it, so
// its late failure report still finds it; past its deadline it is trimmed like the rest.
func TestMandatoryPendingIsNeverTrimmed(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ps := &PlayerState{}
	ps.addPending(Pending{DecisionID: "receipt", At: now.Add(-2 * PendingFor).Unix(), Deadline: now.Add(time.Hour).Unix()}, now)
	ps.addPending(Pending{DecisionID: "expired", At: now.Unix(), Deadline: now.Add(-time.Second).Unix()}, now)
	for i := range MaxPending + 5 {
		ps.addPending(Pending{DecisionID: fmt.Sprintf("m-%d", i), At: now.Unix()}, now)
	}
	if len(ps.Pending) != MaxPending {
		t.Fatalf("%d pending, want %d", len(ps.Pending), MaxPending)
	}
	var receipt, expired bool
	for _, p := range ps.Pending {
		receipt = receipt || p.DecisionID == "receipt"
		expired = expired || p.DecisionID == "expired"
	}
	if !receipt || expired {
		t.Errorf("mandatory inside its deadline kept: %v (want true); past it kept: %v (want false)", receipt, expired)
	}
}
