package migrations_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/blog_service/migrations"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/migrate"
	"blogplatform/devkit/refdata"
	"blogplatform/devkit/testinfra"
)

// BenchmarkBackfill10k measures both blog backfills on 10,000 blogs in the
// reference's shape (its indexes too), run as blog_service runs them: by
// the migration runner the service starts, in batches of DefaultBatchSize,
// with author profiles asked over NATS from a fake auth_service (four known
// authors and one it does not know).
//
// The store is FerretDB on its PostgreSQL backend, in a throw-away
// PostgreSQL started here (initdb, pg_ctl and psql from PATH or
// /usr/local/bin): the backfills read and update each blog by _id, which
// FerretDB's SQLite backend (the default embedded store) answers by
// scanning the whole collection, so there 10k blogs cost quadratic time and
// measure the store, not the backfills. FerretDB v1.24.2's PostgreSQL
// backend pushes the _id filter down, but as `_jsonb->'_id' @> $1`, which
// the btree index it keeps on _id cannot answer: PostgreSQL scans the
// table too (5-8 ms per read or update at 1,000 blogs). So the benchmark
// adds a GIN index on _jsonb->'_id' (jsonb_path_ops, which answers @>):
// every read and update by _id is then an index lookup, as on MongoDB.
// BACKFILL_BENCH_ID_INDEX=off leaves it out, BACKFILL_BENCH_STORE=sqlite
// measures the default embedded store instead, and BACKFILL_BENCH_BLOGS
// sets another number of blogs.
//
//	go test -run '^$' -bench Backfill10k -benchtime 1x ./blog_service/migrations
func BenchmarkBackfill10k(b *testing.B) {
	n := 10_000
	if v := os.Getenv("BACKFILL_BENCH_BLOGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("BACKFILL_BENCH_BLOGS=%q: want a positive number", v)
		}
	}
	var opts testinfra.Options
	var psql func(sql string)
	if os.Getenv("BACKFILL_BENCH_STORE") != "sqlite" {
		opts.Store.PostgreSQLURL, psql = startPostgreSQL(b)
	}
	idIndex := psql != nil && os.Getenv("BACKFILL_BENCH_ID_INDEX") != "off"
	env := testinfra.NewEnvWith(b, opts)
	b.Logf("store backend: %s, %d blogs, GIN index on _id: %v", env.Store.Backend(), n, idIndex)
	testkit.StartFakeAuth(b, env.NATSURL(), testkit.Normal, 0)
	authors := []string{testkit.Author.ID, testkit.OtherAuthor.ID, testkit.Editor.ID, testkit.Learner.ID, "66a0c6b2f1e4d3c2b1a0dead"}
	blogs := make([]testkit.RefBlog, n)
	for i := range blogs {
		blogs[i] = testkit.RefBlog{
			Title:       fmt.Sprintf("Reference blog %d on gardening topic %d", i, i%97),
			Description: fmt.Sprintf("Notes number %d about soil, seeds and tools", i),
			Slug:        fmt.Sprintf("reference-blog-%d", i),
			Author:      authors[i%len(authors)],
			Published:   i%4 != 0,
			Deleted:     i%50 == 0,
		}
	}
	dbs := testkit.NewRedisDBs()

	for i := 0; i < b.N; i++ {
		b.StopTimer()
		insertStart := time.Now()
		dbName, _ := testkit.ReferenceDatabase(b, env, blogs...)
		client := connect(b, env)
		db := client.Database(dbName)
		if skipped, err := refdata.CreateIndexes(context.Background(), db, refdata.BlogIndexes()); err != nil {
			b.Fatal(err)
		} else if len(skipped) > 0 {
			b.Logf("indexes the store refused: %v", skipped)
		}
		if idIndex {
			// FerretDB keeps a database as a PostgreSQL schema of that name.
			psql(`DO $$ DECLARE t text; BEGIN
				FOR t IN SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = '` + dbName + `' LOOP
					EXECUTE 'CREATE INDEX ON ' || t || ' USING gin ((_jsonb->''_id'') jsonb_path_ops)';
				END LOOP; END $$`)
		}
		b.Logf("inserted %d reference blogs in %s", n, time.Since(insertStart).Round(time.Millisecond))
		b.StartTimer()

		// The service's own start runs the backfills in the background.
		start := time.Now()
		app := testkit.NewApp(b, env, dbs, testkit.Settings{"DB_NAME": dbName})
		select {
		case <-app.Migrations.BackgroundDone():
		case <-time.After(2 * time.Hour):
			b.Fatal("the backfills did not finish within 2 hours")
		}
		total := time.Since(start)
		b.StopTimer()

		recs, err := app.Migrations.Records(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		byName := map[string]migrate.Record{}
		for _, r := range recs {
			byName[r.Name] = r
		}
		for _, step := range []struct{ name, metric string }{
			{migrations.TermsStep, "terms"},
			{migrations.AuthorProfileStep, "profile"},
		} {
			r := byName[step.name]
			if r.State != migrate.StateDone || r.FinishedAt == nil || r.Processed != int64(n) {
				b.Fatalf("step %s: state %s, processed %d of %d, error %q", step.name, r.State, r.Processed, n, r.Error)
			}
			took := r.FinishedAt.Sub(r.StartedAt)
			b.ReportMetric(took.Seconds(), step.metric+"-s")
			b.ReportMetric(float64(n)/took.Seconds(), step.metric+"-docs/s")
			b.Logf("%s: %d blogs in %s (%.0f docs/s, %d attempt(s))", step.name, r.Processed, took.Round(time.Millisecond),
				float64(n)/took.Seconds(), r.Attempts)
		}
		b.ReportMetric(total.Seconds(), "total-s")

		blogsColl := db.Collection(model.CollectionName)
		for _, filter := range []bson.D{
			{{Key: "authorProfile", Value: nil}},
			{{Key: "$or", Value: bson.A{bson.D{{Key: "terms", Value: nil}}, bson.D{{Key: "titleTerms", Value: nil}}, bson.D{{Key: "descriptionTerms", Value: nil}}}}},
		} {
			if left, err := blogsColl.CountDocuments(context.Background(), filter); err != nil || left != 0 {
				b.Fatalf("after the backfills %d blogs still match %v (err %v)", left, filter, err)
			}
		}
		b.StartTimer()
	}
}

