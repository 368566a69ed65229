package bus

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// listener is the embedded broker's TCP listener, which also accepts
// connections from clients in the same process (Broker.Dial). Those are
// in-memory pipes: a Kafka request from Herald's own producer or consumer to
// its own broker then costs no system calls, which on loopback TCP were
// about a tenth of the process's CPU (a write and a read on each side of
// every request and response).
type listener struct {
	tcp    net.Listener
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	done   sync.WaitGroup
}

func newListener(tcp net.Listener, log func(msg string, args ...any)) *listener {
	l := &listener{tcp: tcp, conns: make(chan net.Conn), closed: make(chan struct{})}
	l.done.Go(func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// kfake stops serving on the first error Accept returns, so
				// a transient one (too many open files) must not reach it.
				log("embedded broker: accept failed; retrying", "err", err)
				select {
				case <-time.After(100 * time.Millisecond):
					continue
				case <-l.closed:
					return
				}
			}
			select {
			case l.conns <- c:
			case <-l.closed:
				c.Close()
				return
			}
		}
	})
	return l
}

// Accept returns the next connection, over TCP or from this process.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops both kinds of connection.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.tcp.Close()
		l.done.Wait()
	})
	return err
}

// Addr is the TCP address.
func (l *listener) Addr() net.Addr { return l.tcp.Addr() }

// dial connects to the broker in process: one end of an in-memory pipe is
// accepted by the broker, the other is returned.
func (l *listener) dial(ctx context.Context) (net.Conn, error) {
	server, client := memPipe(l.Addr())
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// memPipe is a connected pair of in-memory connections. Unlike net.Pipe,
// a write does not wait for the peer to read it: bytes are appended to the
// peer's buffer, and a read takes whatever is buffered. The Kafka protocol
// bounds what is in flight (requests wait for responses), so the buffers
// stay small.
func memPipe(addr net.Addr) (net.Conn, net.Conn) {
	a, b := newMemBuf(), newMemBuf()
	return &memConn{in: a, out: b, addr: addr, rd: newDeadline(), wd: newDeadline()},
		&memConn{in: b, out: a, addr: addr, rd: newDeadline(), wd: newDeadline()}
}

// maxKeptBuffer is the most a drained memBuf keeps for its next writes; a
// bigger buffer (a fetch response of many records) is let go once read.
const maxKeptBuffer = 256 << 10

// memBuf is one direction of a memPipe.
type memBuf struct {
	mu     sync.Mutex
	buf    []byte
	off    int
	closed bool
	ready  chan struct{} // a token when bytes were written or the buffer closed
}

func newMemBuf() *memBuf { return &memBuf{ready: make(chan struct{}, 1)} }

func (m *memBuf) signal() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take moves buffered bytes into p, and reports whether the buffer is
// closed (with nothing left when n is 0).
func (m *memBuf) take(p []byte) (n int, closed bool) {
	m.mu.Lock()
	if m.off < len(m.buf) {
		n = copy(p, m.buf[m.off:])
		m.off += n
		switch {
		case m.off == len(m.buf) && cap(m.buf) > maxKeptBuffer:
			// Drained after a big fetch response: let the memory go
			// rather than keep it for the connection's lifetime.
			m.buf, m.off = nil, 0
		case m.off == len(m.buf):
			m.buf, m.off = m.buf[:0], 0
		case m.off >= 64<<10 && 2*m.off >= len(m.buf):
			// The writer keeps ahead: move the unread bytes to the front,
			// or the buffer would grow for as long as it does.
			m.buf, m.off = m.buf[:copy(m.buf, m.buf[m.off:])], 0
		}
	}
	more, closed := m.off < len(m.buf), m.closed
	m.mu.Unlock()
	if n > 0 && (more || closed) {
		m.signal() // leave the token for the next read
	}
	return n, closed
}

// put appends p for the reader; it fails once the buffer is closed.
func (m *memBuf) put(p []byte) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return io.ErrClosedPipe
	}
	m.buf = append(m.buf, p...)
	m.mu.Unlock()
	m.signal()
	return nil
}

func (m *memBuf) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.signal()
}

type memConn struct {
	in, out *memBuf
	addr    net.Addr
	rd, wd  *deadline
	once    sync.Once
}

func (c *memConn) Read(p []byte) (int, error) {
	for {
		n, closed := c.in.take(p)
		if n > 0 {
			return n, nil
		}
		if closed {
			return 0, io.EOF
		}
		select {
		case <-c.in.ready:
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	select {
	case <-c.wd.wait():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if err := c.out.put(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends both directions: the peer reads what was written, then EOF,
// and its writes fail.
func (c *memConn) Close() error {
	c.once.Do(func() {
		c.in.close()
		c.out.close()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.addr }
func (c *memConn) RemoteAddr() net.Addr { return c.addr }

func (c *memConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *memConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable deadline whose channel closes when it passes (as
// net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func newDeadline() *deadline { return &deadline{passed: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired (or is firing): wait for it to close
	}
	d.timer = nil
	select {
	case <-d.passed:
		d.passed = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		passed := d.passed
		d.timer = time.AfterFunc(dur, func() { close(passed) })
		return
	}
	close(d.passed)
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}
