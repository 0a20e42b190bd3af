// Package migrate runs a service's start-up migrations: an ordered list of
// named, idempotent steps, each recorded in a collection of the service's
// database (default "migrations") with its state, times and progress.
//
// One replica runs the steps at a time. It holds a lease (a lock document with
// an expiry, renewed while steps run); the other replicas wait for the
// foreground steps, or take over when the holder's lease expires because it
// crashed. The lock needs neither transactions nor TTL indexes (FerretDB v1
// has neither): every acquisition inserts a new lock document whose _id
// carries the next epoch number, so of two replicas taking over an expired
// lease the unique _id lets exactly one win, on MongoDB and on stores that
// evaluate an update's filter apart from its write.
//
// Foreground steps run before Run returns (the service serves only after
// them). Background steps (long backfills) run after Run returns, in a
// goroutine that Close stops; they are resumable through Progress, so an
// interrupted step continues on the next start where it stopped.
//
// Leases are judged by each replica's own clock: replicas' clocks must agree
// to well within LeaseTTL (30 s by default). A replica whose lease ran out by
// its own clock stops its step (the step's context is cancelled), so two
// replicas overlap only if their clocks disagree; steps are idempotent so an
// overlap repeats work instead of corrupting it.
package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

// States of a step's record.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
	// StateInterrupted: the replica stopped the step on shutdown; the next
	// start resumes it.
	StateInterrupted = "interrupted"
)

// ErrLeaseLost cancels a running step when the replica could not renew its
// lease in time (another replica may take over).
var ErrLeaseLost = errors.New("migrate: lease lost")

// Step is one named, idempotent migration step. Its Name is its record's _id
// and must never change once released.
type Step struct {
	Name string
	// Background steps run after Run returns, while the service serves; they
	// must come after every foreground step in the list.
	Background bool
	Run        func(ctx context.Context, p *Progress) error
}

// Options tune a Runner; the zero value is fine for services.
type Options struct {
	Collection   string        // default "migrations"
	Owner        string        // this replica in locks and records; default <hostname>-<random>
	LeaseTTL     time.Duration // default 30s; renewed every LeaseTTL/3
	PollInterval time.Duration // how often a waiting replica looks again; default 1s
	RetryDelay   time.Duration // before a failed background step is tried again; default 30s
	Logger       *slog.Logger  // default slog.Default()
}

// Record is a step's document in the migrations collection.
type Record struct {
	Name          string     `bson:"_id"`
	State         string     `bson:"state"`
	Background    bool       `bson:"background"`
	Owner         string     `bson:"owner"`
	Attempts      int        `bson:"attempts"`
	StartedAt     time.Time  `bson:"startedAt"`
	LastStartedAt time.Time  `bson:"lastStartedAt"`
	UpdatedAt     time.Time  `bson:"updatedAt"`
	FinishedAt    *time.Time `bson:"finishedAt,omitempty"`
	Processed     int64      `bson:"processed"`
	Progress      bson.Raw   `bson:"progress,omitempty"`
	Error         string     `bson:"error,omitempty"`
}

// Runner runs one service's steps; one per replica.
type Runner struct {
	coll  *mongo.Collection
	steps []Step
	o     Options
	log   *slog.Logger

	mu      sync.Mutex
	started bool // background goroutine started
	stopBG  context.CancelFunc
	bgDone  chan struct{}
}

