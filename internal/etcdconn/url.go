// Package etcdconn reads a reprise state URL (etcd://HOST:PORT[,…]/PREFIX),
// builds the client TLS settings (flags, else the ETCDCTL_* variables) and
// dials the cluster, failing within the dial timeout with an error that
// names the endpoints when no member answers. The state backend on etcd and
// the agents share it, so that every command reads a URL the same way.
package etcdconn

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Scheme is the scheme of a state URL.
const Scheme = "etcd"

// URL is a parsed state URL: the cluster's client endpoints and the key
// prefix under which one reprise installation keeps everything.
type URL struct {
	// Endpoints are the members' client addresses, HOST:PORT, as given.
	Endpoints []string
	// Prefix is the key prefix without its slashes, e.g. "ght/reprise".
	Prefix string
}

// String returns the URL as the user writes it.
func (u URL) String() string {
	return Scheme + "://" + strings.Join(u.Endpoints, ",") + "/" + u.Prefix
}

// Root returns the key every key of this installation starts with:
// "/PREFIX/". The trailing slash keeps prefix "a" apart from prefix "ab".
func (u URL) Root() string { return "/" + u.Prefix + "/" }

// Key returns Root followed by elems joined with "/".
func (u URL) Key(elems ...string) string { return u.Root() + strings.Join(elems, "/") }

// UsageError is returned by Parse for a state URL that is not well formed.
// The command line exits 2 on it.
type UsageError struct {
	Value  string // the URL as given
	Reason string // what is wrong and what is allowed
}

// Error names the value and the problem.
func (e *UsageError) Error() string {
	return fmt.Sprintf("state URL %q: %s", e.Value, e.Reason)
}

// IsURL reports whether a --state value is meant as a URL (it has a
// scheme: "etcd://…", or any "x://…" that Parse will refuse by name) rather
// than the path of a state file.
func IsURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, r := range s[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// maxPrefix bounds the prefix so that every key stays short.
const maxPrefix = 128

// Parse reads etcd://HOST:PORT[,HOST:PORT…]/PREFIX. The prefix is one or
// more segments of letters, digits, '-', '_' and '.', separated by single
// slashes ("reprise", "ght-nord/reprise"). Every problem gives *UsageError.
func Parse(s string) (URL, error) {
	bad := func(format string, args ...any) (URL, error) {
		return URL{}, &UsageError{Value: s, Reason: fmt.Sprintf(format, args...)}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !IsURL(s) {
		return bad("want etcd://HOST:PORT[,HOST:PORT…]/PREFIX")
	}
	if scheme != Scheme {
		return bad("scheme %q: want %q (etcd://HOST:PORT[,HOST:PORT…]/PREFIX)", scheme, Scheme)
	}
	hosts, prefix, ok := strings.Cut(rest, "/")
	if !ok || prefix == "" {
		return bad("no key prefix: want etcd://HOST:PORT[,HOST:PORT…]/PREFIX, e.g. etcd://10.0.0.1:2379/reprise")
	}
	if strings.ContainsAny(prefix, "?#") {
		return bad("prefix %q: queries and fragments are not allowed", prefix)
	}
	if err := checkPrefix(prefix); err != nil {
		return bad("prefix %q: %v", prefix, err)
	}
	if hosts == "" {
		return bad("no endpoint: want HOST:PORT[,HOST:PORT…] before the prefix")
	}
	var eps []string
	seen := map[string]bool{}
	for _, ep := range strings.Split(hosts, ",") {
		if err := checkEndpoint(ep); err != nil {
			return bad("endpoint %q: %v", ep, err)
		}
		if seen[ep] {
			return bad("endpoint %q given twice", ep)
		}
		seen[ep] = true
		eps = append(eps, ep)
	}
	return URL{Endpoints: eps, Prefix: prefix}, nil
}

func checkPrefix(p string) error {
	if len(p) > maxPrefix {
		return fmt.Errorf("%d bytes, want at most %d", len(p), maxPrefix)
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return errors.New("empty segment: want segments separated by single slashes, e.g. ght/reprise")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("segment %q not allowed", seg)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("character %q not allowed (want letters, digits, '-', '_', '.' and '/')", r)
			}
		}
	}
	return nil
}

func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("empty (want HOST:PORT)")
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %v", err)
	}
	if host == "" {
		return errors.New("no host (want HOST:PORT)")
	}
	if strings.ContainsAny(host, "/@ ") {
		return fmt.Errorf("host %q: not a host name or address", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}
