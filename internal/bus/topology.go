package bus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// TopologyOptions sizes the streams and buckets. The zero value is the single-machine
// default (file storage, one replica, 64 partitions).
type TopologyOptions struct {
	// Partitions of a new EVENTS stream; an existing stream keeps the count it was made with.
	Partitions int
	// Replicas of every stream and bucket. 0 follows what exists (the EVENTS stream's
	// count) and, for a new topology, what the server offers: 3 on a cluster of three or
	// more servers, 1 otherwise. A count below an existing stream's is refused: the
	// dispatcher never lowers redundancy (docs/decisions.md).
	Replicas int
	// Memory uses memory storage (tests that do not restart the server).
	Memory bool
	// OutcomesMaxAge is how long decisions and attempts are kept (default 400 days).
	OutcomesMaxAge time.Duration
	// OutcomesMaxBytes caps the OUTCOMES stream (0: no cap).
	OutcomesMaxBytes int64
	// AuditMaxAge is how long AUDIT keeps entries: 0 keeps them forever, otherwise at
	// least one year.
	AuditMaxAge time.Duration
}

// Topology describes the topology as it exists.
type Topology struct {
	// Partitions is the partition count of the EVENTS stream's transform.
	Partitions int
	// Replicas is the replica count of the EVENTS stream.
	Replicas int
}

// ReplicasFlag names the dispatcher flag that sets TopologyOptions.Replicas, for errors.
const ReplicasFlag = "--stream-replicas"

const (
	day              = 24 * time.Hour
	eventsMaxAge     = 7 * day
	deadLetterMaxAge = 7 * day
	minAuditMaxAge   = 365 * day
	// intentsMaxAge must exceed the longest delay or waitFor timeout (365 days).
	intentsMaxAge = 400 * day
)

var partitionRE = regexp.MustCompile(`\{\{\s*partition\((\d+),\s*2\)\s*\}\}`)

// EventsTransform is the EVENTS stream's subject transform for P partitions:
// croupier.events.<brand>.<player>.<type...> -> croupier.ev.<brand>.<part>.<player>.<type...>.
func EventsTransform(partitions int) jetstream.SubjectTransformConfig {
	return jetstream.SubjectTransformConfig{
		Source:      Root + ".events.*.*.>",
		Destination: Root + ".ev.{{wildcard(1)}}.{{partition(" + strconv.Itoa(partitions) + ",2)}}.{{wildcard(2)}}.>",
	}
}

func (o TopologyOptions) withDefaults() TopologyOptions {
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.OutcomesMaxAge <= 0 {
		o.OutcomesMaxAge = 400 * day
	}
	return o
}

