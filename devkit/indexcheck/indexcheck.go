// Package indexcheck proves that a service's queries are served by the
// indexes it declares. The embedded store scans whatever the indexes, so a
// missing index never shows in a test's timings; instead a Recorder, attached
// to the service's client as the driver's command monitor, keeps the shape of
// every query (collection, filter, sort, projection), and Check applies
// MongoDB's equality–sort–range rule to each: the query's equality fields,
// then its sort fields, must be a prefix of one declared index, or the query
// is by _id, or it binds every key of a unique index (a point lookup).
package indexcheck

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

// SortKey is one field of a sort, 1 or -1.
type SortKey struct {
	Field string
	Dir   int
}

// clause is one way the store can answer a filter: the whole filter, or one
// branch of a top-level $or (each branch is planned on its own).
type clause struct {
	eq   []string // fields bound by equality, sorted
	rng  []string // fields bounded by a range, sorted
	text bool
}

// Query is the shape of one command: values are dropped, operators kept, so
// every request of one route gives the same Query.
type Query struct {
	Collection string
	Command    string
	Filter     string // e.g. {author: eq, status: eq, _id: $lt}
	Sort       string // e.g. {_id: -1}; "" when unsorted
	Projection string

	sortKeys []SortKey
	clauses  []clause
}

// String names the query in failures and in the index table.
func (q Query) String() string {
	s := q.Collection + " " + q.Command + " " + q.Filter
	if q.Sort != "" {
		s += " sort " + q.Sort
	}
	return s
}

func (q Query) key() string { return q.String() + " proj " + q.Projection }

// Recorder keeps the distinct query shapes a client sends. It is safe for
// concurrent use; a nil *Recorder records nothing.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]Query
}

func NewRecorder() *Recorder { return &Recorder{seen: map[string]Query{}} }

// Monitor is the command monitor to set on the client options.
func (r *Recorder) Monitor() *event.CommandMonitor {
	if r == nil {
		return nil
	}
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		for _, q := range Parse(e.CommandName, e.Command) {
			r.add(q)
		}
	}}
}

func (r *Recorder) add(q Query) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[q.key()]; !ok {
		r.seen[q.key()] = q
	}
}

// Queries are the recorded shapes, sorted.
func (r *Recorder) Queries() []Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Query, 0, len(r.seen))
	for _, q := range r.seen {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// Parse extracts the queries of one command; commands that query nothing
// (insert, createIndexes, ping, …) give none.
func Parse(name string, cmd bson.Raw) []Query {
	coll, _ := cmd.Lookup(name).StringValueOK()
	if coll == "" {
		return nil
	}
	doc := func(key string) bson.Raw { d, _ := cmd.Lookup(key).DocumentOK(); return d }
	switch name {
	case "find":
		return []Query{newQuery(coll, name, doc("filter"), doc("sort"), doc("projection"))}
	case "count", "distinct":
		return []Query{newQuery(coll, name, doc("query"), nil, nil)}
	case "findAndModify":
		return []Query{newQuery(coll, name, doc("query"), doc("sort"), doc("fields"))}
	case "update", "delete":
		arr, _ := cmd.Lookup(name + "s").ArrayOK()
		vals, _ := arr.Values()
		var out []Query
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				q, _ := d.Lookup("q").DocumentOK()
				out = append(out, newQuery(coll, name, q, nil, nil))
			}
		}
		return out
	case "aggregate":
		// The leading $match and $sort stages are what an index can serve;
		// whatever follows works on their output.
		arr, _ := cmd.Lookup("pipeline").ArrayOK()
		vals, _ := arr.Values()
		var match, sortDoc, proj bson.Raw
		for _, v := range vals {
			st, ok := v.DocumentOK()
			if !ok {
				break
			}
			if m, ok := st.Lookup("$match").DocumentOK(); ok && match == nil && sortDoc == nil {
				match = m
			} else if s, ok := st.Lookup("$sort").DocumentOK(); ok && sortDoc == nil {
				sortDoc = s
			} else if p, ok := st.Lookup("$project").DocumentOK(); ok {
				proj = p
				break
			} else {
				break
			}
		}
		return []Query{newQuery(coll, name, match, sortDoc, proj)}
	}
	return nil
}

