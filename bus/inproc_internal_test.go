package bus

import (
	"io"
	"net"
	"testing"

	"golang.org/x/net/nettest"
)

// TestMemPipe runs the net.Conn conformance tests (reads and writes in
// both directions, deadlines, closing, concurrent use) on memPipe.
func TestMemPipe(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2 = memPipe(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092})
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestMemPipeCompacts checks that a reader always behind its writer does
// not make the buffer grow without bound.
func TestMemPipeCompacts(t *testing.T) {
	w, r := memPipe(&net.TCPAddr{})
	defer w.Close()
	msg := make([]byte, 1000)
	got := make([]byte, 1000)
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	for range 2000 { // the writer always one message ahead
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := r.Read(got[:500]); err != nil {
				t.Fatal(err)
			}
		}
	}
	in := r.(*memConn).in
	if c := cap(in.buf); c > 1<<20 {
		t.Errorf("buffer capacity %d after 2 MB written with 1 kB unread: not compacted", c)
	}
}

// TestMemPipeReleasesBigBuffers checks that a drained buffer keeps at most
// maxKeptBuffer of capacity: a big fetch response is not held for the
// connection's lifetime.
func TestMemPipeReleasesBigBuffers(t *testing.T) {
	w, r := memPipe(&net.TCPAddr{})
	defer w.Close()
	big := make([]byte, 4*maxKeptBuffer)
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	if c := cap(r.(*memConn).in.buf); c > maxKeptBuffer {
		t.Errorf("drained buffer kept %d bytes of capacity, want at most %d", c, maxKeptBuffer)
	}
	small := []byte("small")
	if _, err := w.Write(small); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(small))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "small" {
		t.Fatalf("after the release: read %q, %v", got, err)
	}
}
