package mongox_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"blogplatform/chassis/config"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/runtime"
)

// password is the secret every connection string of these tests carries;
// no error, log line or redacted form may contain it, in any spelling.
const password = "Pa55:w/rd@x"

var escaped = url.QueryEscape(password)

// leaks reports the spellings of password found in text.
func leaks(text string) []string {
	var found []string
	for _, s := range []string{password, escaped, url.PathEscape(password), "Pa55"} {
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

func TestValidate(t *testing.T) {
	uri := func(s string) mongox.Options { return mongox.Options{Name: "blog-dev-db", URI: s} }
	tests := []struct {
		name    string
		o       mongox.Options
		wantVar string // "" accepted
		wantErr string
	}{
		{"SeparateVariables", mongox.Options{Host: "mongo", Port: 27017, Name: "blog-dev-db", User: "u", Password: password}, "", ""},
		{"ReplicaSetSeedList", uri("mongodb://blog:" + escaped + "@m1:27017,m2:27017,m3:27017/?replicaSet=rs0&authSource=admin"), "", ""},
		{"SRVWithTLSOptions", uri("mongodb+srv://blog:" + escaped + "@cluster0.example.net/blog?tls=true&tlsCAFile=/etc/ca.pem&tlsCertificateKeyFile=/etc/key.pem&tlsCertificateKeyFilePassword=" + escaped + "&srvMaxHosts=3"), "", ""},
		{"ReadPreferenceBothAgree", mongox.Options{Name: "b", URI: "mongodb://m1/?readPreference=nearest", ReadPreference: "nearest"}, "", ""},
		{"ReadPreferenceWithTagsAndStaleness", uri("mongodb://m1,m2/?replicaSet=rs0&readPreference=secondaryPreferred&readPreferenceTags=dc:east&maxStalenessSeconds=120"), "", ""},
		{"WriteConcernNumber", mongox.Options{Name: "b", Host: "m", Port: 1, WriteConcern: "2"}, "", ""},
		{"WriteConcernMajorityInURI", uri("mongodb://m1/?w=majority"), "", ""},

		{"NotMongoScheme", uri("postgres://blog:" + escaped + "@db/blog"), "DB_URI", "scheme must be"},
		{"UnescapedAtInPassword", uri("mongodb://blog:" + password + "@m1/blog"), "DB_URI", "not a valid MongoDB connection string"},
		{"UnescapedSlashInPassword", uri("mongodb://blog:Pa55/rd@m1/blog"), "DB_URI", "unescaped slash in password"},
		{"BadOptionValue", uri("mongodb://blog:" + escaped + "@m1/?maxPoolSize=many"), "DB_URI", `invalid value for "maxpoolsize"`},
		{"SecretOptionBadValueNotEchoed", uri("mongodb://m1/?tlsCertificateKeyFilePassword=" + escaped + "&tlsInsecure=maybe"), "DB_URI", "tlsinsecure"},
		// The parser quotes a bad %-escape, a piece of the password here.
		{"BadEscapeInPasswordNotEchoed", uri("mongodb://blog:Pa55%zzw0rd@m1/blog"), "DB_URI", "invalid %-escape"},
		{"DirectConnectionToSeveral", uri("mongodb://m1,m2/?directConnection=true"), "DB_URI", "direct connection"},
		{"SRVWithPort", uri("mongodb+srv://blog:" + escaped + "@cluster0.example.net:27017/"), "DB_URI", "exactly one host name"},
		{"SRVWithTwoHosts", uri("mongodb+srv://a.example.net,b.example.net/"), "DB_URI", "exactly one host name"},
		{"UnacknowledgedInURI", uri("mongodb://m1/?w=0"), "DB_URI", "must be majority or a number"},
		{"UnacknowledgedVariable", mongox.Options{Name: "b", Host: "m", Port: 1, WriteConcern: "0"}, "DB_WRITE_CONCERN", "must be majority or a number"},
		{"WriteConcernWord", mongox.Options{Name: "b", Host: "m", Port: 1, WriteConcern: "all"}, "DB_WRITE_CONCERN", "must be majority or a number"},
		{"WriteConcernContradiction", mongox.Options{Name: "b", URI: "mongodb://m1/?w=1", WriteConcern: "majority"}, "DB_URI", "contradicts w=1"},
		{"ReadPreferenceContradiction", mongox.Options{Name: "b", URI: "mongodb://m1/?readPreference=nearest", ReadPreference: "secondary"}, "DB_URI", "contradicts readPreference=nearest"},
		{"ReadPreferenceUnknown", mongox.Options{Name: "b", Host: "m", Port: 1, ReadPreference: "fastest"}, "DB_READ_PREFERENCE", "must be one of"},
		{"StalenessOnPrimary", uri("mongodb://m1,m2/?replicaSet=rs0&maxStalenessSeconds=120"), "DB_URI", "max staleness, or hedge with mode primary"},
		{"NoDatabase", mongox.Options{URI: "mongodb://m1/admin"}, "DB_NAME", "no database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.wantVar == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.wantErr)) {
				t.Errorf("error %q lacks %q", err, tc.wantErr)
			}
			if l := leaks(err.Error()); l != nil {
				t.Errorf("error %q shows the password (%q)", err, l)
			}
			var got string
			tc.o.Check(func(variable string, _ error) { got = variable })
			if got != tc.wantVar {
				t.Errorf("reported under %s, want %s", got, tc.wantVar)
			}
		})
	}
}

