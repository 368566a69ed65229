package store

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
)

// conn is a database handle that writes queries once, with ? placeholders,
// and rebinds them for the dialect ($1, $2, ... for PostgreSQL).
type conn struct {
	*sql.DB
	pg bool
}

func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (c conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.DB.ExecContext(ctx, rebind(c.pg, q), args...)
}

func (c conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, rebind(c.pg, q), args...)
}

func (c conn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, rebind(c.pg, q), args...)
}

func (c conn) begin(ctx context.Context) (txn, error) {
	tx, err := c.DB.BeginTx(ctx, nil)
	return txn{Tx: tx, pg: c.pg}, err
}

// txn is a transaction that rebinds like conn.
type txn struct {
	*sql.Tx
	pg bool
}

func (t txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, rebind(t.pg, q), args...)
}

func (t txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, rebind(t.pg, q), args...)
}

func (t txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, rebind(t.pg, q), args...)
}

func (t txn) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, rebind(t.pg, q))
}

// stmt returns the prepared statement for q on pool c, preparing it once.
// database/sql keeps a statement per connection and re-prepares when needed;
// preparing hot statements once saves SQLite parsing them on every call
// (measured: 16% of CPU on the delivery path).
func (s *Store) stmt(ctx context.Context, c conn, q string) (*sql.Stmt, error) {
	key := stmtKey{db: c.DB, q: q}
	if st, ok := s.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.DB.PrepareContext(ctx, rebind(c.pg, q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// inSizes are the IN-list lengths queryIn prepares: a list is padded with its
// last value up to the next size (duplicates in IN change nothing), so a
// handful of statements are parsed once and reused instead of one per call.
var inSizes = [...]int{1, 4, 16, 64, 256, 500}

// queryIn runs prefix + "(?,?,…)" for vals in chunks of at most 500, with
// statements prepared once per size, and calls scan for every row.
func (s *Store) queryIn(ctx context.Context, c conn, prefix string, vals []string, scan func(*sql.Rows) error) error {
	for chunk := range slices.Chunk(vals, inSizes[len(inSizes)-1]) {
		n := inSizes[len(inSizes)-1]
		for _, size := range inSizes {
			if size >= len(chunk) {
				n = size
				break
			}
		}
		args := make([]any, n)
		for i := range args {
			args[i] = chunk[min(i, len(chunk)-1)]
		}
		st, err := s.stmt(ctx, c, prefix+"("+placeholders(n)+")")
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		// Next closes the rows itself on an error, so Close says nothing
		// then: a result cut short must be reported from Err.
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// scanAll scans every row with scan, then closes rows; an error from the
// iteration itself (a result cut short) is returned too.
// scanColumn reads rows of one column (ids, seqs) and closes them.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	return scanAll(rows, func(row scanner) (v T, err error) { return v, row.Scan(&v) })
}

func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// rowSizes are the row counts of the multi-row statements multiRow prepares:
// n rows go in as the fewest statements of these sizes that add up to n, so
// a few statements are parsed once and reused whatever the batch size.
var rowSizes = [...]int{256, 64, 16, 4, 1}

// multiRowStmt is one multi-row statement prepared at every size of rowSizes.
type multiRowStmt struct {
	cols  int
	stmts [len(rowSizes)]*sql.Stmt
}

// multiRow prepares head + "(?,…),(?,…)…" + tail, with cols values per row,
// at every size of rowSizes. Call it before the transaction that runs it:
// SQLite's writer pool has one connection, which a transaction holds.
// The statements are built and prepared on the first call and kept, so a
// later call neither builds its (long) SQL again nor hashes it to find them.
func (s *Store) multiRow(ctx context.Context, head string, cols int, tail string) (*multiRowStmt, error) {
	key := multiRowKey{head: head, cols: cols, tail: tail}
	if m, ok := s.multiRows.Load(key); ok {
		return m.(*multiRowStmt), nil
	}
	m := &multiRowStmt{cols: cols}
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	for i, n := range rowSizes {
		q := head + strings.Repeat(row+",", n-1) + row + tail
		st, err := s.stmt(ctx, s.w, q)
		if err != nil {
			return nil, err
		}
		m.stmts[i] = st
	}
	// A concurrent first call built the same statements (s.stmt keeps one
	// per SQL text); either copy will do.
	prev, _ := s.multiRows.LoadOrStore(key, m)
	return prev.(*multiRowStmt), nil
}

// multiRowKey identifies a multi-row statement by what multiRow was given.
type multiRowKey struct {
	head, tail string
	cols       int
}

// chunks calls fn with each statement and the rows it takes, biggest first.
func (m *multiRowStmt) chunks(rows [][]any, fn func(st *sql.Stmt, args []any) error) error {
	for i, n := range rowSizes {
		for len(rows) >= n {
			args := make([]any, 0, n*m.cols)
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			if err := fn(m.stmts[i], args); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}

// exec runs the statement in tx for rows, each holding cols values, and
// returns how many rows it affected.
func (m *multiRowStmt) exec(ctx context.Context, tx txn, rows [][]any) (int64, error) {
	var affected int64
	err := m.chunks(rows, func(st *sql.Stmt, args []any) error {
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		affected += n
		return nil
	})
	return affected, err
}

// query runs the statement (one with RETURNING) in tx for rows and calls
// scan for every row returned.
func (m *multiRowStmt) query(ctx context.Context, tx txn, rows [][]any, scan func(*sql.Rows) error) error {
	return m.chunks(rows, func(st *sql.Stmt, args []any) error {
		rs, err := tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			if err := scan(rs); err != nil {
				return err
			}
		}
		return rs.Err()
	})
}
