package export

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/freeport"
)

// versitygw is the S3-compatible gateway the S3 test runs on loopback: built from its Go
// module by hack/build-versitygw.sh into the cache (never downloaded as a binary).
func versitygw(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CROUPIER_VERSITYGW")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "croupier", "versitygw-v1.8.0", "versitygw")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CROUPIER_S3_TESTS") == "required" {
			t.Fatalf("no versitygw at %s: run hack/build-versitygw.sh", p)
		}
		t.Skip("no versitygw (hack/build-versitygw.sh builds it)")
	}
	return p
}

// TestExportToS3: the export written to a real S3-compatible server on loopback
// (versitygw over a directory), read back from the bucket with arrow-go.
func TestExportToS3(t *testing.T) {
	bin := versitygw(t)
	addr := freeport.Addr(t)
	root := t.TempDir()
	cmd := exec.Command(bin, "--access", "croupier-export", "--secret", "export-secret-123", "--port", addr, "posix", root)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	bustest.Eventually(t, 30*time.Second, "versitygw listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	t.Setenv("AWS_ACCESS_KEY_ID", "croupier-export")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "export-secret-123")
	sink, err := NewS3("http://"+addr+"/warehouse", "crm")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sink.Client.MakeBucket(ctx, "crm", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range 10 {
		o := bus.Outcome{Time: at, DecisionID: route.DecisionID(fmt.Sprint(i)), Brand: "baku", Player: fmt.Sprintf("p-%d", i%4), Campaign: "welcome",
			Kind: bus.OutcomeAttempt, Result: "sent", Channel: crmv1.ChannelEmail, Attempt: 1}
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, o.Player), b); err != nil {
			t.Fatal(err)
		}
	}
	e := &Exporter{JS: js, Sink: sink, Key: keys, Batch: 100, Wait: 200 * time.Millisecond}
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(c) }()
	defer func() { cancel(); <-done }()
	var rows []row
	bustest.Eventually(t, 30*time.Second, "the batch in the bucket", func() bool {
		rows = nil
		n := 0
		for obj := range sink.Client.ListObjects(ctx, "crm", minio.ListObjectsOptions{Prefix: "warehouse/brand=baku/date=2026-12-07/", Recursive: true}) {
			if obj.Err != nil {
				return false
			}
			n++
			if !strings.HasSuffix(obj.Key, ".parquet") {
				continue
			}
			r, err := sink.Client.GetObject(ctx, "crm", obj.Key, minio.GetObjectOptions{})
			if err != nil {
				return false
			}
			b, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil {
				return false
			}
			rows = append(rows, parquetRows(t, obj.Key, b)...)
		}
		return n == 2 && len(rows) == 10
	})
	for _, r := range rows {
		if len(r.Player) != 64 || r.Channel != "email" || !r.Time.Equal(at) {
			t.Fatalf("a record read back from the bucket: %+v", r)
		}
	}
}
