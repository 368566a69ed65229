package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics checks that the brokers answer and that every topic exists,
// creating missing ones with the given partitions and replication factor
// (-1: the cluster default). It fails with a clear error when the brokers are
// unreachable or a topic cannot be created.
func EnsureTopics(ctx context.Context, o ClientOptions, topics []string, partitions int32, replication int16) error {
	if err := o.Check(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(o.kgoOpts()...)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("bus: kafka brokers %s do not answer: %w", strings.Join(o.Brokers, ","), err)
	}
	var missing, other []string
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err != nil:
			return fmt.Errorf("bus: topic %s: %w", t, d.Err)
		case len(d.Partitions) == 0:
			return fmt.Errorf("bus: topic %s has no partitions", t)
		case int32(len(d.Partitions)) != partitions:
			other = append(other, fmt.Sprintf("%s has %d", t, len(d.Partitions)))
		}
	}
	if len(other) > 0 && o.Logger != nil {
		// Not changed here: adding partitions moves keys (alert streams) to
		// other partitions, which reorders what is in flight.
		o.Logger.Warn("existing topics have another partition count than kafka.partitions; they are used as they are "+
			"(add partitions with Kafka's tools while Herald is stopped, if more are wanted)",
			"kafka.partitions", partitions, "topics", strings.Join(other, "; "))
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	res, err := adm.CreateTopics(ctx, partitions, replication, nil, missing...)
	if err != nil {
		return fmt.Errorf("bus: create topics %v: %w", missing, err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("bus: create topic %s (partitions %d, replication %d): %w", r.Topic, partitions, replication, r.Err)
		}
	}
	if o.Logger != nil {
		o.Logger.Info("created topics", "topics", missing, "partitions", partitions, "replication", replication)
	}
	return nil
}
