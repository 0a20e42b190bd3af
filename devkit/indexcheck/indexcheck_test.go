package indexcheck

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

func declared() []mongox.Index {
	ix := func(coll string, keys bson.D, opts ...*options.IndexOptionsBuilder) mongox.Index {
		m := mongo.IndexModel{Keys: keys}
		if len(opts) > 0 {
			m.Options = opts[0]
		}
		return mongox.Index{Collection: coll, Model: m}
	}
	return []mongox.Index{
		ix("blogs", bson.D{{Key: "author", Value: 1}, {Key: "status", Value: 1}, {Key: "_id", Value: -1}}),
		ix("blogs", bson.D{{Key: "slug", Value: 1}}, options.Index().SetUnique(true)),
		ix("blogs", bson.D{{Key: "title", Value: "text"}}),
		ix("blogs", bson.D{{Key: "tags", Value: 1}, {Key: "published", Value: 1}}),
		ix("keys", bson.D{{Key: "createdAt", Value: 1}}, options.Index().SetExpireAfterSeconds(60)),
		ix("blogs", bson.D{{Key: "never", Value: 1}}),
	}
}

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRule: the equality–sort–range rule on commands as the driver sends
// them.
func TestRule(t *testing.T) {
	t.Parallel()
	find := func(filter, sort bson.D) (string, bson.D) {
		cmd := bson.D{{Key: "find", Value: "blogs"}, {Key: "filter", Value: filter}}
		if sort != nil {
			cmd = append(cmd, bson.E{Key: "sort", Value: sort})
		}
		return "find", cmd
	}
	type cmdFn func() (string, bson.D)
	cases := []struct {
		name   string
		cmd    cmdFn
		served bool
	}{
		{"equality then sort, in index order", func() (string, bson.D) {
			return find(bson.D{{Key: "status", Value: true}, {Key: "author", Value: 1}}, bson.D{{Key: "_id", Value: -1}})
		}, true},
		{"sort reversed as a whole", func() (string, bson.D) {
			return find(bson.D{{Key: "author", Value: 1}, {Key: "status", Value: true}}, bson.D{{Key: "_id", Value: 1}})
		}, true},
		{"equality prefix with a range after it", func() (string, bson.D) {
			return find(bson.D{{Key: "author", Value: 1}, {Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{true}}}},
				{Key: "_id", Value: bson.D{{Key: "$lt", Value: 5}}}}, nil)
		}, true},
		{"by _id", func() (string, bson.D) { return find(bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 2}}, nil) }, true},
		{"unique index fully bound", func() (string, bson.D) {
			return find(bson.D{{Key: "slug", Value: "a"}, {Key: "x", Value: 2}}, bson.D{{Key: "y", Value: 1}})
		}, true},
		{"text search", func() (string, bson.D) {
			return find(bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: "go"}}}}, nil)
		}, true},
		{"range on the leading key", func() (string, bson.D) {
			return find(bson.D{{Key: "author", Value: bson.D{{Key: "$gt", Value: 1}}}}, nil)
		}, true},
		{"equality field missing from the prefix", func() (string, bson.D) {
			return find(bson.D{{Key: "status", Value: true}}, nil)
		}, false},
		{"extra equality field", func() (string, bson.D) {
			return find(bson.D{{Key: "tags", Value: "a"}, {Key: "published", Value: true}, {Key: "x", Value: 1}}, nil)
		}, false},
		{"sort not after the equality prefix", func() (string, bson.D) {
			return find(bson.D{{Key: "author", Value: 1}}, bson.D{{Key: "_id", Value: -1}})
		}, false},
		{"mixed sort directions", func() (string, bson.D) {
			return find(bson.D{{Key: "author", Value: 1}}, bson.D{{Key: "status", Value: 1}, {Key: "_id", Value: 1}})
		}, false},
		{"empty filter", func() (string, bson.D) { return find(bson.D{}, nil) }, false},
		{"sort by _id only walks everything", func() (string, bson.D) {
			return find(bson.D{{Key: "x", Value: bson.D{{Key: "$exists", Value: false}}}}, bson.D{{Key: "_id", Value: 1}})
		}, false},
		{"$or with every branch indexed", func() (string, bson.D) {
			return find(bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "slug", Value: "a"}}, bson.D{{Key: "_id", Value: 1}}}}}, nil)
		}, true},
		{"$or with one branch unindexed", func() (string, bson.D) {
			return find(bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "slug", Value: "a"}}, bson.D{{Key: "x", Value: 1}}}}}, nil)
		}, false},
		{"aggregate: leading $match and $sort", func() (string, bson.D) {
			return "aggregate", bson.D{{Key: "aggregate", Value: "blogs"}, {Key: "pipeline", Value: bson.A{
				bson.D{{Key: "$match", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$in", Value: bson.A{"a", "b"}}}}}}},
				bson.D{{Key: "$sort", Value: bson.D{{Key: "published", Value: -1}}}},
				bson.D{{Key: "$limit", Value: 5}},
			}}}
		}, true},
		{"count without an index", func() (string, bson.D) {
			return "aggregate", bson.D{{Key: "aggregate", Value: "blogs"}, {Key: "pipeline", Value: bson.A{
				bson.D{{Key: "$match", Value: bson.D{}}}, bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: 1}}}},
			}}}
		}, false},
		{"update: each statement", func() (string, bson.D) {
			return "update", bson.D{{Key: "update", Value: "blogs"}, {Key: "updates", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{}}},
				bson.D{{Key: "q", Value: bson.D{{Key: "status", Value: false}}}, {Key: "u", Value: bson.D{}}},
			}}}
		}, false},
		{"delete by a range on an unindexed field", func() (string, bson.D) {
			return "delete", bson.D{{Key: "delete", Value: "keys"}, {Key: "deletes", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: 1}}}}}, {Key: "limit", Value: 0}},
			}}}
		}, false},
		{"findAndModify on the TTL key", func() (string, bson.D) {
			return "findAndModify", bson.D{{Key: "findAndModify", Value: "keys"},
				{Key: "query", Value: bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: 1}}}}}}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			name, cmd := c.cmd()
			qs := Parse(name, raw(t, cmd))
			if len(qs) == 0 {
				t.Fatalf("no query parsed from %v", cmd)
			}
			r := Check(qs, declared(), nil)
			if served := len(r.Violations) == 0; served != c.served {
				t.Fatalf("served %v, want %v; violations %v", served, c.served, r.Violations)
			}
			if !c.served && !strings.Contains(r.Violations[0], qs[0].Collection+" "+name+" {") {
				t.Errorf("violation does not name the query: %q", r.Violations[0])
			}
		})
	}
}

