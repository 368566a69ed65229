package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/heraldproject/herald"
)

// Search limits: a query is at most this many terms, each at most this many
// characters. They keep a search cheap whatever a caller types.
const (
	MaxSearchTerms   = 16
	MaxSearchTermLen = 64
	// MaxLogLimit is the most records one search returns.
	MaxLogLimit = 1000
)

// InsertLogs stores log records and returns how many were new: in one
// transaction, or on SQLite in one per file (half the records, by id, go to
// LogFile, stored at the same time). A record already stored (a redelivered
// Kafka record) is left as it is, so inserting the same batch twice stores
// it once. A record is the same when its time and id are (SQLite, since
// migration 9) or its id is (PostgreSQL): a redelivery repeats both.
func (s *Store) InsertLogs(ctx context.Context, recs []*herald.LogRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if s.logs2 != nil {
		// Half the records (by id, so a redelivery lands where the record
		// is) go to the second file, inserted at the same time.
		var odd []*herald.LogRecord
		even := make([]*herald.LogRecord, 0, len(recs))
		for _, r := range recs {
			if inLogFile(r.ID) {
				odd = append(odd, r)
			} else {
				even = append(even, r)
			}
		}
		n, n2, err := both(func() (int, error) { return s.insertLogs(ctx, even) },
			func() (int, error) { return s.logs2.insertLogs(ctx, odd) })
		return n + n2, err
	}
	return s.insertLogs(ctx, recs)
}

// inLogFile reports whether the record with this id is stored in LogFile:
// its 32-bit FNV-1a hash is odd (computed inline, without a hash.Hash per
// record). The choice must never change: a redelivery goes where its
// record is.
func inLogFile(id string) bool {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h&1 == 1
}

// both runs first and second at the same time (one on each log file's
// writer or readers) and waits for both.
func both[T any](first, second func() (T, error)) (T, T, error) {
	var b T
	var errB error
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, errB = second()
	}()
	a, err := first()
	<-done
	return a, b, errors.Join(err, errB)
}

// insertLogs stores records in this store's file, in one transaction.
func (s *Store) insertLogs(ctx context.Context, recs []*herald.LogRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	now := nanos(s.now())
	// Multi-row statements prepared once per size: one statement per chunk
	// saves most of the per-statement cost of the driver and database/sql.
	ins, err := s.multiRow(ctx, `INSERT INTO logs (id, time, service, level, message, attributes,
		trace_id, span_id, stored_at) VALUES `, 9, ` ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("store: insert logs: %w", err)
	}
	rows := make([][]any, len(recs))
	for i, r := range recs {
		rows[i] = []any{r.ID, nanos(r.Time), r.Service, r.Level.Rank(), r.Message,
			jsonObject(r.Attributes), r.TraceID, r.SpanID, now}
	}
	inserted := 0
	err = s.tx(ctx, "insert_logs", func(tx txn) error {
		// SQLite: the rows this transaction adds are those after the
		// largest seq now (one writer); they are indexed together below.
		var before int64
		if !tx.pg {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM logs`).Scan(&before); err != nil {
				return fmt.Errorf("store: insert logs: %w", err)
			}
		}
		n, err := ins.exec(ctx, tx, rows)
		if err != nil {
			return fmt.Errorf("store: insert logs %s…: %w", recs[0].ID, err)
		}
		inserted = int(n)
		if !tx.pg && inserted > 0 {
			// One FTS5 insert for the whole batch: one index segment per
			// transaction (see migrations/sqlite/00005_logs.sql).
			if _, err := tx.ExecContext(ctx, `INSERT INTO logs_fts (rowid, message) SELECT seq, message FROM logs
				WHERE seq > ?`, before); err != nil {
				return fmt.Errorf("store: index logs: %w", err)
			}
		}
		return nil
	})
	return inserted, err
}

// LogCursor is where a page of search results ended: the last record's time
// and id.
type LogCursor struct {
	Time time.Time
	ID   string
}

