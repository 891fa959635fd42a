// Package bus is the NATS contract shared by the manager and the dispatcher: subjects,
// stream and KV topology, message types and codecs, the partition function and the
// embedded-server helper. No other package assembles a subject by hand.
package bus

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Root is the first token of every Croupier subject.
const Root = "croupier"

// Stream names.
const (
	StreamEvents     = "EVENTS"
	StreamDeadLetter = "DEADLETTER"
	StreamRuns       = "RUNS"
	StreamIntents    = "INTENTS"
	StreamDeliveries = "DELIVERIES"
	StreamOutcomes   = "OUTCOMES"
	StreamRewards    = "REWARDS"
	StreamConsent    = "CONSENT"
	StreamAudit      = "AUDIT"
	// StreamReports is the work queue of scheduled report runs (one dispatcher makes each).
	StreamReports = "REPORTS"
)

// KV bucket names.
const (
	BucketConfig  = "croupier-config"
	BucketPlayers = "croupier-players"
	BucketPrefs   = "croupier-prefs"
	BucketState   = "croupier-state"
	BucketLeases  = "croupier-leases"
	BucketBudget  = "croupier-budget"
	BucketCoupons = "croupier-coupons"
	BucketInbox   = "croupier-inbox"
	// BucketKeys holds one data key per player (<brand>.<part>.<player>): contact data
	// and message bodies are sealed with it, and erasure destroys it (internal/datakey).
	BucketKeys  = "croupier-keys"
	BucketLinks = "croupier-links"
	// LinkTTL is how long a short link works.
	LinkTTL     = 90 * 24 * time.Hour
	BucketStats = "croupier-stats"
	// BucketReportRuns holds each report run's result (<brand>.<report>.<slot>); the manager
	// reads it into the Report's status.
	BucketReportRuns = "croupier-report-runs"
	// ObjectReports is the object store of report attachments (<brand>/<report>/<slot>/<file>):
	// a PDF does not fit in a message.
	ObjectReports = "croupier-reports"
)

