package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Money is an amount in a currency, written in manifests as a decimal string and kept as
// int64 minor units inside Croupier.
type Money struct {
	// amount is a non-negative decimal string, e.g. "50000.00" or "5". Budgets and rewards
	// take at most the currency's minor digits; per-message costs up to 6 ("0.002").
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,15}([.][0-9]{1,6})?$')",message="amount must be a decimal string such as \"50000.00\" (digits, at most 6 after the point)"
	Amount string `json:"amount"`
	// currency is the ISO 4217 code, e.g. AZN, RUB, USD, EUR.
	// +required
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Z]{3}$')",message="currency must be a three-letter ISO 4217 code such as AZN"
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=3
	Currency string `json:"currency"`
}

// Category is the kind of message a Campaign sends; the PreferencePolicy decides per
// category what a player may switch off and when messages may arrive.
// +kubebuilder:validation:Enum=marketing;service;responsibleGaming
type Category string

const (
	// CategoryMarketing is promotions and offers; players choose per channel.
	CategoryMarketing Category = "marketing"
	// CategoryService is transactional messages (payments, KYC, security); mandatory by default.
	CategoryService Category = "service"
	// CategoryResponsibleGaming is limit warnings and safer-gambling notices; mandatory by default.
	CategoryResponsibleGaming Category = "responsibleGaming"
)

// Channel is a delivery channel.
// +kubebuilder:validation:Enum=email;sms;viber;push;webPush;inApp;webhook
type Channel string

// The delivery channels.
const (
	ChannelEmail   Channel = "email"
	ChannelSMS     Channel = "sms"
	ChannelViber   Channel = "viber"
	ChannelPush    Channel = "push"
	ChannelWebPush Channel = "webPush"
	ChannelInApp   Channel = "inApp"
	ChannelWebhook Channel = "webhook"
)

// EventType is a player event type such as deposit.completed; unknown types are allowed.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^[a-z][a-zA-Z0-9_-]*(\.[a-z][a-zA-Z0-9_-]*)*$`
type EventType string

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ConfigMapKeyReference names one key of a ConfigMap in the same namespace.
type ConfigMapKeyReference struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in the ConfigMap's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// SecretKeyReference names one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in the Secret's data; each provider documents the keys it reads when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// TimeWindow is a span of time; either end may be open.
// +kubebuilder:validation:XValidation:rule="!has(self.start) || !has(self.end) || timestamp(self.end) > timestamp(self.start)",message="end must be after start"
type TimeWindow struct {
	// start is the first moment of the window (RFC 3339); open when absent.
	// +optional
	Start *metav1.Time `json:"start,omitempty"`
	// end is the moment the window closes (RFC 3339); open when absent.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
}

// CommonStatus is the status every Croupier kind carries.
type CommonStatus struct {
	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready always; Reconciling and Stalled only while true.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}