// LoadBase stops the service with one line per bad variable, naming it and
// never showing the connection string's password.
func TestLoadBaseMongoVariables(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, b runtime.Base)
		want  []string // fragments of the single error line; nil: accepted
	}{
		{"Defaults", nil, func(t *testing.T, b runtime.Base) {
			if b.Mongo.URI != "" || b.Mongo.ReadPreference != "" || b.Mongo.WriteConcern != "" || b.Mongo.HostURI() != "mongodb://localhost:27017/blog-dev-db" {
				t.Errorf("defaults: %+v", b.Mongo)
			}
		}, nil},
		{"ConnectionStringAndPolicies", map[string]string{
			"DB_URI": "mongodb://blog:" + escaped + "@m1,m2,m3/?replicaSet=rs0", "DB_READ_PREFERENCE": "secondaryPreferred",
			"DB_WRITE_CONCERN": "majority", "DB_HOST": "ignored",
		}, func(t *testing.T, b runtime.Base) {
			if b.Mongo.ReadPreference != "secondaryPreferred" || b.Mongo.WriteConcern != "majority" ||
				b.Mongo.Redacted() != "mongodb://blog:xxxxx@m1,m2,m3/?replicaSet=rs0" {
				t.Errorf("loaded %q %q %q", b.Mongo.ReadPreference, b.Mongo.WriteConcern, b.Mongo.Redacted())
			}
		}, nil},
		{"BadURI", map[string]string{"DB_URI": "mongodb://blog:" + password + "@m1/"}, nil,
			[]string{"invalid configuration: DB_URI: not a valid MongoDB connection string"}},
		{"BadReadPreference", map[string]string{"DB_READ_PREFERENCE": "secondaries"}, nil,
			[]string{"DB_READ_PREFERENCE", "must be one of primary, primaryPreferred, secondary, secondaryPreferred, nearest"}},
		{"ExamplePasswordInURIRefusedInRelease", map[string]string{"GO_MODE": "release", "DB_URI": "mongodb://blog:changeit@m1/"}, nil,
			[]string{"invalid configuration: DB_URI: its password is still the example value"}},
		{"ExamplePasswordInURIAllowedWhenAsked", map[string]string{"GO_MODE": "release", "ALLOW_EXAMPLE_SECRETS": "true", "DB_URI": "mongodb://blog:changeit@m1/"},
			func(t *testing.T, b runtime.Base) {}, nil},
		{"BadWriteConcern", map[string]string{"DB_URI": "mongodb://blog:" + escaped + "@m1/", "DB_WRITE_CONCERN": "0"}, nil,
			[]string{"invalid configuration: DB_WRITE_CONCERN: write concern \"0\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := config.FromMap(tc.vars)
			b := runtime.LoadBase(src, runtime.Defaults{DBName: "blog-dev-db", ServiceName: "blog", RedisDB: 2})
			err := src.Err()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tc.check(t, b)
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 {
				t.Errorf("want one line, got %q", lines)
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q lacks %q", err, f)
				}
			}
			if l := leaks(err.Error()); l != nil {
				t.Errorf("error %q shows the password (%q)", err, l)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"mongodb://m1:27017/blog", "mongodb://m1:27017/blog"},
		{"mongodb://blog@m1/?authMechanism=MONGODB-X509", "mongodb://blog@m1/?authMechanism=MONGODB-X509"},
		{"mongodb://blog:" + escaped + "@m1,m2/?replicaSet=rs0", "mongodb://blog:xxxxx@m1,m2/?replicaSet=rs0"},
		{"mongodb+srv://blog:" + escaped + "@c.example.net/blog?tlsCertificateKeyFilePassword=" + escaped + "&appName=a",
			"mongodb+srv://blog:xxxxx@c.example.net/blog?tlsCertificateKeyFilePassword=xxxxx&appName=a"},
		{"mongodb://m1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:" + escaped,
			"mongodb://m1/?authMechanism=MONGODB-AWS&authMechanismProperties=xxxxx"},
		{"not a connection string " + password, "(invalid connection string, not shown)"},
	}
	for _, tc := range tests {
		if got := mongox.Redact(tc.uri); got != tc.want {
			t.Errorf("Redact(%s) = %s, want %s", tc.uri, got, tc.want)
		}
	}
	o := mongox.Options{Host: "mongo", Port: 27017, Name: "auth-dev-db", User: "auth", Password: password}
	if got := o.Redacted(); got != "mongodb://auth:xxxxx@mongo:27017/auth-dev-db" {
		t.Errorf("Redacted from the separate variables = %s", got)
	}
}