// TestAllowAndUnused: an allow-list entry excuses exactly its query and
// fails when it matches none; unused indexes exclude unique and TTL ones.
func TestAllowAndUnused(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	mon := rec.Monitor()
	send := func(cmd bson.D) {
		b := raw(t, cmd)
		mon.Started(context.Background(), &event.CommandStartedEvent{CommandName: cmd[0].Key, Command: b})
	}
	// Twice: a shape is recorded once.
	for range 2 {
		send(bson.D{{Key: "find", Value: "blogs"}, {Key: "filter", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$exists", Value: false}}}}},
			{Key: "sort", Value: bson.D{{Key: "_id", Value: 1}}}})
		send(bson.D{{Key: "find", Value: "blogs"}, {Key: "filter", Value: bson.D{{Key: "author", Value: "a"}, {Key: "status", Value: true}}},
			{Key: "sort", Value: bson.D{{Key: "_id", Value: -1}}}})
	}
	send(bson.D{{Key: "insert", Value: "blogs"}})
	qs := rec.Queries()
	if len(qs) != 2 {
		t.Fatalf("recorded %v, want 2 shapes", qs)
	}
	backfill := Allow{Collection: "blogs", Command: "find", Filter: "{x: $exists}", Sort: "{_id: 1}", Why: "one-off backfill"}
	r := Check(qs, declared(), []Allow{backfill})
	if len(r.Violations) != 0 || len(r.Allowed) != 1 || !strings.HasSuffix(r.Allowed[0], "one-off backfill") {
		t.Fatalf("violations %v, allowed %v", r.Violations, r.Allowed)
	}
	stale := backfill
	stale.Filter = "{y: $exists}"
	if r := Check(qs, declared(), []Allow{backfill, stale}); len(r.Violations) != 1 || !strings.Contains(r.Violations[0], "matches no recorded query") {
		t.Fatalf("stale allow-list entry: violations %v", r.Violations)
	}
	// The unique and the TTL index are kept whatever the queries.
	want := []string{"blogs {title: text}", "blogs {tags: 1, published: 1}", "blogs {never: 1}"}
	if got := r.Unused(); !slices.Equal(got, want) {
		t.Errorf("unused %v, want %v", got, want)
	}
	if table := r.Table(); !strings.Contains(table, "| `blogs {author: 1, status: 1, _id: -1}` | `blogs find {author: eq, status: eq} sort {_id: -1}` |") {
		t.Errorf("table:\n%s", table)
	}
}