func (o TopologyOptions) storage() jetstream.StorageType {
	if o.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Streams returns the stream configurations for the given partition count.
func (o TopologyOptions) Streams(partitions int) []jetstream.StreamConfig {
	o = o.withDefaults()
	st, r := o.storage(), o.Replicas
	transform := EventsTransform(partitions)
	return []jetstream.StreamConfig{
		{
			Name: StreamEvents, Description: "player events, partitioned on ingest",
			Subjects: []string{Root + ".events.>"}, SubjectTransform: &transform,
			Retention: jetstream.LimitsPolicy, MaxAge: eventsMaxAge, Duplicates: 10 * time.Minute,
			Storage: st, Replicas: r,
		},
		{
			Name: StreamDeadLetter, Description: "messages that could not be processed, with the reason",
			Subjects:  []string{Root + ".deadletter.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: deadLetterMaxAge, Storage: st, Replicas: r,
		},
		{
			Name: StreamRuns, Description: "scheduled campaign runs; run id = campaign UID + scheduled time",
			Subjects:  []string{Root + ".runs.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: 7 * day, Duplicates: time.Hour, Storage: st, Replicas: r,
		},
		{
			Name: StreamReports, Description: "scheduled report runs (work queue); run id = report UID + scheduled time",
			Subjects:  []string{Root + ".reports.>"},
			Retention: jetstream.WorkQueuePolicy, Duplicates: time.Hour, MaxAge: 7 * day, Storage: st, Replicas: r,
		},
		{
			Name: StreamIntents, Description: "intents per player and durable schedules (delays, timeouts, deferrals)",
			Subjects:  []string{Root + ".intents.>", Root + ".sched.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: intentsMaxAge, Duplicates: 10 * time.Minute,
			AllowMsgSchedules: true, AllowRollup: true, DenyPurge: false,
			Storage: st, Replicas: r,
		},
		{
			Name: StreamDeliveries, Description: "rendered delivery jobs per channel (work queue)",
			Subjects:  []string{Root + ".deliveries.>"},
			Retention: jetstream.WorkQueuePolicy, Duplicates: 10 * time.Minute, Storage: st, Replicas: r,
		},
		{
			Name: StreamOutcomes, Description: "every routing decision and delivery attempt with its reason",
			Subjects:  []string{Root + ".outcomes.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: o.OutcomesMaxAge, MaxBytes: maxBytes(o.OutcomesMaxBytes),
			Storage: st, Replicas: r,
		},
		{
			Name: StreamRewards, Description: "reward grants for the casino bonus engine",
			Subjects:  []string{Root + ".rewards.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: 30 * day, Duplicates: time.Hour, Storage: st, Replicas: r,
		},
		{
			Name: StreamConsent, Description: "append-only consent ledger (player id only)",
			Subjects:  []string{Root + ".consent.>"},
			Retention: jetstream.LimitsPolicy, DenyDelete: true, DenyPurge: true, Storage: st, Replicas: r,
		},
		{
			Name: StreamAudit, Description: "append-only audit of spec and policy changes (no contact data)",
			Subjects:  []string{Root + ".audit.>"},
			Retention: jetstream.LimitsPolicy, MaxAge: o.AuditMaxAge, DenyDelete: true, DenyPurge: true,
			Storage: st, Replicas: r,
		},
	}
}

func maxBytes(b int64) int64 {
	if b <= 0 {
		return -1
	}
	return b
}

// Buckets returns the KV bucket configurations.
func (o TopologyOptions) Buckets() []jetstream.KeyValueConfig {
	o = o.withDefaults()
	st, r := o.storage(), o.Replicas
	kv := func(name, desc string, history uint8) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, Description: desc, History: history, Storage: st, Replicas: r}
	}
	// Short links expire: a campaign link is not followed after 90 days, and the record
	// (player id, decision, destination) does not outlive that.
	links := kv(BucketLinks, "short links and open-tracking ids (expire after 90 days)", 1)
	links.TTL = LinkTTL
	return []jetstream.KeyValueConfig{
		kv(BucketConfig, "compiled specs published by the manager", 1),
		kv(BucketPlayers, "player profiles and derived metrics (partition owner writes)", 1),
		kv(BucketPrefs, "player preference overrides and suppression flags", 1),
		kv(BucketState, "partition owners' counters, dedup keys and flow positions (fenced writes)", 1),
		kv(BucketLeases, "partition ownership leases with epochs", 1),
		kv(BucketBudget, "campaign budget leases (compare-and-set)", 1),
		kv(BucketCoupons, "coupon pools (redeem by compare-and-set)", 1),
		kv(BucketInbox, "in-app inboxes", 1),
		kv(BucketKeys, "per-player data keys sealing contact data and bodies (erasure destroys them)", 1),
		links,
		kv(BucketStats, "per-partition counters summed by the manager", 1),
		kv(BucketReportRuns, "report runs' results (files, sent, error) read into the Reports' status", 1),
	}
}

// ReportFiles is the object store of report attachments; a report's files are kept 90
// days (the mail is the record staff keep).
func (o TopologyOptions) ReportFiles() jetstream.ObjectStoreConfig {
	o = o.withDefaults()
	return jetstream.ObjectStoreConfig{Bucket: ObjectReports, Description: "report attachments (PDF, CSV) per run",
		TTL: 90 * day, Storage: o.storage(), Replicas: o.Replicas}
}

// keysStream is the stream of the croupier-keys bucket: what nats.go makes for a KV bucket,
// except that it allows deleting messages and reads from the leader only. An erasure
// destroys a player's data key with secure delete (every revision overwritten on disk),
// which a KV bucket's stream (deny delete, a setting no update can lift) refuses.
func keysStream(cfg jetstream.KeyValueConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: "KV_" + cfg.Bucket, Description: cfg.Description, Subjects: []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: int64(max(cfg.History, 1)), MaxBytes: -1, MaxMsgSize: -1, MaxMsgs: -1, MaxConsumers: -1,
		Storage: cfg.Storage, Replicas: cfg.Replicas, AllowRollup: true, DenyDelete: false,
		// Reads go to the stream's leader: a direct get may be served by a replica that has
		// not applied a key the owner just stored, and a channel worker that finds no key
		// drops the job as an erased player's (seen on the three-node cluster: receipts
		// lost). Readers cache keys, so the leader sees one read per player and replica.
		Duplicates: 2 * time.Minute, AllowDirect: false, Discard: jetstream.DiscardNew,
	}
}

// ErrTopologyRefused marks a topology request that retrying cannot mend (it contradicts
// the streams that exist, or its options are invalid), as opposed to NATS not answering.
var ErrTopologyRefused = errors.New("topology refused")

// EnsureTopology creates or updates every stream and bucket. It is idempotent. The EVENTS
// stream keeps the partition count it was created with; the returned Topology says which.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, opts TopologyOptions) (Topology, error) {
	explicit := opts.Replicas > 0
	opts = opts.withDefaults()
	if opts.AuditMaxAge != 0 && opts.AuditMaxAge < minAuditMaxAge {
		return Topology{}, fmt.Errorf("%w: audit max age %s: must be 0 (forever) or at least one year", ErrTopologyRefused, opts.AuditMaxAge)
	}
	parts := opts.Partitions
	if s, err := js.Stream(ctx, StreamEvents); err == nil {
		cfg := s.CachedInfo().Config
		if p, ok := partitionsOf(cfg); ok {
			parts = p
		}
		if !explicit {
			opts.Replicas = max(cfg.Replicas, 1)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return Topology{}, fmt.Errorf("looking up stream %s: %w", StreamEvents, err)
	} else if !explicit {
		opts.Replicas = offeredReplicas(js)
	}
	// keep refuses to lower an existing stream's replicas when the count was asked for,
	// and keeps the existing count when it was not.
	keep := func(stream string, want *int) error {
		s, err := js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up stream %s: %w", stream, err)
		}
		have := s.CachedInfo().Config.Replicas
		if have > *want {
			if explicit {
				return fmt.Errorf("%w: %s=%d is below the %d replicas stream %s has: the dispatcher never lowers redundancy; leave the flag unset to follow the existing count, or change the streams with the nats CLI first", ErrTopologyRefused, ReplicasFlag, *want, have, stream)
			}
			*want = have
		}
		return nil
	}
	// Every stream and bucket at once: on a cluster each change is a round trip through
	// the meta leader, and a restarting dispatcher waits for all of them before it takes
	// partitions.
	var g errgroup.Group
	for _, cfg := range opts.Streams(parts) {
		g.Go(func() error {
			if err := keep(cfg.Name, &cfg.Replicas); err != nil {
				return err
			}
			if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("stream %s: %w", cfg.Name, err)
			}
			return nil
		})
	}
	for _, cfg := range opts.Buckets() {
		g.Go(func() error {
			if err := keep("KV_"+cfg.Bucket, &cfg.Replicas); err != nil {
				return err
			}
			if cfg.Bucket == BucketKeys {
				if _, err := js.CreateOrUpdateStream(ctx, keysStream(cfg)); err != nil {
					return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
				}
				return nil
			}
			if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
				return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		cfg := opts.ReportFiles()
		if err := keep("OBJ_"+cfg.Bucket, &cfg.Replicas); err != nil {
			return err
		}
		if _, err := js.CreateOrUpdateObjectStore(ctx, cfg); err != nil {
			return fmt.Errorf("object store %s: %w", cfg.Bucket, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return Topology{}, err
	}
	return Topology{Partitions: parts, Replicas: opts.Replicas}, nil
}

// offeredReplicas is what the server offers a new topology: 3 on a cluster of three or
// more servers (as the connection discovered them), 1 otherwise.
func offeredReplicas(js jetstream.JetStream) int {
	nc := js.Conn()
	if nc == nil || nc.ConnectedClusterName() == "" {
		return 1
	}
	if len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

func partitionsOf(cfg jetstream.StreamConfig) (int, bool) {
	if cfg.SubjectTransform == nil {
		return 0, false
	}
	m := partitionRE.FindStringSubmatch(cfg.SubjectTransform.Destination)
	if m == nil {
		return 0, false
	}
	p, err := strconv.Atoi(m[1])
	return p, err == nil && p > 0
}

// MissingTopologyError lists the streams and buckets that do not exist.
type MissingTopologyError struct {
	Streams []string
	Buckets []string
}

func (e *MissingTopologyError) Error() string {
	var parts []string
	if len(e.Streams) > 0 {
		parts = append(parts, "streams "+strings.Join(e.Streams, ", "))
	}
	if len(e.Buckets) > 0 {
		parts = append(parts, "buckets "+strings.Join(e.Buckets, ", "))
	}
	return "NATS topology missing (the dispatcher creates it at start): " + strings.Join(parts, "; ")
}

// CheckTopology reports the topology as it exists, or a *MissingTopologyError naming what
// is absent. The manager calls it and never creates anything.
func CheckTopology(ctx context.Context, js jetstream.JetStream) (Topology, error) {
	missing := &MissingTopologyError{}
	var topo Topology
	for _, cfg := range (TopologyOptions{}).Streams(DefaultPartitions) {
		s, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing.Streams = append(missing.Streams, cfg.Name)
		case err != nil:
			return Topology{}, fmt.Errorf("looking up stream %s: %w", cfg.Name, err)
		case cfg.Name == StreamEvents:
			topo.Partitions, _ = partitionsOf(s.CachedInfo().Config)
		}
	}
	for _, cfg := range (TopologyOptions{}).Buckets() {
		_, err := js.KeyValue(ctx, cfg.Bucket)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			missing.Buckets = append(missing.Buckets, cfg.Bucket)
		case err != nil:
			return Topology{}, fmt.Errorf("looking up bucket %s: %w", cfg.Bucket, err)
		}
	}
	if len(missing.Streams)+len(missing.Buckets) > 0 {
		return Topology{}, missing
	}
	return topo, nil
}