// The connection string's options win; the variables fill in the rest.
func TestClientOptionsPrecedence(t *testing.T) {
	vars := mongox.Options{Host: "m1", Port: 27017, Name: "blog-dev-db", MinPool: 2, MaxPool: 5, ServerSelectionTimeout: 2 * time.Second, AppName: "blog"}
	with := func(uri string) mongox.Options { o := vars; o.URI = uri; return o }
	tests := []struct {
		name      string
		o         mongox.Options
		minPool   uint64
		maxPool   uint64
		selection time.Duration
		appName   string
		w         any
	}{
		{"VariablesOnly", vars, 2, 5, 2 * time.Second, "blog", nil},
		{"URIWithoutOptions", with("mongodb://m1,m2/?replicaSet=rs0"), 2, 5, 2 * time.Second, "blog", nil},
		{"URIOptionsWin", with("mongodb://m1/?maxPoolSize=50&minPoolSize=10&serverSelectionTimeoutMS=7000&appName=blog-eu&w=3"),
			10, 50, 7 * time.Second, "blog-eu", 3},
		{"MinimumKeptBelowURIMaximum", with("mongodb://m1/?maxPoolSize=1"), 1, 1, 2 * time.Second, "blog", nil},
		{"WriteConcernVariable", func() mongox.Options { o := vars; o.WriteConcern = "majority"; return o }(), 2, 5, 2 * time.Second, "blog", writeconcern.WCMajority},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			co, err := tc.o.ClientOptions()
			if err != nil {
				t.Fatal(err)
			}
			if *co.MinPoolSize != tc.minPool || *co.MaxPoolSize != tc.maxPool || *co.ServerSelectionTimeout != tc.selection || *co.AppName != tc.appName {
				t.Errorf("pool %d..%d, selection %s, app %s; want %d..%d, %s, %s",
					*co.MinPoolSize, *co.MaxPoolSize, *co.ServerSelectionTimeout, *co.AppName, tc.minPool, tc.maxPool, tc.selection, tc.appName)
			}
			switch {
			case tc.w == nil && co.WriteConcern != nil:
				t.Errorf("write concern %v, want the driver's default", co.WriteConcern.W)
			case tc.w != nil && (co.WriteConcern == nil || co.WriteConcern.W != tc.w):
				t.Errorf("write concern %+v, want w=%v", co.WriteConcern, tc.w)
			}
			if co.ReadPreference == nil || co.ReadPreference.Mode().String() != "primary" {
				t.Errorf("client read preference %v: must stay primary", co.ReadPreference)
			}
			if err := co.Validate(); err != nil {
				t.Errorf("driver refuses the options: %v", err)
			}
		})
	}
}

