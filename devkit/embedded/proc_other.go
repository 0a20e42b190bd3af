//go:build !linux

package embedded

import "syscall"

// childProcAttr: Pdeathsig is Linux-only; elsewhere the child is only ended by
// Stop/Close, so an abruptly killed parent can leave redis-server running.
func childProcAttr() *syscall.SysProcAttr { return nil }

// freeBytes: /dev/shm is a Linux convention; elsewhere ephemeral stores use
// the OS temp directory.
func freeBytes(string) (uint64, bool) { return 0, false }
