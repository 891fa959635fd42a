package bus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure an in-process NATS server with JetStream.
type EmbeddedOptions struct {
	// DataDir holds JetStream file storage (the server picks a temporary directory when
	// empty; pass one to keep data across restarts).
	DataDir string
	// Host to listen on (default 127.0.0.1).
	Host string
	// Port to listen on; -1 picks a free port (default), 0 is 4222.
	Port int
	// MaxPayload in bytes (default 1 MiB, the server's default).
	MaxPayload int32
}

// StartEmbedded starts a NATS server with JetStream in this process and waits until it
// accepts connections. Shut it down with Shutdown and WaitForShutdown.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	opts := &server.Options{
		ServerName: "croupier-embedded",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.DataDir,
		MaxPayload: o.MaxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded NATS: not ready for connections within 10s")
	}
	return s, nil
}

// ConnectEmbedded connects to an embedded server over loopback.
func ConnectEmbedded(s *server.Server, name string) (*nats.Conn, error) {
	return nats.Connect(s.ClientURL(), nats.Name(name), nats.MaxReconnects(-1))
}

// ClientOptions are the connection options the manager and the dispatcher share: a name,
// endless reconnects, and optional credentials and CA. The credentials file is a .creds
// file (JWT + nkey, operator mode) or an nkey user seed (config/nats).
func ClientOptions(name, credsFile, caFile string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(2 * time.Second)}
	if credsFile != "" {
		raw, err := os.ReadFile(credsFile)
		if err != nil {
			return nil, fmt.Errorf("NATS credentials: %w", err)
		}
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("SU")) {
			opt, err := nats.NkeyOptionFromSeed(credsFile)
			if err != nil {
				return nil, fmt.Errorf("NATS nkey seed %s: %w", credsFile, err)
			}
			opts = append(opts, opt)
		} else {
			opts = append(opts, nats.UserCredentials(credsFile))
		}
	}
	if caFile != "" {
		opts = append(opts, nats.RootCAs(caFile))
	}
	return opts, nil
}
