package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/internal/testlog"
	"github.com/heraldproject/herald/internal/teststore"
)

// accessLines returns the access lines logged since the last call.
func accessLines(logs *testlog.Buffer) []string {
	var out []string
	for line := range strings.Lines(logs.Take()) {
		if strings.Contains(line, `msg="http request"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestAccessLog: log.requests decides which requests get an info access
// line — every one ("all"), failed ones ("errors", the default), or none —
// and the others' lines are still there at debug.
func TestAccessLog(t *testing.T) {
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice"})
	ok := `{"target":["@alice"],"severity":"error","message":"m"}`
	bad := `{"target":["@nobody"],"severity":"error","message":"m"}`
	for _, tc := range []struct {
		setting string
		level   slog.Level
		want    []string // the status of each line, in order
	}{
		{"all", slog.LevelInfo, []string{"status=202", "status=422"}},
		{"", slog.LevelInfo, []string{"status=422"}},
		{"errors", slog.LevelInfo, []string{"status=422"}},
		{"none", slog.LevelInfo, nil},
		{"errors", slog.LevelDebug, []string{"level=DEBUG", "level=INFO"}},
		{"none", slog.LevelDebug, []string{"level=DEBUG", "level=DEBUG"}},
	} {
		logs := &testlog.Buffer{}
		h := (&api.Server{Store: st, Producer: &recorder{}, Version: "test", LogRequests: tc.setting,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: tc.level}))}).Handler()
		if code, raw := post(t, h, "/v1/alerts", "application/json", ok); code != http.StatusAccepted {
			t.Fatalf("%d %s", code, raw)
		}
		if code, raw := post(t, h, "/v1/alerts", "application/json", bad); code != http.StatusUnprocessableEntity {
			t.Fatalf("%d %s", code, raw)
		}
		got := accessLines(logs)
		if len(got) != len(tc.want) {
			t.Fatalf("log.requests=%q at %s: %d access lines, want %d:\n%s", tc.setting, tc.level, len(got),
				len(tc.want), strings.Join(got, ""))
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("log.requests=%q at %s: line %d lacks %s: %s", tc.setting, tc.level, i, w, got[i])
			}
		}
	}
}
