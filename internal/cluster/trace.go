package cluster

import "sync/atomic"

// tracer, when set (benchmarks, through export_test.go), is told each time
// a call passes a phase of its way through etcd: "call", "dispatched",
// "seen", "claimed", "ran", "written", "answered". It costs one atomic load
// per phase when unset.
var tracer atomic.Pointer[func(node, phase string)]

func trace(node, phase string) {
	if t := tracer.Load(); t != nil {
		(*t)(node, phase)
	}
}