func connect(b *testing.B, env *testinfra.Env) *mongo.Client {
	b.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

// startPostgreSQL runs a private PostgreSQL in a temporary directory,
// listening on a Unix socket there only (no TCP port to collide with), and
// returns a connection URL for FerretDB and a function running SQL in its
// database; it is stopped when b ends.
// PostgreSQL refuses to run as root, so as root it runs as the "postgres"
// user (or "nobody"), which must be able to reach the directory.
func startPostgreSQL(b *testing.B) (string, func(sql string)) {
	b.Helper()
	initdb, pgCtl, psql := pgTool(b, "initdb"), pgTool(b, "pg_ctl"), pgTool(b, "psql")
	dir := b.TempDir()
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	var runAs []string
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			if u, err = user.Lookup("nobody"); err != nil {
				b.Fatalf("running as root and no postgres or nobody user to run PostgreSQL as: %v", err)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// b.TempDir's directories are private to root: let the user through.
		for d := dir; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range []string{data, sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				b.Fatal(err)
			}
		}
		runAs = []string{"runuser", "-u", u.Username, "--"}
	}
	run := func(args ...string) {
		b.Helper()
		full := append(append([]string{}, runAs...), args...)
		out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	const port = "5432" // names the socket file only
	run(initdb, "-D", data, "-U", "ferretdb", "--auth=trust", "-E", "UTF8", "--no-sync")
	run(pgCtl, "-D", data, "-l", filepath.Join(sock, "postgresql.log"), "-w", "-t", "60",
		"-o", "-p "+port+" -k "+sock+" -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200",
		"start")
	b.Cleanup(func() { run(pgCtl, "-D", data, "-m", "fast", "-w", "stop") })
	return "postgres://ferretdb@/postgres?host=" + sock + "&port=" + port, func(sql string) {
		b.Helper()
		run(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", sock, "-p", port, "-U", "ferretdb", "-d", "postgres", "-c", sql)
	}
}

func pgTool(b *testing.B, name string) string {
	b.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/local/bin", name); fileExists(p) {
		return p
	}
	b.Fatalf("%s not found (PostgreSQL binaries are needed for this benchmark; BACKFILL_BENCH_STORE=sqlite runs without)", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
