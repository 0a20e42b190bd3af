// Package tests exercises auth_service end to end against real
// infrastructure (devkit/testinfra: the embedded FerretDB store, Redis,
// NATS): HTTP through the real engine, NATS through a real server, two
// replicas for cache coherence. Nothing of the service is mocked.
package tests

import (
	"os"
	"testing"

	"blogplatform/devkit/indexcheck"
	"blogplatform/devkit/testinfra"
)

var env *testinfra.Env

// TestMain runs the package's tests, then checks every query the replicas
// sent against the declared indexes (see indexcoverage_test.go).
func TestMain(m *testing.M) {
	os.Exit(testinfra.RunWith(m, &env, testinfra.Options{AfterTests: func(e *testinfra.Env, code int) int {
		return indexcheck.Verify(code, e.Queries, declaredIndexes(), unindexedQueries)
	}}))
}
