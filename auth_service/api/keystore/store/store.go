// Package store keeps keystores, the rotation records of consumed refresh
// tokens and the marks of revoked families in Mongo. It is the only code
// that knows their collections, filters and indexes; the keystore service
// states the rules and declares what it needs (keystore.Storer).
package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/keystore/model"
	"blogplatform/chassis/mongox"
)

const (
	Collection = "keystores"
	// RotationsCollection records the refresh tokens refreshes consumed.
	RotationsCollection = "keystore_rotations"
	// RevokedFamiliesCollection marks families revoked for refresh-token
	// reuse, so a refresh racing the revocation cannot leave a live pair.
	RevokedFamiliesCollection = "keystore_revoked_families"
)

// Indexes: the reference's two lookups and the family lookup, plus TTL
// indexes that remove a keystore (and the records of its family) once its
// refresh token has expired: a consumed refresh token past its expiry is
// refused by its signature check anyway. Stores without TTL indexes
// (FerretDB) refuse those; the sweeper does the same job there.
func Indexes(refreshValidity time.Duration) []mongox.Index {
	ttl := func(coll string) mongox.Index {
		return mongox.Index{Collection: coll, Optional: true, Model: mongo.IndexModel{
			Keys:    bson.D{{Key: "createdAt", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(int32(refreshValidity / time.Second)),
		}}
	}
	return []mongox.Index{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "sKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "family", Value: 1}}}},
		{Collection: RotationsCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "sKey", Value: 1}}}},
		ttl(Collection), ttl(RotationsCollection), ttl(RevokedFamiliesCollection),
	}
}

// Store implements keystore.Storer on Mongo.
type Store struct {
	db        *mongox.DB
	keystores *mongo.Collection
	rotations *mongo.Collection
	revoked   *mongo.Collection
}

func New(db *mongox.DB) *Store {
	return &Store{
		db: db, keystores: db.Database.Collection(Collection),
		rotations: db.Database.Collection(RotationsCollection), revoked: db.Database.Collection(RevokedFamiliesCollection),
	}
}

// Insert stores ks and sets its id.
func (s *Store) Insert(ctx context.Context, ks *model.Keystore) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.keystores.InsertOne(qctx, ks)
	if err != nil {
		return fmt.Errorf("insert keystore: %w", err)
	}
	ks.ID, _ = res.InsertedID.(bson.ObjectID)
	return nil
}

// Active returns the active keystore of client's access key pKey.
func (s *Store) Active(ctx context.Context, client bson.ObjectID, pKey string) (*model.Keystore, error) {
	return s.findOne(ctx, bson.M{"client": client, "pKey": pKey, "status": true})
}

// ActivePair returns the active keystore of a token pair.
func (s *Store) ActivePair(ctx context.Context, client bson.ObjectID, pKey, sKey string) (*model.Keystore, error) {
	return s.findOne(ctx, bson.M{"client": client, "pKey": pKey, "sKey": sKey, "status": true})
}

func (s *Store) findOne(ctx context.Context, filter bson.M) (*model.Keystore, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var ks model.Keystore
	err := s.keystores.FindOne(qctx, filter).Decode(&ks)
	switch {
	case mongox.IsNotFound(err):
		return nil, model.ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("find keystore: %w", err)
	}
	return &ks, nil
}

// Delete removes the keystore id and reports whether this call removed it.
// The delete is by _id alone and its DeletedCount decides: that is atomic on
// MongoDB and on FerretDB alike, whereas FerretDB's findAndModify
// (FindOneAndDelete) reads and then deletes without checking that its
// delete removed anything, so two callers could both "win".
func (s *Store) Delete(ctx context.Context, id bson.ObjectID) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.keystores.DeleteOne(qctx, bson.M{"_id": id})
	if err != nil {
		return false, fmt.Errorf("delete keystore: %w", err)
	}
	return res.DeletedCount == 1, nil
}

// InsertRotation records a consumed refresh token.
func (s *Store) InsertRotation(ctx context.Context, r model.Rotation) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	if _, err := s.rotations.InsertOne(qctx, r); err != nil {
		return fmt.Errorf("record rotation: %w", err)
	}
	return nil
}

// Rotation returns the record of client's consumed refresh key sKey.
func (s *Store) Rotation(ctx context.Context, client bson.ObjectID, sKey string) (*model.Rotation, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var r model.Rotation
	switch err := s.rotations.FindOne(qctx, bson.M{"client": client, "sKey": sKey}).Decode(&r); {
	case mongox.IsNotFound(err):
		return nil, model.ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("find rotation: %w", err)
	}
	return &r, nil
}

// MarkFamilyRevoked records that family was revoked (idempotent).
func (s *Store) MarkFamilyRevoked(ctx context.Context, family string, now time.Time) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	_, err := s.revoked.UpdateOne(qctx, bson.M{"_id": family},
		bson.M{"$setOnInsert": bson.M{"createdAt": now}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("mark family revoked: %w", err)
	}
	return nil
}

// FamilyRevoked reports whether MarkFamilyRevoked ran for family.
func (s *Store) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	n, err := s.revoked.CountDocuments(qctx, bson.M{"_id": family})
	if err != nil {
		return false, fmt.Errorf("check family: %w", err)
	}
	return n > 0, nil
}

// FamilyMembers returns the keystores of family, including a keystore from
// before families whose own id is the family (model.Keystore.FamilyOf).
func (s *Store) FamilyMembers(ctx context.Context, family string) ([]model.Keystore, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	filter := bson.M{"family": family}
	if id, err := bson.ObjectIDFromHex(family); err == nil {
		filter = bson.M{"$or": bson.A{filter, bson.M{"_id": id}}}
	}
	cur, err := s.keystores.Find(qctx, filter)
	if err != nil {
		return nil, fmt.Errorf("find family: %w", err)
	}
	var members []model.Keystore
	if err := cur.All(qctx, &members); err != nil {
		return nil, fmt.Errorf("read family: %w", err)
	}
	return members, nil
}

// DeleteCreatedBefore deletes keystores, rotation records and family marks
// created before cutoff and returns how many documents went.
func (s *Store) DeleteCreatedBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var total int64
	for _, coll := range []*mongo.Collection{s.keystores, s.rotations, s.revoked} {
		res, err := coll.DeleteMany(qctx, bson.M{"createdAt": bson.M{"$lt": cutoff}})
		if err != nil {
			return total, fmt.Errorf("sweep %s: %w", coll.Name(), err)
		}
		total += res.DeletedCount
	}
	return total, nil
}

// OfClient returns up to limit keystores of client, in no particular order
// (the {client, pKey, status} index serves the look-up, not a sort).
func (s *Store) OfClient(ctx context.Context, client bson.ObjectID, limit int) ([]model.Keystore, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := s.keystores.Find(qctx, bson.M{"client": client}, options.Find().SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("find sessions: %w", err)
	}
	out := []model.Keystore{}
	if err := cur.All(qctx, &out); err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	return out, nil
}

// OfClientByID returns keystore id when it belongs to client.
func (s *Store) OfClientByID(ctx context.Context, client, id bson.ObjectID) (*model.Keystore, error) {
	return s.findOne(ctx, bson.M{"_id": id, "client": client})
}