func newQuery(coll, command string, filter, sortDoc, proj bson.Raw) Query {
	q := Query{Collection: coll, Command: command}
	var shape string
	q.clauses, shape = parseFilter(filter)
	q.Filter = shape
	if els, err := sortDoc.Elements(); err == nil {
		var parts []string
		for _, e := range els {
			dir := 1
			if n, ok := e.Value().AsInt64OK(); ok && n < 0 {
				dir = -1
			}
			q.sortKeys = append(q.sortKeys, SortKey{Field: e.Key(), Dir: dir})
			parts = append(parts, fmt.Sprintf("%s: %d", e.Key(), dir))
		}
		if len(parts) > 0 {
			q.Sort = "{" + strings.Join(parts, ", ") + "}"
		}
	}
	if els, err := proj.Elements(); err == nil && len(els) > 0 {
		var parts []string
		for _, e := range els {
			parts = append(parts, e.Key())
		}
		sort.Strings(parts)
		q.Projection = "{" + strings.Join(parts, ", ") + "}"
	}
	return q
}

// equalityOps bind a field the way an index prefix needs: $in is planned as
// a set of point ranges, which the rule treats as equality.
var equalityOps = map[string]bool{"$eq": true, "$in": true}

// rangeOps bound a field to one interval of an index. Other operators ($ne,
// $nin, $exists, $regex, $not, …) leave the whole index to walk: the field
// is filtered, not bounded.
var rangeOps = map[string]bool{"$gt": true, "$gte": true, "$lt": true, "$lte": true}

func isRange(op string) bool {
	for o := range strings.SplitSeq(op, ",") {
		if !rangeOps[o] {
			return false
		}
	}
	return op != ""
}

// parseFilter returns the clauses of a filter and its shape.
func parseFilter(filter bson.Raw) ([]clause, string) {
	base := clause{}
	var branches [][]clause
	var parts []string
	els, _ := filter.Elements()
	for _, e := range els {
		k, v := e.Key(), e.Value()
		switch {
		case k == "$or":
			arr, _ := v.ArrayOK()
			vals, _ := arr.Values()
			var bs []clause
			var shapes []string
			for _, bv := range vals {
				bd, _ := bv.DocumentOK()
				cs, s := parseFilter(bd)
				bs = append(bs, cs...)
				shapes = append(shapes, s)
			}
			branches = append(branches, bs)
			parts = append(parts, "$or: ["+strings.Join(shapes, ", ")+"]")
		case k == "$and":
			arr, _ := v.ArrayOK()
			vals, _ := arr.Values()
			var shapes []string
			for _, bv := range vals {
				bd, _ := bv.DocumentOK()
				cs, s := parseFilter(bd)
				shapes = append(shapes, s)
				if len(cs) == 1 {
					base.eq = append(base.eq, cs[0].eq...)
					base.rng = append(base.rng, cs[0].rng...)
					base.text = base.text || cs[0].text
				} else {
					branches = append(branches, cs)
				}
			}
			parts = append(parts, "$and: ["+strings.Join(shapes, ", ")+"]")
		case k == "$text":
			base.text = true
			parts = append(parts, "$text")
		case strings.HasPrefix(k, "$"):
			// $expr, $where, $nor: nothing an index prefix can bind.
			parts = append(parts, k)
		default:
			op := operatorOf(v)
			switch {
			case op == "" || equalityOps[op]:
				base.eq = append(base.eq, k)
			case isRange(op):
				base.rng = append(base.rng, k)
			}
			switch {
			case op == "" && v.Type == bson.TypeNull:
				op = "null" // equality that also matches a missing field
			case op == "":
				op = "eq"
			}
			parts = append(parts, k+": "+op)
		}
	}
	sort.Strings(parts)
	shape := "{" + strings.Join(parts, ", ") + "}"
	clauses := []clause{base}
	for _, bs := range branches {
		var next []clause
		for _, c := range clauses {
			for _, b := range bs {
				next = append(next, clause{
					eq: append(slices.Clone(c.eq), b.eq...), rng: append(slices.Clone(c.rng), b.rng...), text: c.text || b.text,
				})
			}
		}
		clauses = next
	}
	for i := range clauses {
		clauses[i].eq = uniqSorted(clauses[i].eq)
		clauses[i].rng = uniqSorted(clauses[i].rng)
	}
	return clauses, shape
}

