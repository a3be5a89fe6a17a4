package etcdconn

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		eps    []string
		prefix string
		err    string // substring of the error; "" for success
	}{
		{name: "one endpoint", in: "etcd://127.0.0.1:2379/reprise", eps: []string{"127.0.0.1:2379"}, prefix: "reprise"},
		{name: "three endpoints, nested prefix", in: "etcd://a:2379,b:2379,c.example:32379/ght-nord/reprise_1.0",
			eps: []string{"a:2379", "b:2379", "c.example:32379"}, prefix: "ght-nord/reprise_1.0"},
		{name: "ipv6", in: "etcd://[::1]:2379/r", eps: []string{"[::1]:2379"}, prefix: "r"},
		{name: "bad scheme", in: "http://127.0.0.1:2379/reprise", err: `scheme "http": want "etcd"`},
		{name: "scheme case", in: "ETCD://127.0.0.1:2379/reprise", err: `scheme "ETCD"`},
		{name: "no prefix", in: "etcd://127.0.0.1:2379", err: "no key prefix"},
		{name: "empty prefix", in: "etcd://127.0.0.1:2379/", err: "no key prefix"},
		{name: "double slash", in: "etcd://127.0.0.1:2379/a//b", err: "empty segment"},
		{name: "leading slash", in: "etcd://127.0.0.1:2379//a", err: "empty segment"},
		{name: "trailing slash", in: "etcd://127.0.0.1:2379/a/", err: "empty segment"},
		{name: "dot dot", in: "etcd://127.0.0.1:2379/a/../b", err: `segment ".."`},
		{name: "bad character", in: "etcd://127.0.0.1:2379/a b", err: `character ' '`},
		{name: "query", in: "etcd://127.0.0.1:2379/a?x=1", err: "queries"},
		{name: "long prefix", in: "etcd://h:1/" + strings.Repeat("a", 129), err: "at most 128"},
		{name: "no endpoint", in: "etcd:///reprise", err: "no endpoint"},
		{name: "no port", in: "etcd://127.0.0.1/reprise", err: `endpoint "127.0.0.1": want HOST:PORT`},
		{name: "bad port", in: "etcd://h:99999/reprise", err: `port "99999"`},
		{name: "port not a number", in: "etcd://h:abc/reprise", err: `port "abc"`},
		{name: "no host", in: "etcd://:2379/reprise", err: "no host"},
		{name: "empty endpoint", in: "etcd://a:1,,b:2/reprise", err: `endpoint "": empty`},
		{name: "duplicate endpoint", in: "etcd://a:1,a:1/reprise", err: "given twice"},
		{name: "user info", in: "etcd://u@a:1/reprise", err: `host "u@a"`},
		{name: "no scheme", in: "reprise.db", err: "want etcd://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse(tt.in)
			if tt.err != "" {
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("Parse(%q) = %v, %v; want *UsageError containing %q", tt.in, u, err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.in) {
					t.Fatalf("Parse(%q) error %q; want it to name the value and contain %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !slices.Equal(u.Endpoints, tt.eps) || u.Prefix != tt.prefix {
				t.Fatalf("Parse(%q) = %v %q; want %v %q", tt.in, u.Endpoints, u.Prefix, tt.eps, tt.prefix)
			}
			if u.String() != tt.in {
				t.Errorf("String() = %q, want %q", u.String(), tt.in)
			}
			if got, want := u.Key("runs", "x"), "/"+tt.prefix+"/runs/x"; got != want {
				t.Errorf("Key = %q, want %q", got, want)
			}
		})
	}
}

func TestIsURL(t *testing.T) {
	for in, want := range map[string]bool{
		"etcd://h:1/p":     true,
		"http://h:1/p":     true,
		"etcd+tls://h:1/p": true,
		"reprise.db":       false,
		"/var/lib/r.db":    false,
		"./a://b":          false,
		"C:/x":             false,
		"://x":             false,
	} {
		if got := IsURL(in); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", in, got, want)
		}
	}
}
