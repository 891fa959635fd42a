package bus

import (
	"context"
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
