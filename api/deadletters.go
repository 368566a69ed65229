package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/deadletter"
	"github.com/heraldproject/herald/store"
)

// DeadLetterOutput is a delivery or record Herald gave up on.
type DeadLetterOutput struct {
	ID          string           `json:"id"`
	Kind        string           `json:"kind" enum:"delivery,record" doc:"a dead delivery, or a record that could not be processed"`
	DeliveryID  string           `json:"deliveryId,omitempty"`
	AlertID     string           `json:"alertId,omitempty"`
	Channel     string           `json:"channel,omitempty"`
	RecipientID string           `json:"recipientId,omitempty"`
	Recipient   string           `json:"recipient,omitempty"`
	Reason      string           `json:"reason"`
	Attempts    int              `json:"attempts"`
	Source      string           `json:"source" doc:"topic/partition/offset of the record that died"`
	CreatedAt   time.Time        `json:"createdAt"`
	ReplayedAt  *time.Time       `json:"replayedAt,omitempty"`
	Replays     int              `json:"replays"`
	History     []herald.Attempt `json:"history,omitempty" doc:"every attempt, with its time and reason"`
	Payload     string           `json:"payload,omitempty" doc:"the record's bytes (a record dead letter)"`
}

func deadLetterOutput(d *herald.DeadLetter) DeadLetterOutput {
	o := DeadLetterOutput{ID: d.ID, Kind: d.Kind, DeliveryID: d.DeliveryID, AlertID: d.AlertID, Channel: string(d.Channel),
		RecipientID: d.RecipientID, Recipient: d.Recipient, Reason: d.Reason, Attempts: d.Attempts, Source: d.Source,
		CreatedAt: d.CreatedAt, ReplayedAt: d.ReplayedAt, Replays: d.Replays, History: d.History}
	if d.Kind == herald.DeadRecord {
		o.Payload = string(d.Payload)
	}
	return o
}

type deadLetterQuery struct {
	Limit   int       `query:"limit" minimum:"1" maximum:"500" default:"50" doc:"page size"`
	Cursor  string    `query:"cursor" maxLength:"512" doc:"nextCursor from the previous page"`
	Channel string    `query:"channel" enum:"webhook,slack,email,sms" doc:"only this channel"`
	AlertID string    `query:"alertId" maxLength:"64" doc:"only this alert"`
	Since   time.Time `query:"since" doc:"created at or after (RFC 3339)"`
	Until   time.Time `query:"until" doc:"created before (RFC 3339)"`
}

func (q deadLetterQuery) filter() store.DeadLetterFilter {
	return store.DeadLetterFilter{Channel: herald.Channel(q.Channel), AlertID: q.AlertID, Since: q.Since, Until: q.Until}
}

type deadLetterList struct {
	Body struct {
		DeadLetters []DeadLetterOutput `json:"deadLetters"`
		NextCursor  string             `json:"nextCursor,omitempty"`
	}
}

