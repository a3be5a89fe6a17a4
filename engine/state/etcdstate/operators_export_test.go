package etcdstate

// LoseOperatorAnswers makes etcd's answer to changes of the operators made
// through s lost while lose returns true (it is called once per committed
// change, after the commit): the attempt fails as one that timed out and
// is retried. The returned func removes the hook.
func LoseOperatorAnswers(s *Store, lose func() bool) func() {
	f := func(st *Store) bool { return st == s && lose() }
	loseAnswer.Store(&f)
	return func() { loseAnswer.Store(nil) }
}
