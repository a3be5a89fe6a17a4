package control

import "github.com/reprise-si/reprise/engine/state"

// Operators returns the dashboard's operators, from the file or through
// the socket of the process that holds it.
func (r *Reader) Operators() ([]state.Operator, error) {
	if r.st != nil {
		return r.st.Operators()
	}
	ops, err := r.c.Operators()
	if r.fallback(err) {
		return r.st.Operators()
	}
	return ops, err
}
