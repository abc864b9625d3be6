package main

import "syscall"

// programProcAttr ties the program to this host: if the host dies (even by SIGKILL), the kernel sends
// the program SIGKILL.
func programProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
