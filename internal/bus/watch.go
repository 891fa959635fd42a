package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow reads a KV watch: every entry goes to apply (deletes too, unless the watch ignores
// them); caughtUp, when set, runs once every value present at the start has been read, and
// Follow returns when it answers true. It returns ctx.Err() when ctx ends, the first error
// of apply, or an error naming what when the watch closes.
func Follow(ctx context.Context, w jetstream.KeyWatcher, what string, apply func(jetstream.KeyValueEntry) error, caughtUp func() (done bool)) error {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("%s: watch closed", what)
			}
			if e == nil {
				if caughtUp != nil && caughtUp() {
					return nil
				}
				continue
			}
			if err := apply(e); err != nil {
				return err
			}
		}
	}
}

// Conflict tells a conditional write refused because the key or subject changed since the
// revision the writer expected (a KV Create/Update, or a publish with an expected last
// sequence): another writer came first.
func Conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}
