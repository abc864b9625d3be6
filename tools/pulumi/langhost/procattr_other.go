//go:build !linux

package main

import "syscall"

// programProcAttr: no parent-death signal outside Linux; the host still stops its programs before it
// exits when the engine is gone (engine.go).
func programProcAttr() *syscall.SysProcAttr {
	return nil
}
