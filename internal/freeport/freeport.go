// Package freeport hands tests loopback ports to give a server that binds its address
// later (a child process, a component started by a stack).
//
// A port taken from the kernel with ":0" and closed again is in the ephemeral range, where
// the kernel hands it on to the next ":0" listener or outgoing connection of any process
// (an API server, etcd, a client) before the server that was meant to get it binds it:
// "address already in use". The ports here come from below the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range starts at 32768), which the kernel never hands
// out by itself; each process walks its own block and skips ports that are bound already.
package freeport

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

const (
	low    = 15000 // first port handed out
	high   = 32000 // below the kernel's ephemeral range
	blocks = 17    // processes spread over (high-low)/blocks ports each
)

var (
	mu   sync.Mutex
	next int
)

// Port returns a loopback port nothing listens on, not handed out before by this process.
func Port(tb testing.TB) int {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	size := (high - low) / blocks
	if next == 0 {
		next = low + (os.Getpid()%blocks)*size
	}
	for range high - low {
		p := next
		next++
		if next >= high {
			next = low
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p
	}
	tb.Fatal("freeport: no free loopback port between " + strconv.Itoa(low) + " and " + strconv.Itoa(high))
	return 0
}

// Addr returns "127.0.0.1:<port>" for a port from Port.
func Addr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Port(tb))
}
