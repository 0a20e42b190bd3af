package embedded

import "syscall"

// childProcAttr makes the kernel SIGKILL the redis-server child when its
// parent dies, even by SIGKILL or a crash, so a killed test binary or devstack
// never leaves an orphan Redis holding a port.
//
// Caveat: Linux delivers Pdeathsig when the parent *thread* that forked the
// child exits. The Go runtime only ends threads when a goroutine locked with
// runtime.LockOSThread exits without unlocking, which this platform does not
// do; Stop/Close remain the normal way to end the child.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// freeBytes reports the space available to unprivileged users on the file
// system holding path.
func freeBytes(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
