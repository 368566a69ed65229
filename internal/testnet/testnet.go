// Package testnet gives tests loopback addresses to hand to child processes.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Ports below Linux's ephemeral range (32768–60999 by default): an address
// taken from the ephemeral range by listening on :0 and closing can be
// grabbed by any outgoing connection (a Kafka client's, say) before the
// child binds it. Outgoing connections never use these.
const (
	lowPort  = 20000
	highPort = 32000
)

// FreeAddr returns a 127.0.0.1 address nothing listens on, with a port
// outside the ephemeral range so no outgoing connection takes it before the
// process it is meant for binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", lowPort+rand.IntN(highPort-lowPort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("testnet: no free loopback port in 20000-32000")
	return ""
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return addr.Port
}
