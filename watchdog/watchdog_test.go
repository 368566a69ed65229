package watchdog_test

import (
	"context"
	"testing"

	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/watchdog"
)

type lagSamples []bus.LagSample

func (l lagSamples) Samples(context.Context) ([]bus.LagSample, error) { return l, nil }

// TestLagCheck checks the lag check names every group behind, in one
// finding, and leaves out the retry tiers, whose lag is deliveries waiting
// for their retry time on purpose.
func TestLagCheck(t *testing.T) {
	w := &watchdog.Watchdog{MaxLag: 20, Lag: lagSamples{
		{Group: "herald-deliver-webhook", Topic: "herald.deliveries.webhook", Partition: 0, Lag: 15},
		{Group: "herald-deliver-webhook", Topic: "herald.deliveries.webhook", Partition: 1, Lag: 15},
		{Group: "herald-fanout", Topic: "herald.alerts", Partition: 0, Lag: 21},
		{Group: "herald-deliver-email", Topic: "herald.deliveries.email", Partition: 0, Lag: 20},
		{Group: bus.DelayGroupPrefix + "herald.retry.10s", Topic: "herald.retry.10s", Partition: 0, Lag: 5000},
	}}
	got := w.Check(context.Background())
	const want = "consumer group herald-deliver-webhook is 30 records behind, herald-fanout is 21 records behind (threshold 20)"
	if len(got) != 1 || got[0].Check != "consumer_lag" || got[0].Message != want {
		t.Fatalf("findings = %+v, want one consumer_lag finding %q", got, want)
	}
	w.Lag = lagSamples{{Group: bus.DelayGroupPrefix + "herald.retry.1m", Topic: "herald.retry.1m", Lag: 5000}}
	if got := w.Check(context.Background()); len(got) != 0 {
		t.Fatalf("a retry tier's waiting deliveries gave findings %+v", got)
	}
}
