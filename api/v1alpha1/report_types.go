package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReportFormat is an attachment's format.
// +kubebuilder:validation:Enum=PDF;CSV
type ReportFormat string

// Report formats.
const (
	ReportPDF ReportFormat = "PDF"
	ReportCSV ReportFormat = "CSV"
)

// ReportContent is one section of a report.
// +kubebuilder:validation:Enum=channels;campaigns;experiments;budget
type ReportContent string

// Report sections.
const (
	// ReportChannels is the brand's channel report over the period (docs/analytics.md).
	ReportChannels ReportContent = "channels"
	// ReportCampaigns lists the campaigns with their counters, cost, CPA and ROI.
	ReportCampaigns ReportContent = "campaigns"
	// ReportExperiments is each experiment's arms with conversion and p-value.
	ReportExperiments ReportContent = "experiments"
	// ReportBudget is each capped campaign's spend against its budget.
	ReportBudget ReportContent = "budget"
)

// ReportPeriod is the span of the brand's days a report covers, ending with the day of
// its scheduled time (today) or the day before.
// +kubebuilder:validation:Enum=today;yesterday;last7Days;last30Days;monthToDate
type ReportPeriod string

// Report periods.
const (
	PeriodToday       ReportPeriod = "today"
	PeriodYesterday   ReportPeriod = "yesterday"
	PeriodLast7Days   ReportPeriod = "last7Days"
	PeriodLast30Days  ReportPeriod = "last30Days"
	PeriodMonthToDate ReportPeriod = "monthToDate"
)

// ReportSpec is a scheduled report mailed to staff.
type ReportSpec struct {
	// schedule is when the report is made: cron and IANA time zone.
	// +required
	Schedule ReportSchedule `json:"schedule"`
	// recipients are the staff addresses the report is mailed to, through the brand's email
	// ChannelPolicy providers, outside player routing.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=254
	// +kubebuilder:validation:items:Pattern=`^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$`
	Recipients []string `json:"recipients"`
	// formats are the attachments: PDF, CSV or both.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	Formats []ReportFormat `json:"formats"`
	// contents are the sections, in this order (default: all four).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	Contents []ReportContent `json:"contents,omitempty"`
	// period is the span of days the figures cover (default last7Days: the seven days
	// before the scheduled day).
	// +optional
	// +kubebuilder:default=last7Days
	Period ReportPeriod `json:"period,omitempty"`
	// language of the report's text: en, az or ru (default en).
	// +optional
	// +kubebuilder:default=en
	// +kubebuilder:validation:Enum=en;az;ru
	Language string `json:"language,omitempty"`
	// title heads the report and the mail's subject (default: the Report's name).
	// +optional
	// +kubebuilder:validation:MaxLength=200
	Title string `json:"title,omitempty"`
	// suspend stops new runs; a run already published is still made.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ReportSchedule is a report's cron in a time zone.
type ReportSchedule struct {
	// cron is a five-field cron expression, e.g. "0 8 * * 1" (Mondays at 08:00).
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=128
	Cron string `json:"cron"`
	// timeZone is the IANA zone the cron and the period's days are read in.
	// +optional
	// +kubebuilder:default="Asia/Baku"
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
}

// ReportStatus is the observed state of a Report.
type ReportStatus struct {
	CommonStatus `json:",inline"`
	// lastScheduleTime is the last scheduled time dealt with (published or skipped).
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// lastRunTime is the scheduled time of the last run published to the dispatchers.
	// +optional
	LastRunTime *metav1.Time `json:"lastRunTime,omitempty"`
	// nextRunTime is the next scheduled time.
	// +optional
	NextRunTime *metav1.Time `json:"nextRunTime,omitempty"`
	// lastSentTime is when the last run's mail was accepted by a provider for every
	// recipient.
	// +optional
	LastSentTime *metav1.Time `json:"lastSentTime,omitempty"`
	// lastError is why the last run was not made or not mailed ("" when it was).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}

// Report mails a brand's figures to staff as PDF and CSV on a schedule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rpt,categories=croupier
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Cron",type=string,JSONPath=`.spec.schedule.cron`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextRunTime`
// +kubebuilder:printcolumn:name="Sent",type=date,JSONPath=`.status.lastSentTime`
// +kubebuilder:printcolumn:name="Error",type=string,JSONPath=`.status.lastError`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.contains('.')",message="Report names must not contain dots: the name becomes a NATS subject token"
type Report struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec defines the report.
	// +required
	Spec ReportSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ReportStatus `json:"status,omitempty"`
}

// ReportList is a list of Reports.
//
// +kubebuilder:object:root=true
type ReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Report `json:"items"`
}

// Common returns the status every kind shares.
func (r *Report) Common() *CommonStatus { return &r.Status.CommonStatus }

func init() {
	SchemeBuilder.Register(&Report{}, &ReportList{})
}
