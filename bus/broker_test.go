package bus_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
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
