package graphs

// closest returns the candidate nearest to s by edit distance, or "" when
// none is near enough (a bound that grows with the length of s, at most 4).
// Candidates further apart in length than the bound are skipped without
// computing a distance, and each distance stops early past the bound.
func closest(s string, candidates []string) string {
	bound := 1 + len(s)/4
	if bound > 4 {
		bound = 4
	}
	best, bestD := "", bound+1
	var row []int
	for _, c := range candidates {
		if c == s || abs(len(c)-len(s)) >= bestD {
			continue
		}
		// Bounded at bestD (not bestD-1): a tie must be a real distance,
		// not the "more than the bound" answer.
		dist := boundedLevenshtein(s, c, bestD, &row)
		if dist < bestD || (dist == bestD && c < best) {
			best, bestD = c, dist
		}
	}
	if bestD > bound {
		return ""
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// boundedLevenshtein returns the edit distance of a and b (bytes), or
// max+1 once it is sure to be more than max. row is scratch space.
func boundedLevenshtein(a, b string, max int, row *[]int) int {
	if cap(*row) < len(b)+1 {
		*row = make([]int, len(b)+1)
	}
	r := (*row)[:len(b)+1]
	for j := range r {
		r[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := r[0]
		r[0] = i
		rowMin := r[0]
		for j := 1; j <= len(b); j++ {
			cur := r[j]
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := prev + cost
			if r[j]+1 < v {
				v = r[j] + 1
			}
			if r[j-1]+1 < v {
				v = r[j-1] + 1
			}
			r[j] = v
			prev = cur
			if v < rowMin {
				rowMin = v
			}
		}
		if rowMin > max {
			return max + 1
		}
	}
	if r[len(b)] > max {
		return max + 1
	}
	return r[len(b)]
}

// Suggest returns the candidate nearest to s (a mistyped node id), or ""
// when none is near enough to be what was meant.
func Suggest(s string, candidates []string) string { return closest(s, candidates) }
