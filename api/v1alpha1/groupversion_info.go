// Package v1alpha1 contains the Croupier CRM API: Campaign, Segment, ChannelPolicy and
// PreferencePolicy. A namespace is one casino brand.
//
// +kubebuilder:object:generate=true
// +groupName=crm.croupier.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Croupier kind.
	GroupVersion = schema.GroupVersion{Group: "crm.croupier.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Croupier kinds to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Croupier kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// AdminGroup is the API group of the dispatcher's virtual admin resources, authorized by
// SubjectAccessReview in the brand's namespace.
const AdminGroup = "admin.crm.croupier.dev"

// Virtual admin resources (resource/subresource) checked by the dispatcher's admin API.
const (
	AdminPlayersImport     = "players/import"
	AdminPlayersErase      = "players/erase"
	AdminPlayersExport     = "players/export"
	AdminPlayersExplain    = "players/explain"
	AdminPlayersHistory    = "players/history"
	AdminCampaignsPreview  = "campaigns/preview"
	AdminCampaignsTestSend = "campaigns/testsend"
	// AdminCouponsImport adds partner-issued codes to an imported coupon pool.
	AdminCouponsImport = "coupons/import"
	// AdminCampaignsReport is a Campaign's cost, revenue and experiment report.
	AdminCampaignsReport = "campaigns/report"
	// AdminPlayersPreferences is a player's preferences changed by the support desk.
	AdminPlayersPreferences = "players/preferences"
	// AdminSuppressions is the brand-wide suppression list.
	AdminSuppressions = "suppressions"
	// AdminConsentReport is the consent report (no marketing after a withdrawal).
	AdminConsentReport = "consent/report"
)

// AdminResources lists every virtual admin resource (for kubectl croupier can-i).
var AdminResources = []string{AdminPlayersImport, AdminPlayersErase, AdminPlayersExport, AdminPlayersExplain, AdminPlayersHistory,
	AdminPlayersPreferences, AdminCampaignsPreview, AdminCampaignsTestSend, AdminCampaignsReport, AdminCouponsImport,
	AdminSuppressions, AdminConsentReport}
