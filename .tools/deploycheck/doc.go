// Package deploycheck holds tests of the deployment files that cannot be run
// here (no Docker engine): the two compose files, the Dockerfiles, the
// .dockerignore files, the NATS server configuration and the Mongo init
// scripts. The tests load them with the same libraries Docker Compose and
// nats-server use, and check the properties the platform relies on.
package deploycheck
