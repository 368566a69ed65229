package herald_test

import (
	"testing"

	"github.com/heraldproject/herald"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"@alice", "@@oncall", "alice", "@", "@@@x", "@a.b-c_d", "@\x00", "@@" + string(make([]byte, 70))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := herald.ParseTarget(s)
		if err != nil {
			return
		}
		if !herald.ValidName(tg.Name) {
			t.Fatalf("accepted %q with invalid name %q", s, tg.Name)
		}
		again, err := herald.ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q does not round-trip: %v %v", s, again, err)
		}
	})
}

func FuzzParseSeverity(f *testing.F) {
	for _, s := range []string{"info", "WARN", " fatal ", "DEBUG", "urgent", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sev, err := herald.ParseSeverity(s)
		if err == nil && sev.Rank() < 0 {
			t.Fatalf("%q parsed to an unranked severity %q", s, sev)
		}
		if err != nil && herald.ErrorCode(err) != herald.EINVALID {
			t.Fatalf("%q: error %v is not EINVALID", s, err)
		}
	})
}
