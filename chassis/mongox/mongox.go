// Package mongox connects to MongoDB (or a wire-compatible store such as
// FerretDB) with the reference's variables, honours both pool sizes, applies a
// per-query timeout, and ensures indexes before the service serves.
package mongox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

type Options struct {
	// URI is a full connection string (DB_URI: a seed list with replicaSet,
	// mongodb+srv, TLS options...). When set it replaces Host, Port, User
	// and Password. Its path names the database unless it names a system
	// database (admin, local, config: then it is only where the user
	// authenticates) or nothing; Name applies otherwise. Options it sets
	// (pool sizes, timeouts, appName, readPreference, w) win over the
	// fields below.
	URI          string
	Host         string
	Port         int
	Name         string // database
	User         string // credentials are used only when set
	Password     string
	MinPool      uint64
	MaxPool      uint64
	QueryTimeout time.Duration
	// ServerSelectionTimeout bounds how long an operation waits for a
	// reachable server (default 2s), so a store outage is answered quickly.
	ServerSelectionTimeout time.Duration
	AppName                string
	// ReadPreference ("" is primary; see ReadPreferences) is used only by
	// DB.StaleReads, for reads that may return a state older than the
	// last write.
	ReadPreference string
	// WriteConcern is "majority", a number of members, or "" for the
	// driver's default (acknowledged by the primary).
	WriteConcern string
	// Monitor, when set, sees every command the client sends; it is set by
	// code, never by configuration (tests record the queries a service
	// runs to check them against its indexes).
	Monitor *event.CommandMonitor
}

// HostURI builds mongodb://[user:pwd@]host:port/db from the separate
// variables (used when no connection string is given); with credentials
// the auth source is the application database, where the init scripts
// create the user.
func (o Options) HostURI() string {
	u := url.URL{Scheme: "mongodb", Host: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), Path: "/" + o.Name}
	if o.User != "" {
		u.User = url.UserPassword(o.User, o.Password)
	}
	return u.String()
}

// DB is a connected database with the configured query timeout.
//
// Database reads from the primary whatever the connection string or
// DB_READ_PREFERENCE say: writes, reads inside a write, and every read
// whose result is kept (in a cache) must see the latest state. StaleReads
// is the same database with the configured read preference, for reads
// that may return an older state and whose result is not kept.
type DB struct {
	Client       *mongo.Client
	Database     *mongo.Database
	StaleReads   *mongo.Database
	QueryTimeout time.Duration
	// ReadPreference is StaleReads' read preference mode and WriteConcern
	// the write concern of every write ("" when the driver's default).
	ReadPreference string
	WriteConcern   string
	redacted       string // the connection string without secrets, for logs
	uri            string // DB_URI as given: its secrets are scrubbed from errors
}

// Connect creates the client without waiting for the server; use WaitReady to
// block until it answers. Its error never contains the connection string's
// password.
func Connect(o Options) (*DB, error) {
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 10 * time.Second
	}
	if o.ServerSelectionTimeout <= 0 {
		o.ServerSelectionTimeout = 2 * time.Second
	}
	r, err := o.resolve()
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	co := r.clientOptions(o)
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongo connect: %s", scrub(err.Error(), o.URI))
	}
	db := &DB{
		Client:         client,
		Database:       client.Database(r.database, options.Database().SetReadPreference(readpref.Primary())),
		StaleReads:     client.Database(r.database, options.Database().SetReadPreference(r.readPref)),
		QueryTimeout:   o.QueryTimeout,
		ReadPreference: r.readPref.Mode().String(),
		redacted:       o.Redacted(),
		uri:            o.URI,
	}
	if r.write != nil {
		db.WriteConcern = fmt.Sprint(r.write.W)
	}
	return db, nil
}

// ClientOptions are the driver options Connect uses: the connection string
// first, then the variables wherever the connection string is silent. Its
// error never contains the connection string's password.
func (o Options) ClientOptions() (*options.ClientOptions, error) {
	r, err := o.resolve()
	if err != nil {
		return nil, err
	}
	return r.clientOptions(o), nil
}

