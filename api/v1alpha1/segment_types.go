package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SegmentSpec defines a group of players by a CEL rule over their profile.
type SegmentSpec struct {
	// description says in plain words who is in the segment.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
	// rule is a CEL expression over `player` that is true for members, e.g.
	// `player.ltv > 500.0 && player.country == "AZ" && player.rfm.r <= 2`. The controller
	// compiles it and reports errors with their position.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Rule string `json:"rule"`
	// refresh says when membership is re-evaluated.
	// +optional
	Refresh *SegmentRefresh `json:"refresh,omitempty"`
}

// SegmentRefresh says when a Segment is re-evaluated.
type SegmentRefresh struct {
	// interval is how often every player is re-evaluated (at least 1m; default 1h).
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="refresh.interval must be at least 1m"
	Interval *metav1.Duration `json:"interval,omitempty"`
	// events are event types that re-evaluate the one player they concern at once, e.g.
	// deposit.completed for a "depositors" segment.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Events []EventType `json:"events,omitempty"`
}

// SegmentStatus is the observed state of a Segment.
type SegmentStatus struct {
	CommonStatus `json:",inline"`
	// memberCount is the number of players in the segment at the last evaluation, summed
	// over every partition.
	// +optional
	MemberCount *int64 `json:"memberCount,omitempty"`
	// lastEvaluationTime is when the last full evaluation finished.
	// +optional
	LastEvaluationTime *metav1.Time `json:"lastEvaluationTime,omitempty"`
}

// Segment is a group of a brand's players defined by a CEL rule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=seg;segs,categories=croupier
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.memberCount`
// +kubebuilder:printcolumn:name="Evaluated",type=date,JSONPath=`.status.lastEvaluationTime`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.contains('.')",message="Segment names must not contain dots: the name becomes a NATS subject token"
type Segment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec defines the segment.
	// +required
	Spec SegmentSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status SegmentStatus `json:"status,omitempty"`
}

// SegmentList is a list of Segments.
//
// +kubebuilder:object:root=true
type SegmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Segment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Segment{}, &SegmentList{})
}
