package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Store is the manager's side of the NATS contract: it checks the topology the dispatcher
// owns, publishes compiled specs to croupier-config and appends to AUDIT.
type Store struct {
	JS jetstream.JetStream

	mu        sync.Mutex
	checkedAt time.Time
	ready     bool
	lastErr   error
	config    jetstream.KeyValue
}

const topologyRecheck = 5 * time.Second

// Ready reports whether the topology exists. Success is remembered; a missing topology
// is re-checked at most every few seconds so a thousand reconciles do not each ask.
func (s *Store) Ready(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if time.Since(s.checkedAt) < topologyRecheck && s.lastErr != nil {
		return s.lastErr
	}
	s.checkedAt = time.Now()
	if _, err := bus.CheckTopology(ctx, s.JS); err != nil {
		s.lastErr = err
		return err
	}
	kv, err := s.JS.KeyValue(ctx, bus.BucketConfig)
	if err != nil {
		s.lastErr = err
		return err
	}
	s.config, s.ready, s.lastErr = kv, true, nil
	return nil
}

// forget drops the remembered topology after a write found it gone.
func (s *Store) forget(err error) {
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		s.mu.Lock()
		s.ready, s.checkedAt = false, time.Time{}
		s.mu.Unlock()
	}
}

func (s *Store) kv() jetstream.KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config
}

// Publish writes a compiled spec unless the same spec hash is already there. It reports
// whether it wrote.
func (s *Store) Publish(ctx context.Context, rec *bus.ConfigRecord) (bool, error) {
	kv := s.kv()
	if kv == nil {
		return false, errors.New("NATS topology not checked")
	}
	key := bus.ConfigKey(rec.Brand, rec.Kind, rec.Name)
	if cur, err := kv.Get(ctx, key); err == nil {
		if old, err := bus.Decode[bus.ConfigRecord](cur.Value()); err == nil && old.SpecHash == rec.SpecHash && old.UID == rec.UID && old.Generation == rec.Generation {
			return false, nil
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.forget(err)
		return false, fmt.Errorf("reading %s from %s: %w", key, bus.BucketConfig, err)
	}
	rec.Published = time.Now().UTC()
	data, err := bus.Encode(rec)
	if err != nil {
		return false, err
	}
	if _, err := kv.Put(ctx, key, data); err != nil {
		s.forget(err)
		return false, fmt.Errorf("writing %s to %s: %w", key, bus.BucketConfig, err)
	}
	return true, nil
}

// Unpublish purges a compiled spec (no old revision survives). Absent keys are fine.
func (s *Store) Unpublish(ctx context.Context, brand, kind, name string) error {
	kv := s.kv()
	if kv == nil {
		return errors.New("NATS topology not checked")
	}
	key := bus.ConfigKey(brand, kind, name)
	if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err := kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.forget(err)
		return fmt.Errorf("purging %s from %s: %w", key, bus.BucketConfig, err)
	}
	return nil
}

// Published returns the compiled spec of an object, if any.
func (s *Store) Published(ctx context.Context, brand, kind, name string) (*bus.ConfigRecord, error) {
	kv := s.kv()
	if kv == nil {
		return nil, errors.New("NATS topology not checked")
	}
	e, err := kv.Get(ctx, bus.ConfigKey(brand, kind, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := bus.Decode[bus.ConfigRecord](e.Value())
	return &rec, err
}

// LastAudit returns the newest AUDIT entry of one object, or nil.
func (s *Store) LastAudit(ctx context.Context, brand, kind, name string) (*bus.AuditEntry, error) {
	st, err := s.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		s.forget(err)
		return nil, err
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.AuditSubject(brand, kind, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := bus.Decode[bus.AuditEntry](m.Data)
	return &e, err
}

// Audit appends an entry. The message id makes a repeated append within the stream's
// de-duplication window harmless.
func (s *Store) Audit(ctx context.Context, e *bus.AuditEntry, msgID string) error {
	data, err := bus.Encode(e)
	if err != nil {
		return err
	}
	_, err = s.JS.Publish(ctx, bus.AuditSubject(e.Brand, e.Kind, e.Name), data, jetstream.WithMsgID(msgID))
	if err != nil {
		s.forget(err)
		return fmt.Errorf("appending to %s: %w", bus.StreamAudit, err)
	}
	return nil
}

// PublishRun publishes a scheduled run to RUNS; the run id is the message id, so the same
// run published twice within the stream's de-duplication window is stored once (and the
// partition owners record run ids beyond it).
func (s *Store) PublishRun(ctx context.Context, req *bus.RunRequest) error {
	data, err := bus.Encode(req)
	if err != nil {
		return err
	}
	if _, err := s.JS.Publish(ctx, bus.RunSubject(req.Brand, req.Campaign), data, jetstream.WithMsgID(req.RunID)); err != nil {
		s.forget(err)
		return fmt.Errorf("publishing run %s to %s: %w", req.RunID, bus.StreamRuns, err)
	}
	return nil
}

// PublishReportRun publishes a Report's run to REPORTS; the run id is the message id, so
// a second publish of the same slot within the stream's window is dropped.
func (s *Store) PublishReportRun(ctx context.Context, run *bus.ReportRun) error {
	data, err := bus.Encode(run)
	if err != nil {
		return err
	}
	if _, err := s.JS.Publish(ctx, bus.ReportRunSubject(run.Brand, run.Report), data, jetstream.WithMsgID(run.RunID)); err != nil {
		s.forget(err)
		return fmt.Errorf("publishing report run %s to %s: %w", run.RunID, bus.StreamReports, err)
	}
	return nil
}

// ReportResult reads a report run's result from croupier-report-runs (nil before the
// dispatcher wrote one).
func (s *Store) ReportResult(ctx context.Context, brand, report string, slot time.Time) (*bus.ReportResult, error) {
	kv, err := s.JS.KeyValue(ctx, bus.BucketReportRuns)
	if err != nil {
		s.forget(err)
		return nil, err
	}
	e, err := kv.Get(ctx, bus.ReportRunKey(brand, report, slot))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := bus.Decode[bus.ReportResult](e.Value())
	if err != nil {
		return nil, err
	}
	return &r, nil
}