// LogQuery selects log records. Zero fields match everything.
type LogQuery struct {
	// Text is full-text search: every word must appear in the message
	// (case-insensitive, whole words; a word ending in * matches as a
	// prefix). Punctuation separates words and is otherwise ignored, so no
	// input is a syntax error. See SearchTerms.
	Text string
	// Service keeps only this service's records.
	Service string
	// MinLevel keeps records at this level or above ("" keeps all).
	MinLevel herald.Severity
	// Since (inclusive) and Until (exclusive) bound the record time.
	Since, Until time.Time
	// After is the page cursor: the last record of the previous page.
	After *LogCursor
	// Limit is the page size (1 to MaxLogLimit; 0 means 100).
	Limit int
}

// SearchTerm is one word of a full-text query.
type SearchTerm struct {
	Word   string
	Prefix bool
}

// SearchTerms splits a full-text query into words: runs of letters, digits
// and marks, lower-cased; a word directly followed by * is a prefix. It is
// an EINVALID error when the text has no word, or more than MaxSearchTerms,
// or a word longer than MaxSearchTermLen characters.
func SearchTerms(text string) ([]SearchTerm, error) {
	var terms []SearchTerm
	var word []rune
	flush := func(prefix bool) error {
		if len(word) == 0 {
			return nil
		}
		if len(word) > MaxSearchTermLen {
			return herald.Errorf(herald.EINVALID, "q: a word is %d characters; at most %d", len(word), MaxSearchTermLen)
		}
		terms = append(terms, SearchTerm{Word: strings.ToLower(string(word)), Prefix: prefix})
		word = word[:0]
		if len(terms) > MaxSearchTerms {
			return herald.Errorf(herald.EINVALID, "q: more than %d words", MaxSearchTerms)
		}
		return nil
	}
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
			word = append(word, r)
			continue
		}
		if err := flush(r == '*'); err != nil {
			return nil, err
		}
	}
	if err := flush(false); err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		return nil, herald.Errorf(herald.EINVALID, "q: no word to search for (letters or digits)")
	}
	return terms, nil
}

// ftsMatch is the SQLite FTS5 query for terms: each word a quoted string
// (words hold only letters, digits and marks, so nothing in them is FTS5
// syntax), all required.
func ftsMatch(terms []SearchTerm) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = `"` + strings.ReplaceAll(t.Word, `"`, `""`) + `"`
		if t.Prefix {
			parts[i] += "*"
		}
	}
	return strings.Join(parts, " AND ")
}

// tsQuery is the PostgreSQL to_tsquery text for terms: each word quoted,
// all required (&), a prefix marked :*.
func tsQuery(terms []SearchTerm) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = "'" + strings.ReplaceAll(t.Word, "'", "''") + "'"
		if t.Prefix {
			parts[i] += ":*"
		}
	}
	return strings.Join(parts, " & ")
}

// logsTSV is the expression the PostgreSQL full-text index is built on
// (migrations/postgres/00005_logs.sql); a query must use it as written.
const logsTSV = `to_tsvector('simple', regexp_replace(l.message, '[[:punct:]]+', ' ', 'g'))`

const logColumns = `l.id, l.time, l.service, l.level, l.message, l.attributes, l.trace_id, l.span_id`

