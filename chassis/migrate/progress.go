package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Progress is a running step's view of its record: where to resume, how many
// documents it has processed, and its logger.
type Progress struct {
	coll      *mongo.Collection
	step      string
	processed int64
	log       *slog.Logger
}

// Log is the logger of the step (it carries step=<name>).
func (p *Progress) Log() *slog.Logger { return p.log }

// Processed is the count of processed items recorded so far, over every
// attempt of the step.
func (p *Progress) Processed() int64 { return p.processed }

// Load decodes the last saved checkpoint into into; false when there is none.
func (p *Progress) Load(ctx context.Context, into any) (bool, error) {
	var rec struct {
		Progress bson.Raw `bson:"progress"`
	}
	err := p.coll.FindOne(ctx, bson.D{{Key: "_id", Value: p.step}},
		options.FindOne().SetProjection(bson.D{{Key: "progress", Value: 1}})).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && len(rec.Progress) == 0) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("migrate: load progress of %s: %w", p.step, err)
	}
	if err := bson.Unmarshal(rec.Progress, into); err != nil {
		return false, fmt.Errorf("migrate: decode progress of %s: %w", p.step, err)
	}
	return true, nil
}

// Save records checkpoint (any BSON document) as the point to resume from and
// adds processed to the step's count.
func (p *Progress) Save(ctx context.Context, checkpoint any, processed int) error {
	_, err := p.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.step}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "progress", Value: checkpoint}, {Key: "updatedAt", Value: time.Now().UTC()}}},
		{Key: "$inc", Value: bson.D{{Key: "processed", Value: int64(processed)}}},
	})
	if err != nil {
		return fmt.Errorf("migrate: save progress of %s: %w", p.step, err)
	}
	p.processed += int64(processed)
	return nil
}

// Batch says which documents EachBatch walks.
type Batch struct {
	Collection *mongo.Collection
	Filter     any // nil: every document
	Projection any // nil: whole documents
	Size       int // default 500
}

// batchCheckpoint is what EachBatch saves: the last _id it finished.
type batchCheckpoint struct {
	LastID bson.RawValue `bson:"lastId"`
}

// EachBatch calls fn with the documents of b.Collection that match b.Filter,
// in _id order, b.Size at a time, starting after the last _id an earlier
// attempt of the step saved. After each batch it saves the batch's last _id
// and logs the running count. fn must be idempotent for its batch: a crash
// between fn and the save repeats that batch on the next attempt. Use one
// EachBatch per step (the checkpoint is the step's).
//
// Each batch is its own query (_id greater than the last one, sorted, limited
// to b.Size), closed before fn runs: no cursor stays open while fn writes to
// the collection (on the embedded FerretDB, an update of a table that an open
// query is reading can wait forever), and none outlives the server's idle
// cursor timeout during a slow batch. On MongoDB each query is a range scan
// of the _id index.
func (p *Progress) EachBatch(ctx context.Context, b Batch, fn func(ctx context.Context, docs []bson.Raw) error) error {
	if b.Size <= 0 {
		b.Size = 500
	}
	var cp batchCheckpoint
	resumed, err := p.Load(ctx, &cp)
	if err != nil {
		return err
	}
	if resumed = resumed && cp.LastID.Type != 0; resumed {
		p.log.Info("migration resuming after the last saved _id", "processed", p.processed)
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(b.Size)).SetBatchSize(int32(b.Size))
	if b.Projection != nil {
		opts.SetProjection(b.Projection)
	}
	begin := time.Now()
	for batches := 1; ; batches++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		filter := b.Filter
		if resumed {
			after := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: cp.LastID}}}}
			if filter == nil {
				filter = after
			} else {
				filter = bson.D{{Key: "$and", Value: bson.A{b.Filter, after}}}
			}
		} else if filter == nil {
			filter = bson.D{}
		}
		cur, err := b.Collection.Find(ctx, filter, opts)
		if err != nil {
			return fmt.Errorf("migrate: %s: read batch: %w", p.step, err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("migrate: %s: read batch: %w", p.step, err)
		}
		if len(docs) == 0 {
			return nil
		}
		if err := fn(ctx, docs); err != nil {
			return err
		}
		last, err := docs[len(docs)-1].LookupErr("_id")
		if err != nil {
			return fmt.Errorf("migrate: %s: document without _id: %w", p.step, err)
		}
		cp, resumed = batchCheckpoint{LastID: last}, true
		if err := p.Save(ctx, cp, len(docs)); err != nil {
			return err
		}
		p.log.Info("migration batch", "batch", batches, "size", len(docs), "processed", p.processed,
			"elapsed", time.Since(begin).Round(time.Millisecond).String())
		if len(docs) < b.Size {
			return nil
		}
	}
}
