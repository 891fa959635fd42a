// Package datakey keeps one data key per player in croupier-keys and seals the player's
// contact data and message bodies with it (AES-256-GCM, the player's key name as
// additional data). Erasure destroys the key with JetStream's secure delete, which
// overwrites the stored record: every sealed copy, including the old revisions and
// acknowledged messages whose bytes a store keeps until it compacts a block, is then
// unreadable (docs/privacy.md).
//
// A partition's owner holds its players' keys in a Ring: it creates a player's key the
// first time it seals something of theirs and stores it before anything sealed with it
// (Persist). Other readers (channel workers, the inbox, the admin API) use a Reader,
// which fetches keys and caches a bounded number of them.
package datakey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

const (
	keySize = 32
	// version is the first byte of an unwrapped key record and of sealed data;
	// wrappedVersion that of a key record wrapped with a key-encryption key.
	version        = 1
	wrappedVersion = 2
	// Overhead is what sealing adds to the plaintext.
	Overhead = 1 + 12 + 16
)

// ErrErased means the player's data key does not exist: the player was erased (or
// never had anything sealed).
var ErrErased = errors.New("the player's data key does not exist (erased)")

// ErrTaken means a key this ring created was stored by another writer first: another
// owner holds the partition.
var ErrTaken = errors.New("a data key of this partition was created by another owner")

// Seal encrypts plain with dek for the player named by name (bus.PlayerKey).
func Seal(dek []byte, name string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), Overhead+len(plain))
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], plain, []byte(name)), nil
}