// SearchLogs returns the records matching q, newest first (by time, then
// id). A query the caller got wrong (text without words, a limit out of
// range) is an EINVALID error; no text is ever a database syntax error.
func (s *Store) SearchLogs(ctx context.Context, q LogQuery) ([]*herald.LogRecord, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	// The query is checked (and its words split) once, here, for both
	// files.
	if q.Limit < 1 || q.Limit > MaxLogLimit {
		return nil, herald.Errorf(herald.EINVALID, "limit must be between 1 and %d", MaxLogLimit)
	}
	if q.MinLevel != "" && q.MinLevel.Rank() < 0 {
		return nil, herald.Errorf(herald.EINVALID, "level %q is not a level", q.MinLevel)
	}
	var terms []SearchTerm
	if strings.TrimSpace(q.Text) != "" {
		var err error
		if terms, err = SearchTerms(q.Text); err != nil {
			return nil, err
		}
	}
	if s.logs2 == nil {
		return s.searchLogs(ctx, q, terms)
	}
	// Each file's first page, searched at the same time, merged newest
	// first: the first q.Limit of both are the answer.
	a, b, err := both(func() ([]*herald.LogRecord, error) { return s.searchLogs(ctx, q, terms) },
		func() ([]*herald.LogRecord, error) { return s.logs2.searchLogs(ctx, q, terms) })
	if err != nil {
		return nil, err
	}
	out := append(a, b...)
	slices.SortFunc(out, func(x, y *herald.LogRecord) int {
		if c := y.Time.Compare(x.Time); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	// A record can be in both files only if it was stored before the
	// second file existed and redelivered after (an upgrade right after a
	// crash): it is shown once, and the page filled from further on.
	n := len(out)
	out = slices.CompactFunc(out, func(x, y *herald.LogRecord) bool { return x.ID == y.ID && x.Time.Equal(y.Time) })
	full := len(a) == q.Limit || len(b) == q.Limit
	if len(out) < n && len(out) < q.Limit && full && len(out) > 0 {
		last := out[len(out)-1]
		rest := q
		rest.After, rest.Limit = &LogCursor{Time: last.Time, ID: last.ID}, q.Limit-len(out)
		more, err := s.SearchLogs(ctx, rest)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out[:min(len(out), q.Limit)], nil
}

// searchLogs answers q, checked by SearchLogs (terms are its words), from
// this store's file.
func (s *Store) searchLogs(ctx context.Context, q LogQuery, terms []SearchTerm) ([]*herald.LogRecord, error) {
	// where holds every condition but the full-text one.
	var where string
	var args []any
	if q.Service != "" {
		where += ` AND l.service = ?`
		args = append(args, q.Service)
	}
	if rank := q.MinLevel.Rank(); q.MinLevel != "" && rank > 0 {
		where += ` AND l.level >= ?`
		args = append(args, rank)
	}
	if !q.Since.IsZero() {
		where += ` AND l.time >= ?`
		args = append(args, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		where += ` AND l.time < ?`
		args = append(args, nanos(q.Until))
	}
	if q.After != nil {
		where += ` AND (l.time, l.id) < (?, ?)`
		args = append(args, nanos(q.After.Time), q.After.ID)
	}
	switch {
	case len(terms) == 0:
		return s.queryLogs(ctx, where, args, q.Limit)
	case s.w.pg:
		return s.queryLogs(ctx, ` AND `+logsTSV+` @@ to_tsquery('simple', ?)`+where,
			append([]any{tsQuery(terms)}, args...), q.Limit)
	}
	return s.searchLogsFTS(ctx, ftsMatch(terms), where, args, q.Limit)
}

// queryLogs returns the first limit records, newest first, of those
// matching the conditions in where (each starting with AND).
func (s *Store) queryLogs(ctx context.Context, where string, args []any, limit int) ([]*herald.LogRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+logColumns+` FROM logs l WHERE 1=1`+where+
		` ORDER BY l.time DESC, l.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: search logs: %w", err)
	}
	out, err := scanAll(rows, scanLog)
	if err != nil {
		return nil, fmt.Errorf("store: search logs: %w", err)
	}
	return out, nil
}

// searchLogsFTS answers a full-text search on SQLite. SQLite gathers every
// record that matches the words before it orders them by time, so a word in
// most records cost time in proportion to the table (0.9 s at 400,000
// records). The most recently stored records are searched first instead: in
// windows of store order (seq) of 4, 32 and 256 times the limit, and a
// window's answer is final once it has limit records and no record stored
// before the window comes after its last one in time order (one that arrived
// late with a newer time), which a bounded walk of the time index shows.
// Otherwise, and for words too rare to fill the largest window, one query
// over everything answers — cheap for rare words. The answer is always the
// one that query would give.
func (s *Store) searchLogsFTS(ctx context.Context, match, where string, args []any, limit int) ([]*herald.LogRecord, error) {
	var maxSeq int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM logs`).Scan(&maxSeq); err != nil {
		return nil, fmt.Errorf("store: search logs: %w", err)
	}
	// search answers for the records stored after floor (seq > floor);
	// seq starts at 1, so floor 0 is every record.
	search := func(floor int64) ([]*herald.LogRecord, error) {
		return s.queryLogs(ctx, ` AND l.seq IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? AND rowid > ?)`+where,
			append([]any{match, floor}, args...), limit)
	}
	for window := int64(4 * limit); window <= int64(256*limit) && window < maxSeq; window *= 8 {
		floor := maxSeq - window
		out, err := search(floor)
		if err != nil {
			return nil, err
		}
		if len(out) < limit {
			continue
		}
		// Walk the time index from the newest record down to the last
		// result, looking for one stored before the window. At most
		// window+1 entries: the window holds at most window records, so a
		// longer walk would meet one. Only the time index is read (seq is
		// the rowid every entry holds), and the other conditions are left
		// out: a record that would not match only sends the search on.
		last := out[len(out)-1]
		var before bool
		err = s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM
			(SELECT l.seq FROM logs l WHERE (l.time, l.id) > (?, ?) LIMIT ?) WHERE seq <= ?)`,
			nanos(last.Time), last.ID, window+1, floor).Scan(&before)
		if err != nil {
			return nil, fmt.Errorf("store: search logs: %w", err)
		}
		if !before {
			return out, nil
		}
	}
	return search(0)
}

var levelByRank = []herald.Severity{herald.SeverityDebug, herald.SeverityInfo, herald.SeverityWarning,
	herald.SeverityError, herald.SeverityCritical}

func scanLog(row scanner) (*herald.LogRecord, error) {
	var r herald.LogRecord
	var t int64
	var level int
	var attrs string
	if err := row.Scan(&r.ID, &t, &r.Service, &level, &r.Message, &attrs, &r.TraceID, &r.SpanID); err != nil {
		return nil, err
	}
	r.Time = fromNanos(t)
	if level >= 0 && level < len(levelByRank) {
		r.Level = levelByRank[level]
	}
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &r.Attributes); err != nil {
			return nil, fmt.Errorf("log %s: attributes: %w", r.ID, err)
		}
	}
	return &r, nil
}

// PruneLogs deletes records stored before cutoff, oldest first, at most
// batch per transaction, until none is left, and returns how many it
// deleted. Each batch is its own short transaction so ingest is never held
// up for long, and finds its records through the stored_at index (migration
// 13), so a prune with little to delete reads little. A record is never
// deleted early, and records stored with a clock that ran ahead (so not yet
// due) do not hold up the ones after them.
func (s *Store) PruneLogs(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	n, err := s.pruneLogs(ctx, cutoff, batch)
	if s.logs2 != nil && err == nil {
		var n2 int
		n2, err = s.logs2.pruneLogs(ctx, cutoff, batch)
		n += n2
	}
	return n, err
}

// pruneLogs prunes this store's file.
func (s *Store) pruneLogs(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 5000
	}
	// Two statements rather than DELETE ... IN (SELECT ...): PostgreSQL's
	// generic plan for that form scans the table instead of logs_stored.
	return s.inBatches(ctx, "prune_logs", batch, func(tx txn) (int, error) {
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM logs WHERE stored_at < ? ORDER BY stored_at LIMIT ?`,
			nanos(cutoff), batch)
		if err != nil {
			return 0, fmt.Errorf("store: prune logs: %w", err)
		}
		seqs, err := scanColumn[int64](rows)
		if err != nil {
			return 0, fmt.Errorf("store: prune logs: %w", err)
		}
		if len(seqs) == 0 {
			return 0, nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM logs WHERE seq IN (`+placeholders(len(seqs))+`)`, anys(seqs)...); err != nil {
			return 0, fmt.Errorf("store: prune logs: %w", err)
		}
		return len(seqs), nil
	})
}

// inBatches runs del in one write transaction (op) after another, each
// deleting at most batch rows, until one deletes fewer or ctx ends, and
// returns how many were deleted in all.
func (s *Store) inBatches(ctx context.Context, op string, batch int, del func(tx txn) (int, error)) (int, error) {
	total := 0
	for {
		var n int
		err := s.tx(ctx, op, func(tx txn) (err error) {
			n, err = del(tx)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < batch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// CountLogs returns how many log records are stored.
func (s *Store) CountLogs(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM logs`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count logs: %w", err)
	}
	if s.logs2 != nil {
		n2, err := s.logs2.CountLogs(ctx)
		if err != nil {
			return 0, err
		}
		n += n2
	}
	return n, nil
}
