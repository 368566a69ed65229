package bus_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
)

// TestBrokerRetention checks that the embedded broker drops records older
// than its retention and deletes their segment files, and keeps younger ones.
func TestBrokerRetention(t *testing.T) {
	const topic = "retention-test"
	dir := t.TempDir()
	const retention = 3 * time.Second
	b, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: dir, Partitions: 1,
		Topics: []string{topic}, Retention: retention, RetentionCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(n int) time.Time {
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		return time.Now()
	}
	adm := kadm.NewClient(cl)
	start := func() int64 {
		offs, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup(topic, 0)
		if !ok || o.Err != nil {
			t.Fatalf("start offset: %v %v", ok, o.Err)
		}
		return o.Offset
	}
	segments := func() int {
		n := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, topic) && strings.HasSuffix(p, ".dat") {
				n++
			}
			return nil
		})
		return n
	}

	produce(5)
	time.Sleep(time.Second)
	youngAt := produce(3)
	if got := start(); got != 0 {
		t.Fatalf("start offset %d before anything expired, want 0", got)
	}
	if segments() == 0 {
		t.Fatal("no segment files written for the topic")
	}
	// The first five expire first; the last three are kept until their own
	// retention has passed.
	for got := start(); got < 5; got = start() {
		if ctx.Err() != nil {
			t.Fatalf("start offset still %d after %s", got, 30*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := start(); got != 5 && time.Since(youngAt) < retention {
		t.Fatalf("start offset %d while the last 3 records are %s old, want 5", got, time.Since(youngAt))
	}
	for got := start(); got < 8; got = start() {
		if ctx.Err() != nil {
			t.Fatalf("start offset still %d after %s", got, 30*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := segments(); n != 0 {
		t.Fatalf("%d segment files left after every record expired", n)
	}
}

// BenchmarkBrokerRoundTrip produces records one at a time from 16
// goroutines (as the API does) to the embedded broker and consumes them
// in a group, over loopback TCP and over the in-process connections
// Broker.Dial gives this process's clients. cpu-µs/record is the whole
// process's CPU (the broker runs in it) per record produced and consumed.
func BenchmarkBrokerRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name   string
		inproc bool
	}{{"tcp", false}, {"inprocess", true}} {
		b.Run(tc.name, func(b *testing.B) {
			const topic = "roundtrip"
			br, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Partitions: 4,
				Topics: []string{topic}})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			opts := []kgo.Opt{kgo.SeedBrokers(br.Addrs()...), kgo.ProducerLinger(0)}
			if tc.inproc {
				opts = append(opts, kgo.Dialer(br.Dial))
			}
			prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
			if err != nil {
				b.Fatal(err)
			}
			defer prod.Close()
			cons, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("bench"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer cons.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			value := []byte(strings.Repeat("x", 400))
			got := make(chan int)
			go func() {
				n := 0
				for ctx.Err() == nil {
					fs := cons.PollFetches(ctx)
					n += fs.NumRecords()
					if err := cons.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
						b.Error(err)
					}
					if n >= b.N {
						break
					}
				}
				got <- n
			}()
			cpu0 := processCPU(b)
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := prod.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if n := <-got; n < b.N {
				b.Fatalf("consumed %d of %d records", n, b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
		})
	}
}

// processCPU is the CPU time this process has used (user and system).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBrokerDial checks that a client dialling through Broker.Dial (in
// process, no network) and one over TCP share the broker: each reads what
// the other wrote. Dial reaches other addresses over TCP, and fails once the
// broker is closed.
func TestBrokerDial(t *testing.T) {
	const topic = "dial-test"
	b, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Partitions: 1,
		Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := b.Dial(ctx, network, addr)
		if _, ok := c.(*net.TCPConn); ok {
			t.Errorf("Dial(%q) to the broker's own address gave a TCP connection", addr)
		}
		return c, err
	}
	inproc, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.Dialer(dial), kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer inproc.Close()
	tcp, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, v := range []string{"from-inprocess", "from-tcp"} {
		cl := inproc
		if v == "from-tcp" {
			cl = tcp
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
	}
	for name, cl := range map[string]*kgo.Client{"in-process": inproc, "tcp": tcp} {
		var got []string
		for len(got) < 2 && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s client: %v", name, err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if strings.Join(got, ",") != "from-inprocess,from-tcp" {
			t.Errorf("%s client read %q, want both records in order", name, got)
		}
	}

	// Any other address is dialled over TCP.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := b.Dial(ctx, "tcp", other.Addr().String())
	if err != nil {
		t.Fatalf("dial another address: %v", err)
	}
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("dial another address: got %T, want a TCP connection", c)
	}
	c.Close()

	addr := b.Addrs()[0]
	b.Close()
	closed = true
	if c, err := b.Dial(ctx, "tcp", addr); err == nil {
		c.Close()
		t.Error("Dial after Close succeeded")
	}
}

// TestBrokerDataDirLocked checks a second broker on a data directory in use
// is refused (two would overwrite each other's segments and lose records
// already acknowledged), and that closing the first frees the directory.
func TestBrokerDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: dir, Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: dir, Topics: []string{"t"}})
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second broker started on a data directory in use")
	}
	if !strings.Contains(err.Error(), "is in use by another process") {
		t.Errorf("error %q does not say the directory is in use", err)
	}
	first.Close()
	again, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: dir, Topics: []string{"t"}})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// TestEnsureTopicsPartitionMismatch checks existing topics with another
// partition count than configured are used as they are, with a warning
// naming them, and are not changed.
func TestEnsureTopicsPartitionMismatch(t *testing.T) {
	b, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Partitions: 2, Topics: []string{"herald.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var logs bytes.Buffer
	o := bus.ClientOptions{Brokers: b.Addrs(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, o, []string{"herald.test"}, 4, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "another partition count") || !strings.Contains(logs.String(), "herald.test has 2") {
		t.Fatalf("no warning naming the topic: %s", logs.String())
	}
	logs.Reset()
	if err := bus.EnsureTopics(ctx, o, []string{"herald.test"}, 2, 1); err != nil || logs.Len() != 0 {
		t.Fatalf("matching partitions: %v, logged %s", err, logs.String())
	}
}
