// Package tests exercises auth_service end to end against real
// infrastructure (devkit/testinfra: the embedded FerretDB store, Redis,
// NATS): HTTP through the real engine, NATS through a real server, two
// replicas for cache coherence. Nothing of the service is mocked.
package tests

import (
	"os"
	"testing"

	"blogplatform/devkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }
