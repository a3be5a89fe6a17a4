//go:build !unix

package proctree

// KillSession does nothing where sessions do not exist.
func KillSession(int) {}

// Members finds nothing where sessions do not exist.
func Members(int) []int { return nil }

// SessionLeader is false where sessions do not exist.
func SessionLeader() bool { return false }
