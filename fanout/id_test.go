package fanout

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/heraldproject/herald"
)

// TestDeliveryID: ids are deterministic, distinct per recipient and channel,
// valid UUIDs, and share their alert's first 8 bytes, so a later alert's
// deliveries sort after an earlier one's.
func TestDeliveryID(t *testing.T) {
	a1, a2 := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	if DeliveryID(a1, "u1", herald.ChannelWebhook) != DeliveryID(a1, "u1", herald.ChannelWebhook) {
		t.Fatal("not deterministic")
	}
	seen := map[string]bool{}
	var first, second []string
	for _, a := range []string{a1, a2} {
		for _, u := range []string{"u1", "u2", "u3"} {
			for _, ch := range []herald.Channel{herald.ChannelWebhook, herald.ChannelEmail} {
				id := DeliveryID(a, u, ch)
				if seen[id] {
					t.Fatalf("duplicate id %s", id)
				}
				seen[id] = true
				if _, err := uuid.Parse(id); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if id[:18] != a[:18] {
					t.Fatalf("delivery %s does not share alert %s's first 8 bytes", id, a)
				}
				if a == a1 {
					first = append(first, id)
				} else {
					second = append(second, id)
				}
			}
		}
	}
	if slices.Max(first) >= slices.Min(second) {
		t.Fatalf("deliveries of the later alert do not sort after the earlier one's: %v %v", first, second)
	}
	if id := DeliveryID("not-a-uuid", "u1", herald.ChannelWebhook); strings.Count(id, "-") != 4 {
		t.Fatalf("non-UUID alert id gave %q", id)
	}
}