// The database is DB_NAME unless the connection string's path names one; a
// system database in the path is only where the user authenticates.
func TestDatabaseChoice(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"mongodb://m1/", "blog-dev-db"},
		{"mongodb://m1/blogs-eu?replicaSet=rs0", "blogs-eu"},
		{"mongodb://u:p@m1/admin?replicaSet=rs0", "blog-dev-db"},
		{"mongodb://m1/local", "blog-dev-db"},
	}
	for _, tc := range tests {
		d, err := mongox.Connect(mongox.Options{URI: tc.uri, Name: "blog-dev-db", ReadPreference: "nearest"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Database.Name() != tc.want || d.StaleReads.Name() != tc.want {
			t.Errorf("%s: database %s / %s, want %s", tc.uri, d.Database.Name(), d.StaleReads.Name(), tc.want)
		}
		_ = d.Close(context.Background())
	}
}

// commandLog records the commands a client sends.
type commandLog struct {
	mu   sync.Mutex
	cmds map[string][]bson.Raw
}

func (c *commandLog) monitor() *event.CommandMonitor {
	c.cmds = map[string][]bson.Raw{}
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cmds[e.CommandName] = append(c.cmds[e.CommandName], append(bson.Raw(nil), e.Command...))
	}}
}

func (c *commandLog) last(name string) bson.Raw {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.cmds[name]; len(l) > 0 {
		return l[len(l)-1]
	}
	return nil
}

