package apikey

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

const Collection = "api_keys"

// PermissionGeneral is the only permission the reference defines (never
// checked).
const PermissionGeneral = "GENERAL"

// ApiKey is a document of api_keys (§7.1).
type ApiKey struct {
	ID          bson.ObjectID `bson:"_id,omitempty"`
	Key         string        `bson:"key"`
	Version     int           `bson:"version"`
	Permissions []string      `bson:"permissions"`
	Comments    []string      `bson:"comments"`
	Status      bool          `bson:"status"`
	CreatedAt   time.Time     `bson:"createdAt"`
	UpdatedAt   time.Time     `bson:"updatedAt"`
}

// Indexes: the unique index is on key (the reference put it on a field api
// keys do not have).
func Indexes() []mongox.Index {
	return []mongox.Index{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}}, Options: options.Index().SetUnique(true)}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}, {Key: "status", Value: 1}}}},
	}
}