// operatorOf is the operator of a field's condition ("" for a plain value,
// the operators joined when there are several, e.g. "$gte,$lt").
func operatorOf(v bson.RawValue) string {
	if v.Type == bson.TypeRegex {
		return "$regex"
	}
	d, ok := v.DocumentOK()
	if !ok {
		return ""
	}
	els, err := d.Elements()
	if err != nil || len(els) == 0 || !strings.HasPrefix(els[0].Key(), "$") {
		return "" // an exact sub-document
	}
	ops := make([]string, 0, len(els))
	for _, e := range els {
		ops = append(ops, e.Key())
	}
	sort.Strings(ops) // bson.M iterates in random order
	return strings.Join(ops, ",")
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

// Allow is a query the service deliberately runs without an index, matched
// by collection, command, filter shape and sort exactly as Query prints them.
type Allow struct {
	Collection, Command, Filter, Sort string
	Why                               string // required: why a scan is right here
}

func (a Allow) matches(q Query) bool {
	return a.Collection == q.Collection && a.Command == q.Command && a.Filter == q.Filter && a.Sort == q.Sort
}

// index is a declared index in the form the rule needs.
type index struct {
	label      string
	collection string
	keys       []SortKey
	text       bool
	unique     bool
	ttl        bool
}

func indexesOf(declared []mongox.Index) []index {
	var out []index
	for _, ix := range declared {
		x := index{collection: ix.Collection}
		var parts []string
		if d, ok := ix.Model.Keys.(bson.D); ok {
			for _, e := range d {
				parts = append(parts, fmt.Sprintf("%s: %v", e.Key, e.Value))
				if s, ok := e.Value.(string); ok && s == "text" {
					x.text = true
					continue
				}
				dir := 1
				if n, ok := e.Value.(int); ok && n < 0 {
					dir = -1
				}
				x.keys = append(x.keys, SortKey{Field: e.Key, Dir: dir})
			}
		}
		if ix.Model.Options != nil {
			var o options.IndexOptions
			for _, set := range ix.Model.Options.List() {
				_ = set(&o)
			}
			x.unique = o.Unique != nil && *o.Unique
			x.ttl = o.ExpireAfterSeconds != nil
		}
		x.label = ix.Collection + " {" + strings.Join(parts, ", ") + "}"
		switch {
		case x.unique:
			x.label += " unique"
		case x.ttl:
			x.label += " TTL"
		}
		out = append(out, x)
	}
	return out
}

// serves reports whether ix serves clause c sorted by sortKeys.
func (ix index) serves(c clause, sortKeys []SortKey) bool {
	if c.text {
		return ix.text
	}
	if ix.text {
		return false
	}
	if ix.pointLookup(c) {
		return true
	}
	n := len(c.eq)
	if n > len(ix.keys) {
		return false
	}
	prefix := make([]string, n)
	for i := range n {
		prefix[i] = ix.keys[i].Field
	}
	sort.Strings(prefix)
	if !slices.Equal(prefix, c.eq) {
		return false
	}
	var srt []SortKey
	for _, s := range sortKeys {
		if !slices.Contains(c.eq, s.Field) { // a sort on a bound field is free
			srt = append(srt, s)
		}
	}
	if n == 0 && len(srt) == 0 {
		// Only ranges: the leading key must be one of them.
		return len(ix.keys) > 0 && slices.Contains(c.rng, ix.keys[0].Field)
	}
	if n+len(srt) > len(ix.keys) {
		return false
	}
	flip := 0
	for i, s := range srt {
		k := ix.keys[n+i]
		if k.Field != s.Field {
			return false
		}
		same := 1
		if k.Dir != s.Dir {
			same = -1
		}
		if flip == 0 {
			flip = same
		} else if flip != same {
			return false
		}
	}
	return true
}

// pointLookup: c binds every key of the unique index ix by equality, so it
// finds at most one document whatever its other fields and sort.
func (ix index) pointLookup(c clause) bool {
	if !ix.unique || ix.text || len(ix.keys) == 0 {
		return false
	}
	for _, k := range ix.keys {
		if !slices.Contains(c.eq, k.Field) {
			return false
		}
	}
	return true
}

// byID: a clause that binds or bounds _id is served by the _id index.
func (c clause) byID() bool {
	return slices.Contains(c.eq, "_id") || slices.Contains(c.rng, "_id")
}

const allowSep = " — "

// Use is one declared index and the recorded queries it serves.
type Use struct {
	Index   string
	Unique  bool
	TTL     bool
	Queries []string
}

// Report is the verdict on a set of recorded queries.
type Report struct {
	Violations []string // queries no declared index serves, with what they need
	Allowed    []string // unindexed queries on the allow-list, " — " and the reason
	ByID       []string // queries served by the _id index
	Uses       []Use    // every declared index, in declaration order
}

// Unused are the declared indexes no recorded query uses that are neither
// unique (they enforce a rule) nor TTL (the server's expiry uses them).
func (r Report) Unused() []string {
	var out []string
	for _, u := range r.Uses {
		if len(u.Queries) == 0 && !u.Unique && !u.TTL {
			out = append(out, u.Index)
		}
	}
	return out
}

// Check applies the rule to every query. An allow-list entry that matches
// no recorded query is reported as a violation too, so the list cannot rot.
func Check(queries []Query, declared []mongox.Index, allow []Allow) Report {
	idx := indexesOf(declared)
	var r Report
	r.Uses = make([]Use, len(idx))
	for i, ix := range idx {
		r.Uses[i] = Use{Index: ix.label, Unique: ix.unique, TTL: ix.ttl}
	}
	allowUsed := make([]bool, len(allow))
	use := func(i int, q Query) {
		if !slices.Contains(r.Uses[i].Queries, q.String()) {
			r.Uses[i].Queries = append(r.Uses[i].Queries, q.String())
		}
	}
	for _, q := range queries {
		served, byID := true, true
		for _, c := range q.clauses {
			// A clause on _id is the _id index's; a point lookup on a unique
			// index is that index's: a declared index that would also serve
			// them is not needed for them.
			if c.byID() {
				continue
			}
			byID = false
			var points, others []int
			for i, ix := range idx {
				switch {
				case ix.collection != q.Collection:
				case ix.pointLookup(c):
					points = append(points, i)
				case ix.serves(c, q.sortKeys):
					others = append(others, i)
				}
			}
			if len(points) > 0 {
				others = points
			}
			for _, i := range others {
				use(i, q)
			}
			served = served && len(others) > 0
		}
		switch {
		case byID:
			r.ByID = append(r.ByID, q.String())
		case served:
		default:
			allowed := false
			for i, a := range allow {
				if a.matches(q) {
					allowed, allowUsed[i] = true, true
					r.Allowed = append(r.Allowed, q.String()+allowSep+a.Why)
				}
			}
			if !allowed {
				r.Violations = append(r.Violations, "no declared index serves "+q.String()+
					" (equality fields, then sort fields, must be a prefix of one index)")
			}
		}
	}
	for i, a := range allow {
		if !allowUsed[i] {
			r.Violations = append(r.Violations, fmt.Sprintf("allow-list entry matches no recorded query: %s %s %s sort %q",
				a.Collection, a.Command, a.Filter, a.Sort))
		}
	}
	r.ByID = compactStrings(r.ByID)
	r.Allowed = compactStrings(r.Allowed)
	return r
}

func compactStrings(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// Table is the index ↔ query table in Markdown.
func (r Report) Table() string {
	var b strings.Builder
	b.WriteString("| Index | Queries it serves |\n|---|---|\n")
	for _, u := range r.Uses {
		qs := "none"
		if len(u.Queries) > 0 {
			qs = "`" + strings.Join(u.Queries, "`<br>`") + "`"
		} else if u.Unique {
			qs = "none (kept: enforces uniqueness)"
		} else if u.TTL {
			qs = "none (kept: the server's expiry uses it)"
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", u.Index, qs)
	}
	for _, q := range r.ByID {
		fmt.Fprintf(&b, "| `_id` (implicit) | `%s` |\n", q)
	}
	for _, q := range r.Allowed {
		query, why, _ := strings.Cut(q, allowSep)
		fmt.Fprintf(&b, "| none (allowed scan) | `%s`: %s |\n", query, why)
	}
	return b.String()
}

// Verify is for a test package's TestMain: code is what the tests returned.
// When they passed, every query rec recorded must be served (else the exit
// code is 1 and each offending query is named); on a full run (no -run,
// -skip or -short, so every route was exercised) a declared index that no
// query used fails too. With INDEXCHECK_TABLE set to a path, the index ↔
// query table is written there.
func Verify(code int, rec *Recorder, declared []mongox.Index, allow []Allow) int {
	if code != 0 {
		return code
	}
	r := Check(rec.Queries(), declared, allow)
	for _, v := range r.Violations {
		fmt.Fprintln(os.Stderr, "indexcheck: "+v)
	}
	full := !testing.Short()
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			full = false
		}
	}
	failed := len(r.Violations) > 0
	if full {
		for _, u := range r.Unused() {
			fmt.Fprintln(os.Stderr, "indexcheck: declared index used by no query: "+u)
			failed = true
		}
	}
	if path := os.Getenv("INDEXCHECK_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(r.Table()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "indexcheck: "+err.Error())
			failed = true
		}
	}
	if failed {
		fmt.Println("FAIL: index coverage (see indexcheck lines above)")
		return 1
	}
	return 0
}
