package export

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a Sink writing objects to an S3-compatible bucket (AWS S3, MinIO, Ceph, SeaweedFS,
// versitygw...). An object appears whole when its PUT completes, as S3 promises.
type S3 struct {
	Client *minio.Client
	Bucket string
	// Prefix is prepended to every object name ("" or ending in /).
	Prefix string
}

// NewS3 reaches a bucket at endpoint (https://host[:port][/prefix], or http:// on a
// trusted network), with credentials from the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, or the pod's IAM role).
func NewS3(endpoint, bucket string) (*S3, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("export S3 endpoint %q: want https://host[:port][/prefix]", endpoint)
	}
	if bucket == "" {
		return nil, fmt.Errorf("export S3 bucket: required")
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{}})
	c, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: u.Scheme == "https"})
	if err != nil {
		return nil, err
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{Client: c, Bucket: bucket, Prefix: prefix}, nil
}

// Put stores data as the object Prefix+p.
func (s *S3) Put(ctx context.Context, p string, data []byte) error {
	ct := "application/octet-stream"
	switch path.Ext(p) {
	case ".ndjson":
		ct = "application/x-ndjson"
	case ".parquet":
		ct = "application/vnd.apache.parquet"
	}
	_, err := s.Client.PutObject(ctx, s.Bucket, s.Prefix+p, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: ct})
	return err
}
