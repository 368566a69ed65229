package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// apiClient talks to a running Herald's HTTP API.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

func (c *apiClient) do(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.base, "/")+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("is herald running at %s? %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var p struct {
			Detail string `json:"detail"`
			Errors []struct {
				Message  string `json:"message"`
				Location string `json:"location"`
			} `json:"errors"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			msg := p.Detail
			for _, e := range p.Errors {
				msg += "; " + e.Location + ": " + e.Message
			}
			return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, msg)
		}
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type deadLetter struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	DeliveryID string    `json:"deliveryId"`
	AlertID    string    `json:"alertId"`
	Channel    string    `json:"channel"`
	Recipient  string    `json:"recipient"`
	Reason     string    `json:"reason"`
	Attempts   int       `json:"attempts"`
	Source     string    `json:"source"`
	CreatedAt  time.Time `json:"createdAt"`
	Replays    int       `json:"replays"`
	History    []struct {
		Attempt int       `json:"attempt"`
		At      time.Time `json:"at"`
		Error   string    `json:"error"`
	} `json:"history"`
}

func dlqCmd(environ []string) *cobra.Command {
	c := newAPIClient()
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Browse and replay dead letters of a running Herald",
		Long: `Dead letters are deliveries Herald gave up on (a permanent failure, or the last
attempt) and records it could not process. These commands talk to a running
Herald's API (--server, env HERALD_SERVER).`,
	}
	clientFlags(cmd, c, environ)

	var f struct {
		channel, alert, since, until string
		limit, bulkLimit             int
		all                          bool
	}
	filterFlags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&f.channel, "channel", "", "only this channel (webhook, slack, email, sms)")
		cmd.Flags().StringVar(&f.alert, "alert", "", "only this alert id")
		cmd.Flags().StringVar(&f.since, "since", "", "created at or after: RFC 3339 time or a duration ago (e.g. 1h)")
		cmd.Flags().StringVar(&f.until, "until", "", "created before: RFC 3339 time or a duration ago")
	}
	list := &cobra.Command{
		Use: "list", Short: "List dead letters, newest first", Args: cobra.NoArgs,
		Example: "  herald dlq list --channel webhook --since 1h",
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			q.Set("limit", fmt.Sprint(f.limit))
			set(q, "channel", f.channel)
			set(q, "alertId", f.alert)
			for name, v := range map[string]string{"since": f.since, "until": f.until} {
				t, err := parseWhen(v)
				if err != nil {
					return fmt.Errorf("--%s: %w", name, err)
				}
				if !t.IsZero() {
					q.Set(name, t.Format(time.RFC3339Nano))
				}
			}
			var page struct {
				DeadLetters []deadLetter `json:"deadLetters"`
				NextCursor  string       `json:"nextCursor"`
			}
			if err := c.do("GET", "/v1/dead-letters?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCREATED\tKIND\tCHANNEL\tRECIPIENT\tATTEMPTS\tREPLAYS\tREASON")
			for _, d := range page.DeadLetters {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.ID, d.CreatedAt.Local().Format(time.DateTime), d.Kind,
					dash(d.Channel), dash(d.Recipient), d.Attempts, d.Replays, oneLine(d.Reason, 80))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "(more: raise --limit or narrow the filter)\n")
			}
			return nil
		},
	}
	filterFlags(list)
	list.Flags().IntVar(&f.limit, "limit", 50, "at most this many (1-500)")

	show := &cobra.Command{
		Use: "show ID", Short: "Show one dead letter with every attempt", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d deadLetter
			if err := c.do("GET", "/v1/dead-letters/"+url.PathEscape(args[0]), nil, &d); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "id:        %s\nkind:      %s\nalert:     %s\ndelivery:  %s\nchannel:   %s\nrecipient: %s\n"+
				"source:    %s\ncreated:   %s\nreplays:   %d\nreason:    %s\n", d.ID, d.Kind, dash(d.AlertID),
				dash(d.DeliveryID), dash(d.Channel), dash(d.Recipient), d.Source, d.CreatedAt.Local().Format(time.RFC3339),
				d.Replays, d.Reason)
			for _, a := range d.History {
				fmt.Fprintf(out, "  attempt %d at %s: %s\n", a.Attempt, a.At.Local().Format(time.RFC3339Nano), dash(a.Error))
			}
			return nil
		},
	}

	replay := &cobra.Command{
		Use:   "replay [ID...]",
		Short: "Replay dead letters by id, or every one matching a filter with --all",
		Example: `  herald dlq replay 3f1c…
  herald dlq replay --all --channel webhook --since 2h`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.all == (len(args) > 0) {
				return fmt.Errorf("give dead letter ids, or --all with optional filters")
			}
			for _, id := range args {
				if err := c.do("POST", "/v1/dead-letters/"+url.PathEscape(id)+"/replay", nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "replayed", id)
			}
			if !f.all {
				return nil
			}
			body := map[string]any{"limit": f.bulkLimit}
			if f.channel != "" {
				body["channel"] = f.channel
			}
			if f.alert != "" {
				body["alertId"] = f.alert
			}
			for name, v := range map[string]string{"since": f.since, "until": f.until} {
				t, err := parseWhen(v)
				if err != nil {
					return fmt.Errorf("--%s: %w", name, err)
				}
				if !t.IsZero() {
					body[name] = t
				}
			}
			var out struct {
				Replayed      int `json:"replayed"`
				Skipped       int `json:"skipped"`
				NotReplayable int `json:"notReplayable"`
			}
			if err := c.do("POST", "/v1/dead-letters/replay", body, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d, skipped %d (%d no longer dead or with their alert pruned, %d from a topic that cannot be replayed into)\n",
				out.Replayed, out.Skipped, out.Skipped-out.NotReplayable, out.NotReplayable)
			return nil
		},
	}
	filterFlags(replay)
	replay.Flags().BoolVar(&f.all, "all", false, "replay every dead letter not replayed before that matches the filters")
	replay.Flags().IntVar(&f.bulkLimit, "limit", 1000, "with --all, at most this many per call (1-10000)")

	discard := &cobra.Command{
		Use:     "discard ID...",
		Short:   "Discard dead letters without replaying them (their deliveries stay dead)",
		Example: `  herald dlq discard 3f1c…`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if err := c.do("DELETE", "/v1/dead-letters/"+url.PathEscape(id), nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "discarded", id)
			}
			return nil
		},
	}

	cmd.AddCommand(list, show, replay, discard)
	return cmd
}

func newAPIClient() *apiClient { return &apiClient{hc: &http.Client{Timeout: 30 * time.Second}} }

// clientFlags adds --server and --token to a command that talks to the API.
func clientFlags(cmd *cobra.Command, c *apiClient, environ []string) {
	def := lookup(environ, "HERALD_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.PersistentFlags().StringVar(&c.base, "server", def, "Herald API base URL (env HERALD_SERVER)")
	// HERALD_TOKEN is read here, not made the flag's default, so that
	// --help does not print the token.
	cmd.PersistentFlags().StringVar(&c.token, "token", "",
		"API token (default: env HERALD_TOKEN; the first admin token is in <data-dir>/admin.token)")
	cmd.PersistentPreRun = func(*cobra.Command, []string) {
		if c.token == "" {
			c.token = lookup(environ, "HERALD_TOKEN")
		}
	}
}

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
