// Package embedded runs the platform's infrastructure inside the current
// process (or, for Redis, as a child process) so that tests and the local
// platform need neither Docker nor a MongoDB installation:
//
//   - [StartStore]: FerretDB v1 with its SQLite backend, speaking the MongoDB
//     wire protocol on a TCP port. Services use the ordinary mongo-driver.
//   - [StartNATS]: the real NATS server (nats-server/v2) on a TCP port,
//     optionally with per-service users and subject permissions.
//   - [StartRedis]: the real redis-server binary when it is on PATH, started
//     as a child process; otherwise the miniredis stand-in. [Redis.Kind] says
//     which one is running, because the stand-in is not the real thing.
//
// Everything listens on the network (127.0.0.1 by default), so a service is
// configured exactly as it would be against production infrastructure: only
// the URLs differ.
//
// Every Start function may be called any number of times in one process; each
// call returns an independent server with its own port and its own data. The
// only package-level state is a mutex that serialises ferretdb.New (see
// [StartStore]).
//
// This package must not import "testing": the local platform uses it too.
// Test helpers live in blogplatform/devkit/testinfra.
package embedded
