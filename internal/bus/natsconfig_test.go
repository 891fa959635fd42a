package bus_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/croupier-crm/croupier/internal/bus"
)

// natsConf is the nats.conf of config/nats.
func natsConf(t *testing.T) string {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "nats", "nats.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var cm corev1.ConfigMap
		if yaml.Unmarshal([]byte(doc), &cm) == nil && cm.Kind == "ConfigMap" {
			return cm.Data["nats.conf"]
		}
	}
	t.Fatal("no ConfigMap in config/nats/nats.yaml")
	return ""
}

func userSeed(t *testing.T, dir, name string) (seedFile, public string) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	seedFile = filepath.Join(dir, name+".seed")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return seedFile, public
}

// The cluster configuration of config/nats runs a real server (one node here) on which
// the dispatcher's nkey user creates the topology, and neither the dispatcher nor the
// manager may delete or purge AUDIT; the manager may not change it either.
func TestNATSClusterConfigAndPermissions(t *testing.T) {
	dir := t.TempDir()
	dispSeed, dispPub := userSeed(t, dir, "dispatcher")
	mgrSeed, mgrPub := userSeed(t, dir, "manager")
	t.Setenv("POD_NAME", "croupier-nats-0")
	t.Setenv("MANAGER_NKEY", mgrPub)
	t.Setenv("DISPATCHER_NKEY", dispPub)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(natsConf(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("config/nats nats.conf: %v", err)
	}
	if opts.ServerName != "croupier-nats-0" || !opts.JetStream || len(opts.Routes) != 3 || opts.Cluster.Name != "croupier" || len(opts.Nkeys) != 2 {
		t.Fatalf("options: name %q jetstream %v routes %d cluster %q nkeys %d", opts.ServerName, opts.JetStream, len(opts.Routes), opts.Cluster.Name, len(opts.Nkeys))
	}
	// One node on loopback: no routes, no cluster port, a temporary store.
	opts.Host, opts.Port, opts.HTTPPort, opts.StoreDir = "127.0.0.1", -1, 0, filepath.Join(dir, "data")
	opts.Routes, opts.Cluster.Port, opts.Cluster.Name = nil, 0, ""
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	connect := func(name, seed string) jetstream.JetStream {
		o, err := bus.ClientOptions(name, seed, "")
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(srv.ClientURL(), o...)
		if err != nil {
			t.Fatalf("%s connects: %v", name, err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js
	}
	if _, err := nats.Connect(srv.ClientURL()); err == nil {
		t.Fatal("an anonymous client connected")
	}
	ctx := context.Background()
	disp := connect("croupier-dispatcher", dispSeed)
	if _, err := bus.EnsureTopology(ctx, disp, bus.TopologyOptions{Partitions: 4}); err != nil {
		t.Fatalf("the dispatcher creates the topology: %v", err)
	}
	mgr := connect("croupier-manager", mgrSeed)
	if _, err := mgr.Stream(ctx, bus.StreamAudit); err != nil {
		t.Fatalf("the manager reads AUDIT: %v", err)
	}
	if _, err := mgr.Publish(ctx, "croupier.audit.baku.Campaign", []byte(`{}`)); err != nil {
		t.Fatalf("the manager writes AUDIT: %v", err)
	}
	refused := func(who string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := f(ctx); err == nil {
			t.Errorf("%s was allowed", who)
		}
	}
	for name, js := range map[string]jetstream.JetStream{"manager": mgr, "dispatcher": disp} {
		refused(name+" deletes AUDIT", func(ctx context.Context) error { return js.DeleteStream(ctx, bus.StreamAudit) })
		refused(name+" purges AUDIT", func(ctx context.Context) error {
			s, err := js.Stream(ctx, bus.StreamAudit)
			if err != nil {
				return nil // could not even look: not the refusal under test
			}
			return s.Purge(ctx)
		})
	}
	refused("manager shortens AUDIT", func(ctx context.Context) error {
		s, err := mgr.Stream(ctx, bus.StreamAudit)
		if err != nil {
			return nil
		}
		cfg := s.CachedInfo().Config
		cfg.MaxAge = time.Hour
		_, err = mgr.UpdateStream(ctx, cfg)
		return err
	})
	// The players' data keys: the dispatcher writes and reads them, the manager can do
	// neither.
	dkv, err := disp.KeyValue(ctx, bus.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dkv.Put(ctx, "baku.0.p-1", []byte("key")); err != nil {
		t.Fatalf("the dispatcher writes a data key: %v", err)
	}
	if e, err := dkv.Get(ctx, "baku.0.p-1"); err != nil || string(e.Value()) != "key" {
		t.Fatalf("the dispatcher reads a data key: %v", err)
	}
	refused("manager reads a data key", func(ctx context.Context) error {
		kv, err := mgr.KeyValue(ctx, bus.BucketKeys)
		if err != nil {
			return nil
		}
		_, err = kv.Get(ctx, "baku.0.p-1")
		return err
	})
	refused("manager reads the data keys' stream", func(ctx context.Context) error {
		s, err := mgr.Stream(ctx, "KV_"+bus.BucketKeys)
		if err != nil {
			return nil
		}
		_, err = s.GetMsg(ctx, 1)
		return err
	})
	refused("manager consumes the data keys", func(ctx context.Context) error {
		_, err := mgr.CreateOrUpdateConsumer(ctx, "KV_"+bus.BucketKeys, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
		return err
	})
	refused("manager writes a data key", func(ctx context.Context) error {
		_, err := mgr.Publish(ctx, "$KV."+bus.BucketKeys+".baku.0.p-2", []byte("key"))
		return err
	})
	if info, err := disp.Stream(ctx, bus.StreamAudit); err != nil || info.CachedInfo().State.Msgs != 1 {
		t.Fatalf("AUDIT after the attempts: %v", err)
	}
}
