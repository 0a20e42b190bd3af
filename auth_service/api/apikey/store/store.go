// Package store keeps API keys in Mongo. It is the only code that knows
// their collection, filters and indexes; the apikey service states the rules
// and declares what it needs (apikey.Storer).
package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/apikey/model"
	"blogplatform/chassis/mongox"
)

const Collection = "api_keys"

// Indexes: the unique index is on key (the reference put it on a field api
// keys do not have); it serves every lookup by key, status included, so no
// {key, status} index is declared.
func Indexes() []mongox.Index {
	return []mongox.Index{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}}, Options: options.Index().SetUnique(true)}},
	}
}

// Store implements apikey.Storer on Mongo.
type Store struct {
	db   *mongox.DB
	coll *mongo.Collection
}

func New(db *mongox.DB) *Store { return &Store{db: db, coll: db.Database.Collection(Collection)} }

// Active returns the active key with that value.
func (s *Store) Active(ctx context.Context, key string) (*model.ApiKey, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var k model.ApiKey
	if err := s.coll.FindOne(qctx, bson.M{"key": key, "status": true}).Decode(&k); err != nil {
		if mongox.IsNotFound(err) {
			return nil, model.ErrNotFound
		}
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return &k, nil
}

// Insert stores k and sets its id; an existing value is model.ErrDuplicate.
func (s *Store) Insert(ctx context.Context, k *model.ApiKey) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.InsertOne(qctx, k)
	if err != nil {
		if mongox.IsDuplicateKey(err) {
			return model.ErrDuplicate
		}
		return fmt.Errorf("insert api key: %w", err)
	}
	k.ID, _ = res.InsertedID.(bson.ObjectID)
	return nil
}

// InsertIfMissing stores k unless a key with its value exists (then nothing
// changes). A concurrent insert of the same value counts as done.
func (s *Store) InsertIfMissing(ctx context.Context, k *model.ApiKey) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	_, err := s.coll.UpdateOne(qctx, bson.M{"key": k.Key}, bson.M{"$setOnInsert": bson.M{
		"version": k.Version, "permissions": k.Permissions, "comments": k.Comments,
		"status": k.Status, "createdAt": k.CreatedAt, "updatedAt": k.UpdatedAt,
	}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("ensure api key: %w", err)
	}
	return nil
}

// Disable sets the key's status to false and reports whether a key matched.
func (s *Store) Disable(ctx context.Context, key string, now time.Time) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.UpdateOne(qctx, bson.M{"key": key}, bson.M{"$set": bson.M{"status": false, "updatedAt": now}})
	if err != nil {
		return false, fmt.Errorf("disable api key: %w", err)
	}
	return res.MatchedCount > 0, nil
}

// Page returns up to limit keys whose id is after `after` (the zero id:
// from the first), in id order. Paging on _id keeps every page an index
// range, however many keys there are.
func (s *Store) Page(ctx context.Context, after bson.ObjectID, limit int) ([]model.ApiKey, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := s.coll.Find(qctx, bson.M{"_id": bson.M{"$gt": after}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys := []model.ApiKey{}
	if err := cur.All(qctx, &keys); err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	return keys, nil
}

// ByID returns the key with that id, whatever its status.
func (s *Store) ByID(ctx context.Context, id bson.ObjectID) (*model.ApiKey, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var k model.ApiKey
	if err := s.coll.FindOne(qctx, bson.M{"_id": id}).Decode(&k); err != nil {
		if mongox.IsNotFound(err) {
			return nil, model.ErrNotFound
		}
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return &k, nil
}
