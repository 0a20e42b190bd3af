// Package tests drives blog_service through its HTTP engine against the
// embedded store, NATS and Redis of devkit/testinfra, with a fake
// auth_service on the real NATS server.
package tests

import (
	"os"
	"testing"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/testinfra"
)

var (
	env      *testinfra.Env
	redisDBs = testkit.NewRedisDBs()
)

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

// newApp starts an app and a normal fake auth on the shared infrastructure.
func newApp(t *testing.T) (*testkit.App, *testkit.FakeAuth) {
	t.Helper()
	auth := testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	return testkit.NewApp(t, env, redisDBs, nil), auth
}
