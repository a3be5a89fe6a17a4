package cluster

// SetTracer makes f see each phase of each call (nil: none).
func SetTracer(f func(node, phase string)) {
	if f == nil {
		tracer.Store(nil)
		return
	}
	tracer.Store(&f)
}
