package tests

import (
	"time"

	apikeystore "blogplatform/auth_service/api/apikey/store"
	keystorestore "blogplatform/auth_service/api/keystore/store"
	userstore "blogplatform/auth_service/api/user/store"
	"blogplatform/chassis/mongox"
	"blogplatform/devkit/indexcheck"
)

// declaredIndexes are the indexes the service ensures at start-up (the
// refresh validity only sets the TTL of the expiry indexes).
func declaredIndexes() []mongox.Index {
	ix := append(userstore.Indexes(), keystorestore.Indexes(time.Hour)...)
	return append(ix, apikeystore.Indexes()...)
}

// unindexedQueries are the queries the service runs without an index on
// purpose; every other query of the package's tests must be served by a
// declared index (checked in TestMain).
var unindexedQueries = []indexcheck.Allow{
	// Start-up email normalisation: finds the emails not in normal form and
	// the accounts whose emails differ only by letter case. A regular
	// expression that is not a case-sensitive prefix walks the whole email
	// index; it runs once per start, as the reference's data is migrated.
	{Collection: "users", Command: "find", Filter: "{email: $regex}", Why: "email normalisation at start-up"},
	{Collection: "users", Command: "find", Filter: "{email: $options,$regex}", Why: "email normalisation at start-up (case-insensitive match)"},
	// The conflicts found by that migration: a handful of documents, and the
	// stale ones are every one not found again.
	{Collection: "email_conflicts", Command: "delete", Filter: "{_id: $nin}", Why: "email conflicts, a handful of documents"},
	// The migration runner's own collection holds one record per step and
	// the newest lease of each of its two locks (older leases are deleted):
	// a handful of documents, read at start-up.
	{Collection: "migrations", Command: "find", Filter: "{lock: $exists}", Sort: "{_id: 1}", Why: "migration records, a handful of documents"},
	{Collection: "migrations", Command: "find", Filter: "{lock: eq}", Sort: "{epoch: -1}", Why: "migration lease, a handful of documents"},
	{Collection: "migrations", Command: "delete", Filter: "{epoch: $lt, lock: eq}", Why: "old migration leases, a handful of documents"},
}