// Open decrypts what Seal made with dek for name.
func Open(dek []byte, name string, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != version {
		return nil, errors.New("sealed data: unknown format")
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	n := 1 + aead.NonceSize()
	plain, err := aead.Open(nil, sealed[1:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("sealed data of %s: %w", name, err)
	}
	return plain, nil
}

func newAEAD(dek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(dek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// KEKs returns a brand's key-encryption keys, the current one first (then the previous
// one while it is rotated out); none means the brand's data keys are stored unwrapped.
type KEKs func(ctx context.Context, brand string) ([][]byte, error)

// ParseKEK reads a key-encryption key as a Secret or a file holds it: 32 bytes, raw or
// base64 (surrounding space ignored).
func ParseKEK(b []byte) ([]byte, error) {
	if len(b) == keySize {
		return b, nil
	}
	t := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(t); err == nil && len(k) == keySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("a key-encryption key must be %d bytes, raw or base64 (openssl rand -base64 32)", keySize)
}

// kekID names a key-encryption key in the records it wraps (not secret: a hash prefix).
func kekID(kek []byte) [8]byte {
	sum := sha256.Sum256(append([]byte("croupier data key wrap\x00"), kek...))
	return [8]byte(sum[:8])
}

// encodeKey is the croupier-keys record of dek for name: wrapped with kek (AES-256-GCM,
// the name as additional data) when there is one, else the key itself.
func encodeKey(dek []byte, name string, kek []byte) ([]byte, error) {
	if kek == nil {
		return append([]byte{version}, dek...), nil
	}
	id := kekID(kek)
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+len(id)+aead.NonceSize(), 1+len(id)+aead.NonceSize()+keySize+aead.Overhead())
	out[0] = wrappedVersion
	copy(out[1:], id[:])
	nonce := out[1+len(id):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, dek, []byte(name)), nil
}

// decodeKey opens a croupier-keys record for name with one of keks; current reports
// whether it is wrapped with the first of them (no re-wrap needed).
func decodeKey(b []byte, name string, keks [][]byte) (dek []byte, current bool, err error) {
	switch {
	case len(b) == 1+keySize && b[0] == version:
		return b[1:], len(keks) == 0, nil
	case len(b) > 1+8+12 && b[0] == wrappedVersion:
		id := [8]byte(b[1:9])
		for i, kek := range keks {
			if kekID(kek) != id {
				continue
			}
			aead, err := newAEAD(kek)
			if err != nil {
				return nil, false, err
			}
			n := 9 + aead.NonceSize()
			dek, err := aead.Open(nil, b[9:n], b[n:], []byte(name))
			if err != nil {
				return nil, false, fmt.Errorf("data key of %s: %w", name, err)
			}
			return dek, i == 0, nil
		}
		return nil, false, fmt.Errorf("the data key of %s is wrapped with a key-encryption key the brand's Secret no longer holds (id %x): restore %s or %s", name, id, "dataKeyWrap", "dataKeyWrapPrevious")
	}
	return nil, false, errors.New("data key record: unknown format")
}

// brandOf is the brand of a key name <brand>.<part>.<player>.
func brandOf(name string) string {
	b, _, _ := strings.Cut(name, ".")
	return b
}

func (k KEKs) get(ctx context.Context, brand string) ([][]byte, error) {
	if k == nil {
		return nil, nil
	}
	return k(ctx, brand)
}

func kvSubject(key string) string { return "$KV." + bus.BucketKeys + "." + key }

// Ring is one partition's data keys, for its owner's single worker goroutine (its
// methods are safe for concurrent use all the same).
type Ring struct {
	Part int
	kv   jetstream.KeyValue
	js   jetstream.JetStream
	keks KEKs

	mu      sync.Mutex
	keys    map[string][]byte
	pending []string
}

// Load reads partition part's keys (one watch over the partition's names), opening
// wrapped ones with keks. A key wrapped with a brand's previous key-encryption key, or not
// wrapped while the brand now has one, is stored again wrapped with the current one
// (conditional on the revision read): rotating the key-encryption key needs no downtime.
func Load(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, part int, keks KEKs) (*Ring, error) {
	r := &Ring{Part: part, kv: kv, js: js, keks: keks, keys: map[string][]byte{}}
	w, err := kv.Watch(ctx, "*."+strconv.Itoa(part)+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("loading the data keys of partition %d: %w", part, err)
	}
	type stale struct {
		name string
		rev  uint64
	}
	var rewrap []stale
	byBrand := map[string][][]byte{}
	err = bus.Follow(ctx, w, fmt.Sprintf("loading the data keys of partition %d", part), func(e jetstream.KeyValueEntry) error {
		brand := brandOf(e.Key())
		ks, ok := byBrand[brand]
		if !ok {
			var err error
			if ks, err = keks.get(ctx, brand); err != nil {
				return fmt.Errorf("the key-encryption keys of brand %s: %w", brand, err)
			}
			byBrand[brand] = ks
		}
		dek, current, err := decodeKey(e.Value(), e.Key(), ks)
		if err != nil {
			return err
		}
		r.keys[e.Key()] = dek
		if !current {
			rewrap = append(rewrap, stale{e.Key(), e.Revision()})
		}
		return nil
	}, func() bool { return true })
	if err != nil {
		return nil, err
	}
	for _, st := range rewrap {
		ks := byBrand[brandOf(st.name)]
		rec, err := encodeKey(r.keys[st.name], st.name, first(ks))
		if err != nil {
			return nil, err
		}
		if _, err := kv.Update(ctx, st.name, rec, st.rev); err != nil && !bus.Conflict(err) {
			return nil, fmt.Errorf("re-wrapping the data key of %s: %w", st.name, err)
		}
	}
	return r, nil
}

func first(keks [][]byte) []byte {
	if len(keks) == 0 {
		return nil
	}
	return keks[0]
}

// Len is the number of keys held.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// Seal seals plain for the player, creating their key if they have none yet; a new key
// is stored by the next Persist, which must succeed before anything sealed with it is.
func (r *Ring) Seal(brand, player string, plain []byte) ([]byte, error) {
	name := bus.PlayerKey(brand, r.Part, player)
	r.mu.Lock()
	dek, ok := r.keys[name]
	if !ok {
		dek = make([]byte, keySize)
		if _, err := rand.Read(dek); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.keys[name] = dek
		r.pending = append(r.pending, name)
	}
	r.mu.Unlock()
	return Seal(dek, name, plain)
}

// Open opens what Seal sealed for the player (ErrErased when they have no key).
func (r *Ring) Open(brand, player string, sealed []byte) ([]byte, error) {
	name := bus.PlayerKey(brand, r.Part, player)
	r.mu.Lock()
	dek, ok := r.keys[name]
	r.mu.Unlock()
	if !ok {
		return nil, ErrErased
	}
	return Open(dek, name, sealed)
}

// Persist stores the keys created since the last call, each only if the name has none
// (a create), and waits for them. A name another writer stored first is ErrTaken.
func (r *Ring) Persist(ctx context.Context) error {
	r.mu.Lock()
	names := r.pending
	r.pending = nil
	deks := make([][]byte, len(names))
	for i, n := range names {
		deks[i] = r.keys[n]
	}
	r.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	recs := make([][]byte, len(names))
	byBrand := map[string][]byte{} // one KEK lookup per brand and batch, not per key
	for i, n := range names {
		kek, ok := byBrand[brandOf(n)]
		var err error
		if !ok {
			var keks [][]byte
			keks, err = r.keks.get(ctx, brandOf(n))
			kek = first(keks)
			byBrand[brandOf(n)] = kek
		}
		if err == nil {
			recs[i], err = encodeKey(deks[i], n, kek)
		}
		if err != nil {
			r.mu.Lock()
			r.pending = append(r.pending, names[i:]...)
			r.mu.Unlock()
			return fmt.Errorf("wrapping the data keys of partition %d: %w", r.Part, err)
		}
	}
	futures := make([]jetstream.PubAckFuture, len(names))
	var err error
	for i, n := range names {
		if futures[i], err = r.js.PublishAsync(kvSubject(n), recs[i], jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
			break
		}
	}
	var failed []int
	for i, f := range futures {
		if f == nil {
			failed = append(failed, i)
			continue
		}
		select {
		case <-f.Ok():
		case e := <-f.Err():
			if !bus.Conflict(e) {
				err = errors.Join(err, e)
			}
			failed = append(failed, i)
		case <-ctx.Done():
			err = ctx.Err()
			failed = append(failed, i)
		}
	}
	var taken error
	for _, i := range failed {
		// A name whose last record is a deletion (an erased player's, say) refuses the
		// conditional publish; the bucket's create takes that case. One that exists is
		// another owner's.
		_, e := r.kv.Create(ctx, names[i], recs[i])
		switch {
		case e == nil:
		case errors.Is(e, jetstream.ErrKeyExists):
			taken = ErrTaken
		default:
			r.mu.Lock()
			r.pending = append(r.pending, names[i])
			r.mu.Unlock()
			err = errors.Join(err, e)
		}
	}
	if taken != nil {
		return taken
	}
	if err != nil {
		return fmt.Errorf("storing data keys of partition %d: %w", r.Part, err)
	}
	return nil
}

// Erase destroys the player's key: every stored revision is overwritten (secure delete),
// so what was sealed with it can no longer be opened anywhere.
func (r *Ring) Erase(ctx context.Context, brand, player string) error {
	name := bus.PlayerKey(brand, r.Part, player)
	r.mu.Lock()
	delete(r.keys, name)
	r.mu.Unlock()
	return Destroy(ctx, r.js, r.kv, name)
}

// Destroy overwrites every stored revision of the data key name.
func Destroy(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, name string) error {
	hist, err := kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the data key of %s: %w", name, err)
	}
	st, err := js.Stream(ctx, "KV_"+bus.BucketKeys)
	if err != nil {
		return err
	}
	for _, e := range hist {
		if err := st.SecureDeleteMsg(ctx, e.Revision()); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("destroying the data key of %s: %w", name, err)
		}
	}
	return nil
}

// Reader opens and seals for players of any partition, fetching keys from croupier-keys
// and caching up to Max of them (default 65,536).
type Reader struct {
	KV         jetstream.KeyValue
	Partitions int
	Max        int
	// KEKs opens wrapped keys (nil: keys are stored unwrapped).
	KEKs KEKs

	mu    sync.Mutex
	cache map[string][]byte
}

func (rd *Reader) key(ctx context.Context, name string) ([]byte, error) {
	rd.mu.Lock()
	dek, ok := rd.cache[name]
	rd.mu.Unlock()
	if ok {
		return dek, nil
	}
	e, err := rd.KV.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrErased
	}
	if err != nil {
		return nil, fmt.Errorf("reading a data key: %w", err)
	}
	keks, err := rd.KEKs.get(ctx, brandOf(name))
	if err != nil {
		return nil, fmt.Errorf("the key-encryption keys of brand %s: %w", brandOf(name), err)
	}
	if dek, _, err = decodeKey(e.Value(), name, keks); err != nil {
		return nil, err
	}
	rd.mu.Lock()
	if rd.cache == nil {
		rd.cache = map[string][]byte{}
	}
	limit := rd.Max
	if limit <= 0 {
		limit = 65536
	}
	for k := range rd.cache {
		if len(rd.cache) < limit {
			break
		}
		delete(rd.cache, k) // map order: an arbitrary one goes
	}
	rd.cache[name] = dek
	rd.mu.Unlock()
	return dek, nil
}

// Open opens sealed data of a player (ErrErased when their key is gone).
func (rd *Reader) Open(ctx context.Context, brand, player string, sealed []byte) ([]byte, error) {
	name := bus.PlayerKey(brand, bus.Partition(player, rd.Partitions), player)
	dek, err := rd.key(ctx, name)
	if err != nil {
		return nil, err
	}
	return Open(dek, name, sealed)
}

// Seal seals for a player who has a key (ErrErased when they have none: only a
// partition's owner creates keys).
func (rd *Reader) Seal(ctx context.Context, brand, player string, plain []byte) ([]byte, error) {
	name := bus.PlayerKey(brand, bus.Partition(player, rd.Partitions), player)
	dek, err := rd.key(ctx, name)
	if err != nil {
		return nil, err
	}
	return Seal(dek, name, plain)
}

// Forget drops a player's cached key.
func (rd *Reader) Forget(brand, player string) {
	rd.mu.Lock()
	delete(rd.cache, bus.PlayerKey(brand, bus.Partition(player, rd.Partitions), player))
	rd.mu.Unlock()
}
