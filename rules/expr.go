package rules

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/heraldproject/herald"
)

// Limits on match expressions.
const (
	// MaxExprBytes is the longest match expression.
	MaxExprBytes = 4096
	// MaxExprNodes bounds an expression's syntax tree.
	MaxExprNodes = 256
	// exprMemoryBudget bounds what one evaluation may allocate, in expr's
	// units (roughly: elements of ranges and collections built).
	exprMemoryBudget = 100_000
)

// disabledBuiltins are expr builtins a rule may not call: repeat makes a
// huge string from a short expression; toJSON and fromJSON cost as much as
// the whole event on each call, and inside a predicate that is quadratic.
// replace grows a string by the length of its argument per match, so a few
// nested calls (with let) need terabytes.
var disabledBuiltins = []string{"repeat", "toJSON", "fromJSON", "replace"}

const (
	// maxRange is the widest constant range (1..n) an expression may build;
	// a range's bounds must be constants.
	maxRange = 1000
	// maxPlus bounds the + operators of an expression: each string
	// concatenation copies its operands, which may be as long as the event.
	maxPlus = 16
	// evalTimeout bounds one evaluation; past it the event counts as not
	// matched (with a rule error) and the evaluation is abandoned.
	evalTimeout = 250 * time.Millisecond
)

// Expr is a compiled match expression. It is safe for concurrent use.
type Expr struct {
	p *vm.Program
}

// CompileExpr compiles and type-checks a match expression for rules of
// source (herald.RuleSourceEvent, herald.RuleSourceS3 or
// herald.RuleSourceLog): it must yield a bool, name only variables the event
// or log record has (see Env and LogEnv), stay within
// MaxExprBytes and MaxExprNodes, and not nest predicates (all(xs, {any(ys,
// ...)}) is quadratic in the event's size).
func CompileExpr(source, text string) (*Expr, error) {
	if len(text) > MaxExprBytes {
		return nil, fmt.Errorf("the expression is %d bytes; at most %d", len(text), MaxExprBytes)
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("the expression is not valid UTF-8")
	}
	opts := []expr.Option{expr.Env(sampleEnv(source)), expr.AsBool(), expr.MaxNodes(MaxExprNodes)}
	for _, b := range disabledBuiltins {
		opts = append(opts, expr.DisableBuiltin(b))
	}
	p, err := expr.Compile(text, opts...)
	if err != nil {
		return nil, err
	}
	if err := checkPredicates(p.Node()); err != nil {
		return nil, err
	}
	if err := checkCost(p.Node()); err != nil {
		return nil, err
	}
	return &Expr{p: p}, nil
}

// checkCost refuses what lets a short expression do unbounded work:
// variables (let: each can double a string, and they chain), ranges that are
// not small constants, and long chains of concatenation.
func checkCost(root ast.Node) error {
	var err error
	plus := 0
	ast.Find(root, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.VariableDeclaratorNode:
			err = errors.New("let is not allowed in a rule expression")
		case *ast.BinaryNode:
			switch n.Operator {
			case "..":
				lo, okLo := n.Left.(*ast.IntegerNode)
				hi, okHi := n.Right.(*ast.IntegerNode)
				if !okLo || !okHi || hi.Value-lo.Value > maxRange {
					err = fmt.Errorf("a range (a..b) must have constant bounds at most %d apart", maxRange)
				}
			case "+":
				if plus++; plus > maxPlus {
					err = fmt.Errorf("more than %d + operators", maxPlus)
				}
			}
		}
		return err != nil
	})
	return err
}

// checkPredicates refuses a predicate ({...} given to all, map, filter, ...)
// inside another.
func checkPredicates(root ast.Node) error {
	var preds []*ast.PredicateNode
	ast.Find(root, func(n ast.Node) bool {
		if p, ok := n.(*ast.PredicateNode); ok {
			preds = append(preds, p)
		}
		return false
	})
	for _, p := range preds {
		if ast.Find(p.Node, func(n ast.Node) bool { _, ok := n.(*ast.PredicateNode); return ok }) != nil {
			return errors.New("a predicate inside another predicate (e.g. all(xs, {any(ys, ...)})) is not allowed: " +
				"its cost grows with the square of the event's size")
		}
	}
	return nil
}

// Eval evaluates the expression against env (from Env) within the memory
// budget.
//
// It gives up after evalTimeout: expr's VM cannot be stopped, so the
// evaluation runs on its own goroutine and is abandoned (it runs to its end,
// which the compile-time limits and the event's size bound).
func (e *Expr) Eval(env map[string]any) (bool, error) {
	type result struct {
		out any
		err error
	}
	done := make(chan result, 1)
	go func() {
		m := vm.VM{MemoryBudget: exprMemoryBudget}
		out, err := m.Run(e.p, env) // Run recovers the program's panics
		done <- result{out, err}
	}()
	timer := time.NewTimer(evalTimeout)
	defer timer.Stop()
	var out any
	select {
	case r := <-done:
		if r.err != nil {
			return false, r.err
		}
		out = r.out
	case <-timer.C:
		return false, fmt.Errorf("the expression took longer than %v", evalTimeout)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("the expression yielded %T, not a bool", out)
	}
	return b, nil
}

// s3Fields are the fields of an S3 record's data that S3 rules also see at
// the top level (key startsWith "reports/").
var s3Fields = []string{"bucket", "key", "size", "eTag", "eventName", "eventTime", "region", "sequencer"}

// Env is what a rule's expression and templates see of an event: id, type,
// source, subject, time and data; for S3 rules also the fields of s3Fields at
// the top level (key, bucket, size, ...). Data is shared, not copied.
func Env(source string, ev *herald.Event) map[string]any {
	data := ev.Data
	if data == nil {
		data = map[string]any{}
	}
	env := map[string]any{"id": ev.ID, "type": ev.Type, "source": ev.Source, "subject": ev.Subject,
		"time": ev.Time, "data": data}
	if source == herald.RuleSourceS3 {
		for _, f := range s3Fields {
			env[f] = data[f]
			if env[f] == nil && f != "size" {
				env[f] = ""
			}
		}
		if env["size"] == nil {
			env["size"] = float64(0)
		}
	}
	return env
}

// sampleEnv is the shape expressions are type-checked against: the event's
// fields are strings (size a number), data is a map of anything.
func sampleEnv(source string) map[string]any {
	if source == herald.RuleSourceLog {
		return LogEnv(&herald.LogRecord{})
	}
	return Env(source, &herald.Event{Data: map[string]any{}})
}
