package tests

import "blogplatform/devkit/indexcheck"

// unindexedQueries are the queries run without an index on purpose; every
// other query the apps of this package send must be served by an index
// model.Indexes declares (checked in TestMain).
var unindexedQueries = []indexcheck.Allow{
	// Start-up backfills: the first batch of each walks the blogs in _id
	// order looking for documents without the field (later batches resume
	// after the last _id, a range the _id index serves). Each runs once per
	// database; an index on a field only to find where it is missing would
	// cost every write forever.
	{Collection: "blogs", Command: "find", Filter: "{$or: [{terms: null}, {titleTerms: null}, {descriptionTerms: null}]}", Sort: "{_id: 1}",
		Why: "terms backfill, once per database, in _id order"},
	{Collection: "blogs", Command: "find", Filter: "{authorProfile: null}", Sort: "{_id: 1}",
		Why: "author profile backfill, once per database, in _id order"},
	// The migration runner's own collection holds one record per step and
	// the newest lease of each of its two locks (older leases are deleted):
	// a handful of documents, read at start-up.
	{Collection: "migrations", Command: "find", Filter: "{lock: $exists}", Sort: "{_id: 1}", Why: "migration records, a handful of documents"},
	{Collection: "migrations", Command: "find", Filter: "{lock: eq}", Sort: "{epoch: -1}", Why: "migration lease, a handful of documents"},
	{Collection: "migrations", Command: "delete", Filter: "{epoch: $lt, lock: eq}", Why: "old migration leases, a handful of documents"},
	// testkit.App.CountBlogs (tests only) counts the whole collection.
	{Collection: "blogs", Command: "aggregate", Filter: "{}", Why: "tests' own count of the collection; no route counts"},
}
