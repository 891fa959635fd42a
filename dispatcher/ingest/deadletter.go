package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// UntransformedConsumer is the durable consumer that moves events published without a type
// token (stored under croupier.events.> because the partitioning transform did not match)
// to DEADLETTER. Every replica pulls from it; each message goes to one of them.
const UntransformedConsumer = "events-untransformed"

// ReasonUntransformed is the dead-letter reason of such an event.
const ReasonUntransformed = "subject must be croupier.events.<brand>.<player>.<type>: the event was published without a player or type token and could not be partitioned"

// DeadLetterUntransformed runs until ctx ends: it moves each untransformed event to
// DEADLETTER with the reason, then removes it from EVENTS and acknowledges it.
func DeadLetterUntransformed(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
		Durable: UntransformedConsumer, FilterSubject: bus.UntransformedEventsFilter,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
		Description: "events that missed the partitioning transform, moved to DEADLETTER",
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", UntransformedConsumer, err)
	}
	stream, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("fetching untransformed events", "err", err)
			time.Sleep(time.Second)
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if err := DeadLetterNow(ctx, js, bus.StreamEvents, m, ReasonUntransformed, time.Now()); err != nil {
				log.Warn("dead-lettering an untransformed event", "err", err)
				_ = m.Nak()
				continue
			}
			if err := stream.SecureDeleteMsg(ctx, md.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				log.Warn("removing an untransformed event", "err", err)
			}
			_ = m.Ack()
		}
	}
	return nil
}

// PublishDeadLetter publishes a message that could not be processed, with the reason;
// the caller waits for the returned acknowledgement before acknowledging the original.
func PublishDeadLetter(js jetstream.JetStream, stream, subject string, hdr map[string][]string, data []byte, reason string, now time.Time) (jetstream.PubAckFuture, error) {
	b, err := bus.Encode(bus.DeadLetter{Time: now.UTC(), Stream: stream, Subject: subject, Reason: reason, Header: hdr, Data: data})
	if err != nil {
		return nil, err
	}
	return js.PublishAsync(bus.DeadLetterSubject(stream), b, jetstream.WithStallWait(30*time.Second))
}

// DeadLetterNow dead-letters m from stream and waits for the acknowledgement.
func DeadLetterNow(ctx context.Context, js jetstream.JetStream, stream string, m jetstream.Msg, reason string, now time.Time) error {
	f, err := PublishDeadLetter(js, stream, m.Subject(), m.Headers(), m.Data(), reason, now)
	if err != nil {
		return err
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
