package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DelayOptions configures a delay tier.
type DelayOptions struct {
	ClientOptions
	// Topic is the tier's topic (RetryTopic); the group is derived from it.
	Topic string
	// Producer hands due records back and dead-letters malformed ones.
	Producer *Producer
	Now      func() time.Time
}

// Delay holds the records of one delay-tier topic until they are due, then
// produces them back to the topic named in their HeaderReturnTopic header.
//
// It never sleeps on a record: when a partition's head record is not yet due,
// the partition is paused and rewound to that record, and one timer per
// partition resumes it when the record is due. Other partitions keep flowing.
// Offsets are committed only for records handed back, so a crash at any point
// hands a record back at least once and never loses it.
type Delay struct {
	cl   *kgo.Client
	o    DelayOptions
	log  *slog.Logger
	mu   sync.Mutex
	wake map[int32]*time.Timer
}

// DelayGroupPrefix begins the consumer group of every retry tier: the group
// of tier topic T is DelayGroupPrefix + T. Such a group's lag counts the
// deliveries waiting for their retry time on purpose, not work behind, so
// lag alerts leave these groups out.
const DelayGroupPrefix = "herald-delay-"

// NewDelay joins the tier's consumer group.
func NewDelay(o DelayOptions) (*Delay, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	group := DelayGroupPrefix + o.Topic
	opts := append(o.kgoOpts(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(o.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: delay %s: %w", o.Topic, err)
	}
	return &Delay{cl: cl, o: o, log: o.Logger.With("group", group), wake: make(map[int32]*time.Timer)}, nil
}

// Run hands records back as they fall due until stop is cancelled. Produces
// and commits use work, which should outlive stop.
func (d *Delay) Run(stop, work context.Context) error {
	defer d.stopTimers()
	for {
		fs := d.cl.PollRecords(stop, 1000)
		if stop.Err() != nil {
			d.cl.AllowRebalance()
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("bus: delay client closed")
		}
		fs.EachError(func(topic string, p int32, err error) {
			d.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		if err := d.handle(work, fs); err != nil {
			d.cl.AllowRebalance()
			if work.Err() != nil {
				return nil
			}
			return err
		}
		d.cl.AllowRebalance()
	}
}

func (d *Delay) handle(ctx context.Context, fs kgo.Fetches) error {
	now := d.o.Now()
	var out, done []*kgo.Record
	rewind := make(map[int32]kgo.EpochOffset)
	dueAt := make(map[int32]time.Time)
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		for _, r := range p.Records {
			due, ret, err := delayed(r)
			if err != nil {
				d.log.Warn("malformed delayed record dead-lettered", "topic", r.Topic, "partition", r.Partition,
					"offset", r.Offset, "err", err)
				out = append(out, DeadLetter(r, err))
				done = append(done, r)
				continue
			}
			if due.After(now) {
				rewind[p.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
				dueAt[p.Partition] = due
				return
			}
			out = append(out, back(r, ret))
			done = append(done, r)
		}
	})
	if len(out) > 0 {
		if err := d.o.Producer.Produce(ctx, out...); err != nil {
			return err
		}
	}
	if len(done) > 0 {
		if err := d.cl.CommitRecords(ctx, done...); err != nil {
			d.log.Warn("commit failed; records will be handed back again", "err", err)
		}
	}
	if len(rewind) > 0 {
		parts := make([]int32, 0, len(rewind))
		for p := range rewind {
			parts = append(parts, p)
		}
		d.cl.PauseFetchPartitions(map[string][]int32{d.o.Topic: parts})
		d.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{d.o.Topic: rewind})
		for p, due := range dueAt {
			d.resumeAt(p, due.Sub(now))
		}
	}
	return nil
}

// resumeAt resumes partition p after wait; one timer per partition.
func (d *Delay) resumeAt(p int32, wait time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.wake[p]; ok {
		t.Stop()
	}
	d.wake[p] = time.AfterFunc(wait, func() {
		d.cl.ResumeFetchPartitions(map[string][]int32{d.o.Topic: {p}})
	})
}

func (d *Delay) stopTimers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.wake {
		t.Stop()
	}
}

// Close leaves the group. Call it after Run returns.
func (d *Delay) Close() { d.cl.Close() }

// delayed reads a delayed record's due time and return topic.
func delayed(r *kgo.Record) (time.Time, string, error) {
	ms, err := strconv.ParseInt(Header(r, HeaderDue), 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("delayed record without a valid %s header", HeaderDue)
	}
	ret := Header(r, HeaderReturnTopic)
	if !strings.HasPrefix(ret, deliveriesPrefix) {
		return time.Time{}, "", fmt.Errorf("delayed record must return to a %s* topic, not %q", deliveriesPrefix, ret)
	}
	return time.UnixMilli(ms), ret, nil
}

// back is the record handed back to its topic: same key, value and headers
// (less the delay headers).
func back(r *kgo.Record, topic string) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h.Key != HeaderDue && h.Key != HeaderReturnTopic {
			hs = append(hs, h)
		}
	}
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs}
}

// Delayed returns a copy of r bound for the delay tier topic, due at due,
// going back to returnTopic.
func Delayed(r *kgo.Record, tier, returnTopic string, due time.Time) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+2)
	for _, h := range r.Headers {
		if h.Key != HeaderDue && h.Key != HeaderReturnTopic {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderDue, Value: strconv.AppendInt(nil, due.UnixMilli(), 10)},
		kgo.RecordHeader{Key: HeaderReturnTopic, Value: []byte(returnTopic)})
	return &kgo.Record{Topic: tier, Key: r.Key, Value: r.Value, Headers: hs}
}
