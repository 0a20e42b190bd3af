package platform

import "syscall"

// childProcAttr makes the kernel send SIGKILL to a replica when the platform
// process dies, even by SIGKILL or a crash, so no replica outlives it holding
// a port. (Linux delivers Pdeathsig when the forking thread exits; the Go
// runtime only ends a thread when a goroutine locked to it exits, which this
// package never does.) Each replica also gets its own process group, so a
// Ctrl-C in the terminal reaches only the platform, which then stops the
// replicas in order instead of all of them receiving SIGINT at once.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
