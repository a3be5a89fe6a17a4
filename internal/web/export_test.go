package web

// Parses reports how many graph snapshots s parsed so far.
func Parses(s *Server) uint64 {
	s.graphs.mu.Lock()
	defer s.graphs.mu.Unlock()
	return s.graphs.parses
}

// Loads reports how many times s read a run for its pages.
func Loads(s *Server) uint64 {
	s.models.mu.Lock()
	defer s.models.mu.Unlock()
	return s.models.loads
}

// Warmed is closed when s's warm-up is over.
func Warmed(s *Server) <-chan struct{} { return s.warmed }
