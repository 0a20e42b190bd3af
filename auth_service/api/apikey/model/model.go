// Package model holds the API key domain: a key the gateway presents and
// whether it is active. The struct tags name the stored fields (the
// reference's api_keys documents share them); collections and queries are
// the store's.
package model

import (
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	// ErrNotFound: no active key matches.
	ErrNotFound = errors.New("api key not found")
	// ErrDuplicate: a key with that value exists already.
	ErrDuplicate = errors.New("api key exists")
)

// PermissionGeneral is the only permission the reference defines (never
// checked).
const PermissionGeneral = "GENERAL"

// ApiKey is a key the gateway may present.
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

// New is an active key with the reference's version and permission.
func New(key string, comments []string, now time.Time) *ApiKey {
	return &ApiKey{Key: key, Version: 1, Permissions: []string{PermissionGeneral}, Comments: comments, Status: true, CreatedAt: now, UpdatedAt: now}
}
