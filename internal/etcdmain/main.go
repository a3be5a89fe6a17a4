// Command etcdmain is the etcd server of go.etcd.io/etcd/server/v3, built
// from the module this repository pins (the module itself cannot be
// installed with `go install` because of its replace directives). The
// Makefile builds it as bin/etcd for `make demo-cluster`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