func (r resolved) clientOptions(o Options) *options.ClientOptions {
	if o.ServerSelectionTimeout <= 0 {
		o.ServerSelectionTimeout = 2 * time.Second
	}
	co := options.Client().ApplyURI(r.uri)
	// The variables apply where the connection string is silent.
	uri := r.cs
	if uri == nil {
		uri = &connstring.ConnString{}
	}
	maxPool := o.MaxPool
	if maxPool == 0 {
		maxPool = 100
	}
	if uri.MaxPoolSizeSet {
		maxPool = uri.MaxPoolSize // 0: unbounded
	} else {
		co.SetMaxPoolSize(maxPool)
	}
	if !uri.MinPoolSizeSet {
		minPool := o.MinPool
		if maxPool > 0 {
			minPool = min(minPool, maxPool) // the driver refuses a minimum above the maximum
		}
		co.SetMinPoolSize(minPool)
	}
	if !uri.ServerSelectionTimeoutSet {
		co.SetServerSelectionTimeout(o.ServerSelectionTimeout)
	}
	if !uri.ConnectTimeoutSet {
		co.SetConnectTimeout(5 * time.Second)
	}
	if uri.AppName == "" && o.AppName != "" {
		co.SetAppName(o.AppName)
	}
	// The client's own default stays primary: a connection string's
	// readPreference applies only to DB.StaleReads.
	co.SetReadPreference(readpref.Primary())
	if r.write != nil {
		co.SetWriteConcern(r.write)
	}
	if o.Monitor != nil {
		co.SetMonitor(o.Monitor)
	}
	return co
}

// Ctx bounds one query with the configured timeout.
func (d *DB) Ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.QueryTimeout)
}

// Ping checks the server answers.
func (d *DB) Ping(ctx context.Context) error {
	return d.Client.Ping(ctx, readpref.Primary())
}

