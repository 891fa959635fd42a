package bustest

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Collect decodes every message of stream on filter, in order.
func Collect[T any](t testing.TB, js jetstream.JetStream, stream, filter string) []T {
	t.Helper()
	msgs := ReadAll(t, js, stream, filter)
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		v, err := bus.Decode[T](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// ReadAll returns every message of stream on filter, in order (direct gets by subject, so
// it also reads work-queue streams without consuming them).
func ReadAll(t testing.TB, js jetstream.JetStream, stream, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	msgs, err := readAll(js, stream, filter)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func readAll(js jetstream.JetStream, stream, filter string) ([]*jetstream.RawStreamMsg, error) {
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	var seq uint64 = 1
	for {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return out, nil
			}
			return nil, err
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}