var stepName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// New checks the steps (names valid and unique, background steps last) and
// returns a Runner. It does not touch the database.
func New(db *mongo.Database, steps []Step, o Options) (*Runner, error) {
	if o.Collection == "" {
		o.Collection = "migrations"
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Owner = host + "-" + hex.EncodeToString(b[:])
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	seen := map[string]bool{}
	background := false
	for _, s := range steps {
		switch {
		case !stepName.MatchString(s.Name):
			return nil, fmt.Errorf("migrate: step name %q: use lowercase letters, digits, '.', '_' and '-'", s.Name)
		case seen[s.Name]:
			return nil, fmt.Errorf("migrate: step %q listed twice", s.Name)
		case s.Run == nil:
			return nil, fmt.Errorf("migrate: step %q has no Run", s.Name)
		case background && !s.Background:
			return nil, fmt.Errorf("migrate: foreground step %q comes after a background step", s.Name)
		}
		seen[s.Name] = true
		background = background || s.Background
	}
	bgDone := make(chan struct{})
	return &Runner{
		coll: db.Collection(o.Collection), steps: steps, o: o,
		log: o.Logger.With("component", "migrate"), bgDone: bgDone,
	}, nil
}

// Owner is this replica's name in locks and records.
func (r *Runner) Owner() string { return r.o.Owner }

// Run makes sure every foreground step is done: it runs the pending ones
// under the lease, or waits while another replica holds it (taking over if
// that replica's lease expires). Then it starts the background steps in a
// goroutine and returns. On a database where everything is done it reads the
// records once and writes nothing.
func (r *Runner) Run(ctx context.Context) error {
	var fg, bg []Step
	for _, s := range r.steps {
		if s.Background {
			bg = append(bg, s)
		} else {
			fg = append(fg, s)
		}
	}
	recs, err := r.recordMap(ctx)
	if err != nil {
		return err
	}
	if pending := pendingSteps(fg, recs); len(pending) > 0 {
		if err := r.runLocked(ctx, lockForeground, fg, false); err != nil {
			return err
		}
	} else {
		r.log.Info("migrations up to date", "steps", len(fg), "background", len(bg))
	}
	r.startBackground(bg, recs)
	return nil
}

// runLocked runs steps under the lease named lock, or waits for the replica
// holding it until every step is done. With retry (background steps) a
// failed step is tried again after RetryDelay instead of being returned.
func (r *Runner) runLocked(ctx context.Context, lock string, steps []Step, retry bool) error {
	var waitingFor string
	for {
		l, holder, err := r.acquire(ctx, lock)
		if err != nil {
			return err
		}
		if l != nil {
			err := r.runSteps(l.ctx, steps)
			if lost := context.Cause(l.ctx); err != nil && errors.Is(lost, ErrLeaseLost) {
				err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
			}
			l.release()
			if err == nil {
				return nil
			}
			if !retry || ctx.Err() != nil {
				return err
			}
			r.log.Error("migration failed; trying again later", "lock", lock, "retryIn", r.o.RetryDelay.String(), "error", err.Error())
			if err := sleep(ctx, r.o.RetryDelay); err != nil {
				return err
			}
			continue
		}
		if holder != nil && holder.Owner != waitingFor {
			waitingFor = holder.Owner
			r.log.Info("waiting for another replica's migrations", "lock", lock, "holder", holder.Owner,
				"leaseExpiresAt", holder.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if err := sleep(ctx, r.o.PollInterval); err != nil {
			return err
		}
		recs, err := r.recordMap(ctx)
		if err != nil {
			return err
		}
		if len(pendingSteps(steps, recs)) == 0 {
			r.log.Info("migrations done by another replica", "lock", lock, "steps", len(steps))
			return nil
		}
	}
}

// runSteps runs the steps not yet done, in order, recording each. The caller
// holds the lease; ctx ends when it is lost.
func (r *Runner) runSteps(ctx context.Context, steps []Step) error {
	recs, err := r.recordMap(ctx) // again: the previous holder may have finished some
	if err != nil {
		return err
	}
	if len(pendingSteps(steps, recs)) == 0 {
		// The previous holder finished them all between this replica's
		// last look and its taking the lease.
		r.log.Info("migrations done by another replica", "steps", len(steps))
		return nil
	}
	for _, s := range steps {
		rec, ok := recs[s.Name]
		if ok && rec.State == StateDone {
			continue
		}
		now := time.Now().UTC()
		_, err := r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.Name}}, bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "state", Value: StateRunning}, {Key: "background", Value: s.Background},
				{Key: "owner", Value: r.o.Owner}, {Key: "lastStartedAt", Value: now}, {Key: "updatedAt", Value: now},
			}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "startedAt", Value: now}}},
			{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}, {Key: "processed", Value: int64(0)}}},
		}, options.UpdateOne().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("migrate: record start of %s: %w", s.Name, err)
		}
		p := &Progress{coll: r.coll, step: s.Name, processed: rec.Processed, log: r.log.With("step", s.Name)}
		if ok {
			p.log.Info("migration step resuming", "attempt", rec.Attempts+1, "processed", rec.Processed, "lastState", rec.State)
		} else {
			p.log.Info("migration step starting", "background", s.Background)
		}
		begin := time.Now()
		runErr := s.Run(ctx, p)
		if runErr == nil && ctx.Err() != nil {
			runErr = context.Cause(ctx)
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		set := bson.D{{Key: "updatedAt", Value: time.Now().UTC()}}
		switch {
		case runErr != nil && errors.Is(runErr, context.Canceled) && ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrLeaseLost):
			set = append(set, bson.E{Key: "state", Value: StateInterrupted}, bson.E{Key: "error", Value: runErr.Error()})
		case runErr != nil:
			set = append(set, bson.E{Key: "state", Value: StateFailed}, bson.E{Key: "error", Value: runErr.Error()})
		default:
			set = append(set, bson.E{Key: "state", Value: StateDone}, bson.E{Key: "finishedAt", Value: time.Now().UTC()})
		}
		update := bson.D{{Key: "$set", Value: set}}
		if runErr == nil {
			update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "error", Value: ""}}})
		}
		_, werr := r.coll.UpdateOne(wctx, bson.D{{Key: "_id", Value: s.Name}}, update)
		cancel()
		if runErr != nil {
			p.log.Error("migration step stopped", "processed", p.processed, "elapsed", time.Since(begin).String(), "error", runErr.Error())
			return fmt.Errorf("migrate: step %s: %w", s.Name, runErr)
		}
		if werr != nil {
			return fmt.Errorf("migrate: record end of %s: %w", s.Name, werr)
		}
		p.log.Info("migration step done", "processed", p.processed, "elapsed", time.Since(begin).String())
	}
	return nil
}