// Kind tokens used in config keys, audit subjects and stats keys.
const (
	KindCampaign         = "campaign"
	KindSegment          = "segment"
	KindChannelPolicy    = "channelpolicy"
	KindPreferencePolicy = "preferencepolicy"
	KindReport           = "report"
	KindConfigMap        = "configmap"
	KindPlayer           = "player"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidToken reports whether s may be used as a brand or player id: one NATS subject token
// of [A-Za-z0-9_-], 1 to 128 characters.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// CheckToken returns a clear error naming the field when s is not a valid token.
func CheckToken(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	if !tokenRE.MatchString(s) {
		return fmt.Errorf("%s: %q must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'", field, s)
	}
	return nil
}

var eventTypeRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9_-]*(\.[a-z][a-zA-Z0-9_-]*)*$`)

// ValidEventType reports whether t is a well-formed event type (dot-separated tokens).
func ValidEventType(t string) bool { return len(t) <= 128 && eventTypeRE.MatchString(t) }

// NameToken turns a Kubernetes object name (DNS label or subdomain without dots for the
// kinds whose names become tokens) into a subject token. Campaign and Segment names are
// forbidden to contain dots by the CRDs; policies may, so dots are mapped to '_' there.
func NameToken(name string) string { return strings.ReplaceAll(name, ".", "_") }

// EventSubject is where a platform publishes an event: croupier.events.<brand>.<player>.<type>.
func EventSubject(brand, player, eventType string) string {
	return Root + ".events." + brand + "." + player + "." + eventType
}

// StoredEventSubject is the subject the EVENTS stream stores an event under after the
// partitioning transform: croupier.ev.<brand>.<part>.<player>.<type>.
func StoredEventSubject(brand string, part int, player, eventType string) string {
	return Root + ".ev." + brand + "." + strconv.Itoa(part) + "." + player + "." + eventType
}

// StoredEventFilter selects one partition's events in EVENTS.
func StoredEventFilter(part int) string { return Root + ".ev.*." + strconv.Itoa(part) + ".>" }

// StoredPlayerEventsFilter selects one player's stored events (for erasure).
func StoredPlayerEventsFilter(brand string, part int, player string) string {
	return Root + ".ev." + brand + "." + strconv.Itoa(part) + "." + player + ".>"
}

// UntransformedEventsFilter selects events stored without the transform (no type token);
// they are moved to DEADLETTER.
const UntransformedEventsFilter = Root + ".events.>"

// DeadLetterSubject is croupier.deadletter.<source stream>.
func DeadLetterSubject(source string) string { return Root + ".deadletter." + strings.ToLower(source) }

// RunSubject is croupier.runs.<brand>.<campaign>.
func RunSubject(brand, campaign string) string { return Root + ".runs." + brand + "." + campaign }

// ReportRunSubject is croupier.reports.<brand>.<report>.
func ReportRunSubject(brand, report string) string {
	return Root + ".reports." + brand + "." + report
}

// reportSlot writes a report run's scheduled time in its key and its files' names.
const reportSlot = "20060102T150405Z"

// ReportRunKey is a report run's key in croupier-report-runs: <brand>.<report>.<slot>.
func ReportRunKey(brand, report string, slot time.Time) string {
	return brand + "." + report + "." + slot.UTC().Format(reportSlot)
}

// ReportRunSlot is the scheduled time a ReportRunKey names.
func ReportRunSlot(key string) (time.Time, error) {
	return time.Parse(reportSlot, key[strings.LastIndexByte(key, '.')+1:])
}

// ReportObject is the name of a run's file in the croupier-reports object store:
// <brand>/<report>/<slot>/<file>.
func ReportObject(brand, report string, slot time.Time, file string) string {
	return brand + "/" + report + "/" + slot.UTC().Format(reportSlot) + "/" + file
}

// ReportFileType is a report file's Content-Type, mailed or downloaded.
func ReportFileType(name string) string {
	if strings.HasSuffix(name, ".pdf") {
		return "application/pdf"
	}
	return "text/csv; charset=utf-8; header=present"
}

// IntentSubject is croupier.intents.<brand>.<part>.<player>.
func IntentSubject(brand string, part int, player string) string {
	return Root + ".intents." + brand + "." + strconv.Itoa(part) + "." + player
}

// IntentFilter selects one partition's intents.
func IntentFilter(part int) string { return Root + ".intents.*." + strconv.Itoa(part) + ".*" }

// ScheduleSubject is croupier.sched.<brand>.<part>.<player>.<campaign>.<flow-instance>.<step>:
// a second schedule on the same subject replaces the first.
func ScheduleSubject(brand string, part int, player, campaign, flowInstance, step string) string {
	return Root + ".sched." + brand + "." + strconv.Itoa(part) + "." + player + "." + campaign + "." + flowInstance + "." + step
}

// PlayerSchedulesFilter selects a player's schedules (for erasure).
func PlayerSchedulesFilter(brand string, part int, player string) string {
	return Root + ".sched." + brand + "." + strconv.Itoa(part) + "." + player + ".>"
}

// DeliverySubject is croupier.deliveries.<channel>.<brand>.<part>.<player>.
func DeliverySubject(channel, brand string, part int, player string) string {
	return Root + ".deliveries." + channel + "." + brand + "." + strconv.Itoa(part) + "." + player
}

// DeliveryFilter selects one channel's delivery jobs.
func DeliveryFilter(channel string) string { return Root + ".deliveries." + channel + ".>" }

// OutcomeSubject is croupier.outcomes.<brand>.<part>.<player>.
func OutcomeSubject(brand string, part int, player string) string {
	return Root + ".outcomes." + brand + "." + strconv.Itoa(part) + "." + player
}

// RewardSubject is croupier.rewards.<brand>.<player>.
func RewardSubject(brand, player string) string { return Root + ".rewards." + brand + "." + player }

// ConsentSubject is croupier.consent.<brand>.<part>.<player>.
func ConsentSubject(brand string, part int, player string) string {
	return Root + ".consent." + brand + "." + strconv.Itoa(part) + "." + player
}

// AuditSubject is croupier.audit.<brand>.<kind>.<name>. The name token (a refinement of the
// design's croupier.audit.<brand>.<kind>, see docs/decisions.md) lets the manager read the
// last entry of one object to diff the next generation against it.
func AuditSubject(brand, kind, name string) string {
	return Root + ".audit." + brand + "." + kind + "." + NameToken(name)
}

// ConfigKey is the croupier-config key <brand>.<kind>.<name>.
func ConfigKey(brand, kind, name string) string { return brand + "." + kind + "." + NameToken(name) }

// PlayerKey is the key of a player in croupier-players, croupier-prefs and croupier-state:
// <brand>.<part>.<player>.
func PlayerKey(brand string, part int, player string) string {
	return brand + "." + strconv.Itoa(part) + "." + player
}

// LeaseKey is the croupier-leases key part.<n>.
func LeaseKey(part int) string { return "part." + strconv.Itoa(part) }

// BudgetKey is the croupier-budget key <brand>.<campaign>.
func BudgetKey(brand, campaign string) string { return brand + "." + campaign }

// StatsKey is the croupier-stats key <brand>.<kind>.<name>.<part>.
func StatsKey(brand, kind, name string, part int) string {
	return brand + "." + kind + "." + NameToken(name) + "." + strconv.Itoa(part)
}

// StatsFilter selects every partition's stats of one object.
func StatsFilter(brand, kind, name string) string {
	return brand + "." + kind + "." + NameToken(name) + ".*"
}

// PartitionOutcomesFilter selects one partition's outcomes.
func PartitionOutcomesFilter(part int) string {
	return Root + ".outcomes.*." + strconv.Itoa(part) + ".*"
}

// PartitionStatsFilter selects one partition's stats of every object.
func PartitionStatsFilter(part int) string { return "*.*.*." + strconv.Itoa(part) }

// RunsKey is the croupier-state key of a brand's scheduled runs in one partition: the
// last token starts with "=", which no player id does.
// FenceKey is a partition's fence in croupier-state: the lease epoch of the owner that
// opened it last. An owner publishes a batch only after a conditional write of it proves
// no newer owner has opened the partition since.
func FenceKey(part int) string { return "fence." + strconv.Itoa(part) }

func RunsKey(brand string, part int) string { return brand + "." + strconv.Itoa(part) + ".=runs" }

// RunsFilter selects every scheduled run.
const RunsFilter = Root + ".runs.>"

// PlayerDeliveriesFilter selects a player's delivery jobs on every channel (for erasure).
func PlayerDeliveriesFilter(brand string, part int, player string) string {
	return Root + ".deliveries.*." + brand + "." + strconv.Itoa(part) + "." + player
}

// SuppressionConsentSubject is croupier.consent.<brand>.suppression.<address hash>: the
// ledger of an address-level opt-out whose player is not known.
func SuppressionConsentSubject(brand, hash string) string {
	return Root + ".consent." + brand + ".suppression." + hash
}

// BrandConsentFilter selects a brand's whole consent ledger.
func BrandConsentFilter(brand string) string { return Root + ".consent." + brand + ".>" }

// BrandOutcomesFilter selects every outcome of a brand.
func BrandOutcomesFilter(brand string) string { return Root + ".outcomes." + brand + ".>" }

// IntentAddress splits croupier.intents.<brand>.<part>.<player>.
func IntentAddress(subject string) (brand string, part int, player string, ok bool) {
	rest, found := strings.CutPrefix(subject, Root+".intents.")
	if !found {
		return "", 0, "", false
	}
	tok := strings.Split(rest, ".")
	if len(tok) != 3 {
		return "", 0, "", false
	}
	p, err := strconv.Atoi(tok[1])
	if err != nil {
		return "", 0, "", false
	}
	return tok[0], p, tok[2], true
}

// PreviewSubject is where a campaign's dry run is asked of every dispatcher replica, each
// answering for the partitions it owns: croupier.preview.<brand>.<campaign>.
func PreviewSubject(brand, campaign string) string {
	return Root + ".preview." + brand + "." + campaign
}

// PreviewFilter subscribes a replica to every preview request.
const PreviewFilter = Root + ".preview.*.*"

// CountSubject is where the number of a brand's players a rule selects (a Segment being
// written) is asked of every replica, the rule in the request: croupier.count.<brand>.
func CountSubject(brand string) string { return Root + ".count." + brand }

// CountFilter subscribes a replica to every count request.
const CountFilter = Root + ".count.*"
