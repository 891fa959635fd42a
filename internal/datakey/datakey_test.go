package datakey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/datakey"
)

func kek(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func keks(ks ...[]byte) datakey.KEKs {
	return func(context.Context, string) ([][]byte, error) { return ks, nil }
}

// Data keys are stored wrapped with the brand's key-encryption key: the record holds
// neither the key nor anything that opens without the KEK. Rotation: loaded with a new
// current KEK and the old one as previous, the owner re-wraps every key, after which the
// old KEK is no longer needed; a reader without the right KEK gets an error naming the
// Secret keys to restore. A brand without a KEK stores keys unwrapped, and they are
// wrapped once it gets one.
func TestDataKeysWrappedAndRotated(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	kv := bustest.KV(t, js, bus.BucketKeys)
	ctx := context.Background()
	ring, err := datakey.Load(ctx, js, kv, 0, keks(kek(1)))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ring.Seal("baku", "p-1", []byte("leyla@example.az"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Persist(ctx); err != nil {
		t.Fatal(err)
	}
	name := bus.PlayerKey("baku", 0, "p-1")
	rec := func() []byte {
		e, err := kv.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.Value()
	}
	first := rec()
	if first[0] != 2 || len(first) != 1+8+12+32+16 {
		t.Fatalf("record %x: want a wrapped record (version 2, id, nonce, 48 bytes)", first)
	}
	open := func(ks datakey.KEKs) (string, error) {
		rd := &datakey.Reader{KV: kv, Partitions: 1, KEKs: ks}
		b, err := rd.Open(ctx, "baku", "p-1", sealed)
		return string(b), err
	}
	if got, err := open(keks(kek(1))); err != nil || got != "leyla@example.az" {
		t.Fatalf("opened with the KEK: %q %v", got, err)
	}
	if _, err := open(keks(kek(9))); err == nil || !strings.Contains(err.Error(), "dataKeyWrap") {
		t.Fatalf("opened with another KEK: %v; want an error naming dataKeyWrap", err)
	}
	if _, err := open(nil); err == nil {
		t.Fatal("a wrapped key opened without any KEK")
	}
	// Rotation: the new KEK current, the old one previous.
	if _, err := datakey.Load(ctx, js, kv, 0, keks(kek(2), kek(1))); err != nil {
		t.Fatal(err)
	}
	if second := rec(); bytes.Equal(second, first) || second[0] != 2 {
		t.Fatalf("the key was not re-wrapped on load: %x", second)
	}
	if got, err := open(keks(kek(2))); err != nil || got != "leyla@example.az" {
		t.Fatalf("after the rotation, opened with the new KEK alone: %q %v", got, err)
	}
	// A brand without a KEK (vegas): unwrapped; wrapped once it has one.
	plain, err := datakey.Load(ctx, js, kv, 0, func(_ context.Context, brand string) ([][]byte, error) {
		if brand == "vegas" {
			return nil, nil
		}
		return [][]byte{kek(2)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Seal("vegas", "p-2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := plain.Persist(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := kv.Get(ctx, bus.PlayerKey("vegas", 0, "p-2"))
	if e.Value()[0] != 1 {
		t.Fatalf("a brand without a KEK: record version %d, want 1 (unwrapped)", e.Value()[0])
	}
	byBrand := func(_ context.Context, brand string) ([][]byte, error) {
		if brand == "vegas" {
			return [][]byte{kek(3)}, nil
		}
		return [][]byte{kek(2)}, nil
	}
	if _, err := datakey.Load(ctx, js, kv, 0, byBrand); err != nil {
		t.Fatal(err)
	}
	e, _ = kv.Get(ctx, bus.PlayerKey("vegas", 0, "p-2"))
	if e.Value()[0] != 2 {
		t.Fatalf("after the brand got a KEK: record version %d, want 2 (wrapped)", e.Value()[0])
	}
}

func TestParseKEK(t *testing.T) {
	raw := kek(7)
	for _, in := range [][]byte{raw, []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), []byte(base64.RawURLEncoding.EncodeToString(raw))} {
		if got, err := datakey.ParseKEK(in); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseKEK(%q) = %x, %v", in, got, err)
		}
	}
	if _, err := datakey.ParseKEK([]byte("too short")); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("a short key: %v", err)
	}
}
