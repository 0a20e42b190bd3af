//go:build !linux

package platform

import "syscall"

// childProcAttr: without Linux's Pdeathsig, replicas are stopped by
// Platform.Stop only; a killed platform may leave them running.
func childProcAttr() *syscall.SysProcAttr { return nil }