// BulkReplayInput selects dead letters to replay.
type BulkReplayInput struct {
	Channel string    `json:"channel,omitempty" enum:"webhook,slack,email,sms"`
	AlertID string    `json:"alertId,omitempty" maxLength:"64"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	// Limit bounds one call; call again for more.
	Limit int `json:"limit,omitempty" minimum:"1" maximum:"10000" default:"1000"`
}

type bulkReplayOutput struct {
	Body struct {
		Replayed int `json:"replayed"`
		Skipped  int `json:"skipped" doc:"dead letters not replayed: those whose delivery is no longer dead from them, and those counted in notReplayable"`
		// NotReplayable is the part of Skipped that can never be replayed.
		NotReplayable int      `json:"notReplayable" doc:"dead records from a topic that cannot be replayed into (the DLQ, a retry tier)"`
		IDs           []string `json:"ids"`
	}
}

type replayOutput struct {
	Body struct {
		ID       string `json:"id"`
		Replayed bool   `json:"replayed"`
	}
}

func (s *Server) registerDeadLetters(a huma.API) {
	tags := []string{"dead letters"}
	huma.Register(a, huma.Operation{
		OperationID: "list-dead-letters", Method: http.MethodGet, Path: "/v1/dead-letters", Tags: tags,
		Summary: "List dead letters", Description: "Newest first, filtered by channel, alert and time, a page at a time.",
	}, func(ctx context.Context, in *deadLetterQuery) (*deadLetterList, error) {
		f := in.filter()
		cur, err := decodeAlertCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		f.After = cur
		dls, err := s.Store.DeadLetters(ctx, f, in.Limit+1)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &deadLetterList{}
		out.Body.DeadLetters = []DeadLetterOutput{}
		if len(dls) > in.Limit {
			last := dls[in.Limit-1]
			out.Body.NextCursor = encodeCursor(strconv.FormatInt(last.CreatedAt.UnixNano(), 10) + ":" + last.ID)
			dls = dls[:in.Limit]
		}
		for _, d := range dls {
			out.Body.DeadLetters = append(out.Body.DeadLetters, deadLetterOutput(d))
		}
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "get-dead-letter", Method: http.MethodGet, Path: "/v1/dead-letters/{id}", Tags: tags,
		Summary: "Get a dead letter with every attempt",
	}, func(ctx context.Context, in *idPath) (*struct{ Body DeadLetterOutput }, error) {
		d, err := s.Store.DeadLetter(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{ Body DeadLetterOutput }{Body: deadLetterOutput(d)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "delete-dead-letter", Method: http.MethodDelete, Path: "/v1/dead-letters/{id}", Tags: tags,
		Summary: "Discard a dead letter without replaying it",
		Description: "Only a dead letter not replayed: the delivery it came from stays dead and no longer names it; " +
			"its alert, with no dead letter waiting, may then be pruned (alerts.retention). 409 for one replayed.",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.Store.DeleteDeadLetter(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "replay-dead-letter", Method: http.MethodPost, Path: "/v1/dead-letters/{id}/replay", Tags: tags,
		Summary:       "Replay a dead letter",
		Description:   "A dead delivery is tried again with its delivery id and a fresh retry budget.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *idPath) (*replayOutput, error) {
		if err := deadletter.Replay(ctx, s.Store, s.Producer, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &replayOutput{}
		out.Body.ID, out.Body.Replayed = in.ID, true
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "replay-dead-letters", Method: http.MethodPost, Path: "/v1/dead-letters/replay", Tags: tags,
		Summary: "Replay dead letters by filter",
		Description: "Replays dead letters not replayed before that match the filter (all, if empty), oldest " +
			"first, at most limit per call, among those there were when the call began; dead letters that cannot be " +
			"replayed are skipped and counted.",
	}, func(ctx context.Context, in *struct{ Body BulkReplayInput }) (*bulkReplayOutput, error) {
		b := in.Body
		limit := b.Limit
		if limit == 0 {
			limit = 1000
		}
		f := store.DeadLetterFilter{Channel: herald.Channel(b.Channel), AlertID: b.AlertID, Since: b.Since,
			Until: b.Until, Unreplayed: true, OldestFirst: true}
		// The dead letters there were when the call began: a replayed poison
		// record that dies again is a new one, not replayed again here.
		if now := s.Now(); f.Until.IsZero() || f.Until.After(now) {
			f.Until = now
		}
		out := &bulkReplayOutput{}
		out.Body.IDs = []string{}
		// Page on past dead letters that cannot be replayed (they stay
		// unreplayed): a call replays up to limit of those that can.
		for out.Body.Replayed < limit {
			dls, err := s.Store.DeadLetters(ctx, f, limit)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			for _, d := range dls {
				if out.Body.Replayed == limit {
					break
				}
				err := deadletter.Replay(ctx, s.Store, s.Producer, d.ID)
				switch herald.ErrorCode(err) {
				case "":
					out.Body.Replayed++
					out.Body.IDs = append(out.Body.IDs, d.ID)
				case herald.ECONFLICT, herald.ENOTFOUND: // ENOTFOUND: discarded meanwhile
					out.Body.Skipped++
					if !deadletter.Replayable(d) {
						out.Body.NotReplayable++
					}
				default:
					return nil, s.problem(ctx, err)
				}
			}
			if len(dls) < limit {
				break
			}
			last := dls[len(dls)-1]
			f.After = &store.AlertCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		return out, nil
	})
}
