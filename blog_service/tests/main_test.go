// Package tests drives blog_service through its HTTP engine against the
// embedded store, NATS and Redis of devkit/testinfra, with a fake
// auth_service on the real NATS server.
package tests

import (
	"os"
	"testing"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/blog_service/model"
	"blogplatform/devkit/indexcheck"
	"blogplatform/devkit/testinfra"
)

var (
	env      *testinfra.Env
	redisDBs = testkit.NewRedisDBs()
)

// TestMain runs the package's tests, then checks every query the apps sent
// against the declared indexes (see indexes_test.go).
func TestMain(m *testing.M) {
	os.Exit(testinfra.RunWith(m, &env, testinfra.Options{AfterTests: func(e *testinfra.Env, code int) int {
		return indexcheck.Verify(code, e.Queries, model.Indexes(), unindexedQueries)
	}}))
}

// newApp starts an app and a normal fake auth on the shared infrastructure.
func newApp(t *testing.T) (*testkit.App, *testkit.FakeAuth) {
	t.Helper()
	auth := testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	return testkit.NewApp(t, env, redisDBs, nil), auth
}
