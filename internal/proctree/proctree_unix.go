//go:build unix

// Package proctree finds and ends the processes of a session (Linux /proc):
// the plugin host ends a plugin's whole tree with it, and a plugin ends
// what its steps left behind when its host has gone.
package proctree

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// KillSession sends SIGKILL to the process group sid and to every process
// of session (or process group) sid but the calling process, a few rounds
// to catch processes forked meanwhile.
func KillSession(sid int) {
	if sid <= 1 {
		return
	}
	self := os.Getpid()
	for round := 0; round < 5; round++ {
		if sid != self {
			_ = syscall.Kill(-sid, syscall.SIGKILL)
		}
		found := 0
		for _, p := range Members(sid) {
			if p != self {
				_ = syscall.Kill(p, syscall.SIGKILL)
				found++
			}
		}
		if found == 0 {
			return
		}
	}
}

// Members lists the live (not zombie) processes whose session or process
// group is sid. Without /proc it finds nothing.
func Members(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold spaces and ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		sess, _ := strconv.Atoi(f[3])
		if sess == sid || pgrp == sid {
			out = append(out, pid)
		}
	}
	return out
}

// SessionLeader reports whether the calling process leads its session
// (Linux /proc; false without it).
func SessionLeader() bool {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 {
		return false
	}
	sid, err := strconv.Atoi(f[3])
	return err == nil && sid == os.Getpid()
}
