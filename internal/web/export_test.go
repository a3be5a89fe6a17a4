package web

// Parses reports how many graph snapshots s parsed so far.
func Parses(s *Server) uint64 {
	s.graphs.mu.Lock()
	defer s.graphs.mu.Unlock()
	return s.graphs.parses
}