// A connection string with credentials and options really connects to the
// embedded store and serves; writes carry the write concern, reads do not;
// the log lines show only the redacted form.
func TestConnectionStringServes(t *testing.T) {
	db := env.UniqueDBName("mongoxuri")
	addr := env.Store.Addr()
	// FerretDB's SQLite backend accepts PLAIN credentials without checking
	// them, so the password travels for real.
	uri := "mongodb://blog:" + escaped + "@" + addr + "/" + db + "?authMechanism=PLAIN&appName=blog-uri-test" +
		"&maxPoolSize=3&minPoolSize=1&w=majority&readPreference=secondaryPreferred" +
		"&serverSelectionTimeoutMS=1500&connectTimeoutMS=2000&socketTimeoutMS=5000&timeoutMS=5000"
	var cmds commandLog
	d, err := mongox.Connect(mongox.Options{URI: uri, Name: "unused", QueryTimeout: 5 * time.Second, Monitor: cmds.monitor()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	var logs bytes.Buffer // WaitReady logs from this goroutine only
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx, log); err != nil {
		t.Fatal(err)
	}
	if d.Database.Name() != db || d.ReadPreference != "secondaryPreferred" || d.WriteConcern != "majority" {
		t.Fatalf("database %s, stale reads %s, write concern %s", d.Database.Name(), d.ReadPreference, d.WriteConcern)
	}
	coll := d.Database.Collection("blogs")
	if _, err := coll.InsertOne(ctx, bson.M{"slug": "uri", "n": 1}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if w := cmds.last("insert").Lookup("writeConcern", "w").StringValue(); w != "majority" {
		t.Errorf("insert sent writeConcern.w %q, want majority", w)
	}
	var got bson.M
	if err := d.StaleReads.Collection("blogs").FindOne(ctx, bson.M{"slug": "uri"}).Decode(&got); err != nil || got["n"] != int32(1) {
		t.Fatalf("read through the stale-reads handle: %v %v", got, err)
	}
	if _, err := cmds.last("find").LookupErr("writeConcern"); err == nil {
		t.Error("a read carried a write concern")
	}
	for _, want := range []string{`"msg":"mongo connecting"`, `"msg":"mongo ready"`, `mongodb://blog:xxxxx@` + addr} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if l := leaks(logs.String()); l != nil {
		t.Errorf("log shows the password (%q):\n%s", l, logs.String())
	}
}

// A store that cannot be reached (or refuses to start) is reported with
// the connection string redacted, in the log and in the returned error.
func TestUnreachableConnectionStringNotLeaked(t *testing.T) {
	uri := "mongodb://blog:" + escaped + "@127.0.0.1:1/blog?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	d, err := mongox.Connect(mongox.Options{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	err = d.WaitReady(ctx, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err == nil {
		t.Fatal("nothing listens on port 1")
	}
	if !strings.Contains(logs.String(), "mongo not reachable yet") || !strings.Contains(logs.String(), "blog:xxxxx@127.0.0.1:1") {
		t.Errorf("log:\n%s", logs.String())
	}
	for _, text := range []string{logs.String(), err.Error()} {
		if l := leaks(text); l != nil {
			t.Errorf("password shown (%q) in %s", l, text)
		}
	}
	// A connection string the driver refuses at connect time (its CA file
	// is missing) gives an error without the password either.
	_, err = mongox.Connect(mongox.Options{URI: "mongodb://blog:" + escaped + "@m1/blog?tls=true&tlsCAFile=/nonexistent/ca.pem"})
	if err == nil || leaks(err.Error()) != nil {
		t.Errorf("missing CA file: %v", err)
	}
}

// Seed lists. The driver follows MongoDB's server discovery rules: among
// several seeds without replicaSet, a standalone server (which is what the
// embedded store is) is dropped from the topology as soon as it is found
// while another seed is still listed. So:
//   - a seed list naming the embedded store twice connects: the first
//     answer is dropped, the second leaves one server, used directly;
//   - a seed list where the only reachable host is a standalone never
//     connects (that list only works against replica-set members or mongos);
//   - replicaSet=rs0 against a standalone finds no member of rs0.
//
// Replica-set discovery, elections and failover cannot run here.
func TestSeedLists(t *testing.T) {
	db := env.UniqueDBName("mongoxseed")
	port := strconv.Itoa(env.Store.Port())
	tests := []struct {
		name     string
		uri      string
		connects bool
		wantErr  string
	}{
		{"SameStoreTwice", "mongodb://127.0.0.1:" + port + ",localhost:" + port + "/" + db, true, ""},
		{"OneReachableStandalone", "mongodb://127.0.0.1:" + port + ",127.0.0.1:1/" + db, false, "127.0.0.1:1"},
		{"ReplicaSetAgainstStandalone", "mongodb://127.0.0.1:" + port + "/" + db + "?replicaSet=rs0", false, "ReplicaSetNoPrimary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := mongox.Connect(mongox.Options{URI: tc.uri, ServerSelectionTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = d.Database.Collection("c").InsertOne(ctx, bson.M{"seed": tc.name})
			if tc.connects {
				if err != nil {
					t.Fatalf("insert: %v", err)
				}
				n, err := d.StaleReads.Collection("c").CountDocuments(ctx, bson.M{"seed": tc.name})
				if err != nil || n != 1 {
					t.Fatalf("count %d: %v", n, err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected")
			}
			if !mongox.IsUnavailable(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v: want an unavailable store naming %s", err, tc.wantErr)
			}
		})
	}
}