// WaitReady pings with backoff until the server answers or ctx ends, logging
// each failed attempt once with the delay until the next.
func (d *DB) WaitReady(ctx context.Context, log *slog.Logger) error {
	log.Info("mongo connecting", "uri", d.redacted, "database", d.Database.Name(),
		"staleReads", d.ReadPreference, "writeConcern", d.WriteConcern)
	delay := 200 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := d.Ping(pctx)
		cancel()
		if err == nil {
			log.Info("mongo ready", "uri", d.redacted, "database", d.Database.Name())
			return nil
		}
		log.Warn("mongo not reachable yet; retrying", "uri", d.redacted, "retryIn", delay.String(), "error", scrub(err.Error(), d.uri))
		select {
		case <-ctx.Done():
			return fmt.Errorf("mongo not reachable: %s", scrub(err.Error(), d.uri))
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (d *DB) Close(ctx context.Context) error { return d.Client.Disconnect(ctx) }

// Index is one index to ensure. Optional indexes may be refused by a store
// that lacks the feature (FerretDB has no text or TTL indexes); that is
// logged and the service goes on with the fallback it was built with.
type Index struct {
	Collection string
	Model      mongo.IndexModel
	Optional   bool
}

// EnsureIndexes creates every index, returning the names of optional ones the
// store refused. A required index that fails is an error: the service must not
// serve without, say, a unique index.
//
// An index on the same keys that already exists under another name (created
// by another version or by an operator, e.g. the reference's own names) is
// accepted when its options are equivalent; with different options the error
// says which index to drop.
func EnsureIndexes(ctx context.Context, db *mongo.Database, log *slog.Logger, indexes []Index) (skipped []string, err error) {
	for _, ix := range indexes {
		coll := db.Collection(ix.Collection)
		_, cerr := coll.Indexes().CreateOne(ctx, ix.Model)
		if cerr == nil {
			continue
		}
		label := ix.Collection + "." + indexLabel(ix.Model)
		if isIndexConflict(cerr) {
			existing, same, lerr := findSameKeys(ctx, coll, ix.Model)
			switch {
			case lerr != nil:
				return skipped, fmt.Errorf("ensure index %s: %w (listing the existing indexes: %v)", label, cerr, lerr)
			case existing != "" && same == "":
				log.Info("index already exists under another name; kept", "index", label, "existing", existing)
				continue
			case existing != "":
				return skipped, fmt.Errorf("ensure index %s: the index %q on the same keys has different options (%s); "+
					"drop it (db.%s.dropIndex(%q)) and start the service again to create the right one",
					label, existing, same, ix.Collection, existing)
			}
		}
		if ix.Optional {
			log.Warn("optional index not supported by the store; using the fallback", "index", label, "error", cerr.Error())
			skipped = append(skipped, label)
			continue
		}
		return skipped, fmt.Errorf("ensure index %s: %w", label, cerr)
	}
	return skipped, nil
}

// isIndexConflict reports MongoDB's IndexOptionsConflict (85) and
// IndexKeySpecsConflict (86): an index with these keys or this name exists
// in another form.
func isIndexConflict(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && (se.HasErrorCode(85) || se.HasErrorCode(86))
}

// findSameKeys looks for an existing index on exactly model's keys. It
// returns its name ("" when there is none) and, when its options differ from
// model's, what differs ("" when they are equivalent).
func findSameKeys(ctx context.Context, coll *mongo.Collection, model mongo.IndexModel) (name, diff string, err error) {
	want, err := bson.Marshal(model.Keys)
	if err != nil {
		return "", "", err
	}
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return "", "", err
	}
	var specs []bson.Raw
	if err := cur.All(ctx, &specs); err != nil {
		return "", "", err
	}
	opts := options.IndexOptions{}
	if model.Options != nil {
		for _, set := range model.Options.List() {
			if err := set(&opts); err != nil {
				return "", "", err
			}
		}
	}
	for _, spec := range specs {
		key, ok := spec.Lookup("key").DocumentOK()
		if !ok || !sameKeys(key, want) {
			continue
		}
		name, _ = spec.Lookup("name").StringValueOK()
		var diffs []string
		if got, wantUnique := boolOption(spec, "unique"), opts.Unique != nil && *opts.Unique; got != wantUnique {
			diffs = append(diffs, fmt.Sprintf("unique: %v, want %v", got, wantUnique))
		}
		if got, wantSparse := boolOption(spec, "sparse"), opts.Sparse != nil && *opts.Sparse; got != wantSparse {
			diffs = append(diffs, fmt.Sprintf("sparse: %v, want %v", got, wantSparse))
		}
		gotTTL, hasTTL := spec.Lookup("expireAfterSeconds").AsInt64OK()
		switch {
		case opts.ExpireAfterSeconds == nil && hasTTL:
			diffs = append(diffs, fmt.Sprintf("expireAfterSeconds: %d, want none", gotTTL))
		case opts.ExpireAfterSeconds != nil && (!hasTTL || gotTTL != int64(*opts.ExpireAfterSeconds)):
			diffs = append(diffs, fmt.Sprintf("expireAfterSeconds: %v, want %d", spec.Lookup("expireAfterSeconds"), *opts.ExpireAfterSeconds))
		}
		return name, strings.Join(diffs, "; "), nil
	}
	return "", "", nil
}

// sameKeys compares two key documents field by field, in order, numbers by
// value (1 and 1.0 are the same direction).
func sameKeys(got bson.Raw, want []byte) bool {
	a, err := got.Elements()
	if err != nil {
		return false
	}
	b, err := bson.Raw(want).Elements()
	if err != nil || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key() != b[i].Key() {
			return false
		}
		av, bv := a[i].Value(), b[i].Value()
		if an, ok := av.AsFloat64OK(); ok {
			if bn, ok := bv.AsFloat64OK(); !ok || an != bn {
				return false
			}
			continue
		}
		if av.String() != bv.String() {
			return false
		}
	}
	return true
}

func boolOption(spec bson.Raw, key string) bool {
	v, ok := spec.Lookup(key).BooleanOK()
	return ok && v
}

func indexLabel(m mongo.IndexModel) string {
	if doc, ok := m.Keys.(bson.D); ok {
		parts := make([]string, 0, len(doc))
		for _, e := range doc {
			parts = append(parts, fmt.Sprintf("%s_%v", e.Key, e.Value))
		}
		return strings.Join(parts, "_")
	}
	return fmt.Sprint(m.Keys)
}

// IsDuplicateKey reports a unique-index violation. MongoDB (and FerretDB on
// inserts and upserts) answer E11000, code 11000. FerretDB's SQLite backend
// answers an update, replace or findAndModify that would create a duplicate
// with code 1 and SQLite's "UNIQUE constraint failed" text instead, which
// mongo.IsDuplicateKeyError does not recognise.
func IsDuplicateKey(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCodeWithMessage(1, "UNIQUE constraint failed")
}

// IsUnavailable reports an error that means the store cannot be reached
// (no server selectable, network failure, timeout), as opposed to a query the
// store rejected. Callers answer such errors with 503, not 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var sel topology.ServerSelectionError
	return errors.As(err, &sel) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected)
}

// IsNotFound reports a findOne that matched nothing.
func IsNotFound(err error) bool { return errors.Is(err, mongo.ErrNoDocuments) }
