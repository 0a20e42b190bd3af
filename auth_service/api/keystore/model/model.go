// Package model holds the keystore domain: one keystore per token pair, the
// family that refreshes chain together, and the record of a consumed
// refresh token. The struct tags name the stored fields (the reference's
// keystores documents share them); collections and queries are the store's.
package model

import (
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrNotFound: no active keystore (or rotation record) matches.
var ErrNotFound = errors.New("keystore not found")

// Keystore is one token pair's keys: PKey is the access token's jti, SKey
// the refresh token's. A pair is valid exactly while its keystore exists.
type Keystore struct {
	ID     bson.ObjectID `bson:"_id,omitempty"`
	Client bson.ObjectID `bson:"client"`
	PKey   string        `bson:"pKey"`
	SKey   string        `bson:"sKey"`
	Status bool          `bson:"status"`
	// Family is shared by the keystores that refreshes chained together.
	// Keystores stored before families existed have none: their family is
	// their own id (see FamilyOf).
	Family    string    `bson:"family,omitempty"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// FamilyOf is the keystore's family.
func (k *Keystore) FamilyOf() string {
	if k.Family != "" {
		return k.Family
	}
	return k.ID.Hex()
}

// Rotation records that a refresh consumed the refresh token SKey of Family.
type Rotation struct {
	Client    bson.ObjectID `bson:"client"`
	SKey      string        `bson:"sKey"`
	Family    string        `bson:"family"`
	CreatedAt time.Time     `bson:"createdAt"`
}
