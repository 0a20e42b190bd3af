// Package chassistest holds the chassis tests that need a live server: the
// embedded NATS server, store and Redis of devkit. They live in the devkit
// module so that the chassis module (product code) requires none of those
// servers; each folder tests the chassis package of the same name through
// its exported API. Tests that need no server stay next to their package.
package chassistest
