package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lag measures how far Herald's consumer groups are behind, per group, topic
// and partition, by asking the brokers (kadm): it works the same against the
// embedded broker and a real cluster. It is a prometheus.Collector; results
// are cached for a second so concurrent scrapes cost one query.
type Lag struct {
	adm  *kadm.Client
	cl   *kgo.Client
	desc *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	samples []LagSample
}

// LagSample is one partition's lag.
type LagSample struct {
	Group, Topic string
	Partition    int32
	Lag          int64
}

// NewLag connects an admin client.
func NewLag(o ClientOptions) (*Lag, error) {
	cl, err := kgo.NewClient(o.kgoOpts()...)
	if err != nil {
		return nil, err
	}
	return &Lag{adm: kadm.NewClient(cl), cl: cl, desc: prometheus.NewDesc("herald_consumer_lag",
		"Records a Herald consumer group has yet to process, by group, topic and partition.",
		[]string{"group", "topic", "partition"}, nil)}, nil
}

// Samples returns the current lag of every herald-* group.
func (l *Lag) Samples(ctx context.Context) ([]LagSample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) < time.Second && l.samples != nil {
		return l.samples, nil
	}
	listed, err := l.adm.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	var groups []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, "herald-") {
			groups = append(groups, g)
		}
	}
	lags, err := l.adm.Lag(ctx, groups...)
	if err != nil {
		return nil, err
	}
	var out []LagSample
	for _, g := range lags.Sorted() {
		for _, ps := range g.Lag {
			for _, p := range ps {
				if p.Err == nil && p.Lag >= 0 {
					out = append(out, LagSample{Group: g.Group, Topic: p.Topic, Partition: p.Partition, Lag: p.Lag})
				}
			}
		}
	}
	l.samples, l.at = out, time.Now()
	return out, nil
}

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	samples, err := l.Samples(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(l.desc, err)
		return
	}
	for _, s := range samples {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(s.Lag), s.Group, s.Topic,
			strconv.Itoa(int(s.Partition)))
	}
}

// Close closes the admin client.
func (l *Lag) Close() { l.cl.Close() }

// Committed returns the offsets group has committed on topic, by partition:
// the next offset the group will read there (a partition it has committed
// nothing on is missing).
func (l *Lag) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	resp, err := l.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("bus: offsets of %s: %w", group, err)
	}
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		if o.Err == nil {
			out[p] = o.At
		}
	}
	return out, nil
}

// EndOffsets returns topic's end offsets by partition: the offset the next
// record produced there will have.
func (l *Lag) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	resp, err := l.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("bus: end offsets of %s: %w", topic, err)
	}
	if err := resp.Error(); err != nil {
		return nil, fmt.Errorf("bus: end offsets of %s: %w", topic, err)
	}
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		out[p] = o.Offset
	}
	return out, nil
}
