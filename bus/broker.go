package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerOptions configures the embedded broker.
type BrokerOptions struct {
	// Addr is the loopback host:port to listen on ("127.0.0.1:0" picks a
	// free port).
	Addr string
	// DataDir is where topics, records and group offsets persist.
	DataDir string
	// Partitions is the partition count of every seeded topic.
	Partitions int32
	// Topics are the topics to seed (see Topics).
	Topics []string
	// Logger receives the broker's warnings and errors.
	Logger *slog.Logger
	// Retention is how long records are kept (Kafka's log.retention.ms; 0:
	// Kafka's default, 7 days). A record batch is dropped once its newest
	// record is older, checked every RetentionCheck.
	Retention time.Duration
	// RetentionCheck is how often retention is applied (default 1 minute).
	RetentionCheck time.Duration
}

// Broker is the embedded Kafka broker (franz-go's kfake) used in single-node
// mode. It speaks the Kafka protocol, so kcat and other Kafka tools can use it.
type Broker struct {
	c    *kfake.Cluster
	ln   *listener
	lock *os.File // the data directory's lock (lockDir)
	stop chan struct{}
	done sync.WaitGroup
}

// StartBroker starts the embedded broker, persisting under o.DataDir and
// seeding every Herald topic so topic metadata survives a crash.
func StartBroker(o BrokerOptions) (*Broker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.RetentionCheck <= 0 {
		o.RetentionCheck = time.Minute
	}
	var lock *os.File
	if o.DataDir != "" {
		var err error
		if lock, err = lockDir(o.DataDir); err != nil {
			return nil, err
		}
	}
	// Listen ourselves so the configured host is honoured; kfake would bind
	// 127.0.0.1 with the port alone.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("bus: embedded broker: listen on %s: %w", o.Addr, err)
	}
	if !isLoopback(ln.Addr()) {
		o.Logger.Warn("THE EMBEDDED BROKER LISTENS BEYOND LOOPBACK and has no authentication: anyone who can reach "+
			ln.Addr().String()+" can read every topic and produce alerts that skip Herald's tokens; "+
			"keep kafka.addr on loopback, or use a Kafka cluster with TLS and SASL (kafka.brokers)", "addr", ln.Addr().String())
	}
	l := newListener(ln, func(msg string, args ...any) { o.Logger.Warn(msg, args...) })
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return l, nil }),
		kfake.DataDir(o.DataDir),
		kfake.SeedTopics(o.Partitions, o.Topics...),
		kfake.DefaultNumPartitions(int(o.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(kfakeLogger{o.Logger}),
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": strconv.FormatInt(o.Retention.Milliseconds(), 10)}),
	)
	if err != nil {
		l.Close()
		lock.Close()
		return nil, fmt.Errorf("bus: embedded broker: %w", err)
	}
	b := &Broker{c: c, ln: l, lock: lock, stop: make(chan struct{})}
	// kfake applies retention on its own only to topics with an explicit
	// retention config, so without this the data directory grew forever.
	b.done.Go(func() {
		t := time.NewTicker(o.RetentionCheck)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.ApplyRetention()
			case <-b.stop:
				return
			}
		}
	})
	return b, nil
}

// Addrs returns the addresses clients connect to.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Dial connects a client of this process to the broker without the
// network (an in-memory pipe), and to any other address over TCP. Pass it as
// ClientOptions.Dial.
func (b *Broker) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr == b.ln.Addr().String() {
		return b.ln.dial(ctx)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Close stops the broker, writing its metadata to disk.
func (b *Broker) Close() {
	close(b.stop)
	b.done.Wait()
	b.c.Close()
	b.lock.Close()
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		return // info and debug log every request
	}
	k.l.Log(context.Background(), lv, fmt.Sprintf(msg, args...), "component", "broker")
}
