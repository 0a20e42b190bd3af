//go:build !race

package resilience

// raceEnabled reports a test binary built with -race (the table says so:
// the gateway and the load generator run in this process).
const raceEnabled = false