// startBackground starts the goroutine that runs the background steps (once).
func (r *Runner) startBackground(bg []Step, recs map[string]Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	if len(pendingSteps(bg, recs)) == 0 {
		close(r.bgDone)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopBG = cancel
	go func() {
		defer close(r.bgDone)
		if err := r.runLocked(ctx, lockBackground, bg, true); err != nil && ctx.Err() == nil {
			r.log.Error("background migrations stopped", "error", err.Error())
		}
	}()
}

// BackgroundDone is closed when the background steps are all done (by this
// replica or another) or stopped by Close.
func (r *Runner) BackgroundDone() <-chan struct{} { return r.bgDone }

// Close stops the background steps (a running step sees its context
// cancelled; its saved progress stays for the next start) and waits for them,
// at most until ctx ends. Safe to call more than once, and without Run.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	started, stop := r.started, r.stopBG
	r.mu.Unlock()
	if !started {
		return nil
	}
	if stop != nil {
		stop()
	}
	select {
	case <-r.bgDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("migrate: background steps did not stop: %w", ctx.Err())
	}
}

// Records returns the steps' records (not the lock documents), by name.
func (r *Runner) Records(ctx context.Context) ([]Record, error) {
	cur, err := r.coll.Find(ctx, bson.D{{Key: "lock", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("migrate: read records: %w", err)
	}
	var out []Record
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("migrate: read records: %w", err)
	}
	return out, nil
}

func (r *Runner) recordMap(ctx context.Context) (map[string]Record, error) {
	recs, err := r.Records(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Record, len(recs))
	for _, rec := range recs {
		m[rec.Name] = rec
	}
	return m, nil
}

func pendingSteps(steps []Step, recs map[string]Record) []Step {
	var out []Step
	for _, s := range steps {
		if recs[s.Name].State != StateDone {
			out = append(out, s)
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isDuplicate is mongox's unique-violation test (FerretDB answers some with
// another code).
func isDuplicate(err error) bool { return mongox.IsDuplicateKey(err) }
