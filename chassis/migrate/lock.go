package migrate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The two leases: foreground steps and background steps are held apart so a
// long backfill does not make a newer replica wait to start.
const (
	lockForeground = "foreground"
	lockBackground = "background"
)

// lockDoc is one acquisition of a lease. The newest epoch of a lock is the
// lease; older ones are history that the next holder deletes.
type lockDoc struct {
	ID         string    `bson:"_id"`
	Lock       string    `bson:"lock"`
	Epoch      int64     `bson:"epoch"`
	Owner      string    `bson:"owner"`
	AcquiredAt time.Time `bson:"acquiredAt"`
	ExpiresAt  time.Time `bson:"expiresAt"`
	Released   bool      `bson:"released"`
}

func (d *lockDoc) free(now time.Time, owner string) bool {
	return d == nil || d.Released || !now.Before(d.ExpiresAt) || d.Owner == owner
}

// lease is a held lock. Its ctx is cancelled with ErrLeaseLost when it
// cannot be renewed before it expires, or when a newer epoch shows another
// replica took over.
type lease struct {
	r      *Runner
	doc    lockDoc
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   sync.WaitGroup
}

func (r *Runner) latestLock(ctx context.Context, lock string) (*lockDoc, error) {
	var d lockDoc
	err := r.coll.FindOne(ctx, bson.D{{Key: "lock", Value: lock}},
		options.FindOne().SetSort(bson.D{{Key: "epoch", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: read lock %s: %w", lock, err)
	}
	return &d, nil
}

// acquire takes the lease when it is free (never taken, released, expired,
// or ours). Otherwise it returns the holder's document.
func (r *Runner) acquire(ctx context.Context, lock string) (*lease, *lockDoc, error) {
	latest, err := r.latestLock(ctx, lock)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC()
	if !latest.free(now, r.o.Owner) {
		return nil, latest, nil
	}
	epoch := int64(1)
	if latest != nil {
		epoch = latest.Epoch + 1
		if latest.Owner != r.o.Owner && !latest.Released {
			r.log.Warn("taking over an expired migration lease", "lock", lock, "previousHolder", latest.Owner,
				"expiredAt", latest.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	doc := lockDoc{
		ID: fmt.Sprintf("lock:%s:%012d", lock, epoch), Lock: lock, Epoch: epoch, Owner: r.o.Owner,
		AcquiredAt: now, ExpiresAt: now.Add(r.o.LeaseTTL),
	}
	if _, err := r.coll.InsertOne(ctx, doc); err != nil {
		if isDuplicate(err) { // another replica took this epoch first
			holder, lerr := r.latestLock(ctx, lock)
			return nil, holder, lerr
		}
		return nil, nil, fmt.Errorf("migrate: take lock %s: %w", lock, err)
	}
	// History: earlier epochs are no longer needed (best effort).
	_, _ = r.coll.DeleteMany(ctx, bson.D{{Key: "lock", Value: lock}, {Key: "epoch", Value: bson.D{{Key: "$lt", Value: epoch}}}})

	lctx, cancel := context.WithCancelCause(ctx)
	l := &lease{r: r, doc: doc, ctx: lctx, cancel: cancel, stop: make(chan struct{})}
	l.done.Add(1)
	go l.renew()
	return l, nil, nil
}

// renew extends the lease every LeaseTTL/3. A lease that ran out by this
// replica's clock is lost for good (another replica may already hold it).
func (l *lease) renew() {
	defer l.done.Done()
	r := l.r
	every := r.o.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		if !now.Before(l.doc.ExpiresAt) {
			r.log.Error("migration lease expired before it could be renewed; stopping", "lock", l.doc.Lock)
			l.cancel(ErrLeaseLost)
			return
		}
		if lost, err := l.extend(now.Add(r.o.LeaseTTL), every); err != nil {
			r.log.Warn("cannot renew migration lease; retrying", "lock", l.doc.Lock, "error", err.Error())
		} else if lost {
			r.log.Error("migration lease taken by another replica; stopping", "lock", l.doc.Lock)
			l.cancel(ErrLeaseLost)
			return
		}
	}
}

func (l *lease) extend(until time.Time, timeout time.Duration) (lost bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), timeout)
	defer cancel()
	res, err := l.r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: l.doc.ID}, {Key: "owner", Value: l.doc.Owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: until}}}})
	if err != nil {
		return false, err
	}
	if res.MatchedCount == 0 {
		return true, nil
	}
	latest, err := l.r.latestLock(ctx, l.doc.Lock)
	if err != nil {
		return false, err
	}
	if latest == nil || latest.Epoch != l.doc.Epoch {
		return true, nil
	}
	l.doc.ExpiresAt = until
	return false, nil
}

// release stops renewing and marks the lease free for the next replica.
func (l *lease) release() {
	close(l.stop)
	l.done.Wait()
	l.cancel(nil)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	if _, err := l.r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: l.doc.ID}, {Key: "owner", Value: l.doc.Owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "released", Value: true}, {Key: "expiresAt", Value: now}}}}); err != nil {
		l.r.log.Warn("cannot release migration lease; it frees itself when it expires", "lock", l.doc.Lock,
			"expiresAt", l.doc.ExpiresAt.Format(time.RFC3339), "error", err.Error())
	}
}
