// Command reprise rebuilds an information system from a dependency graph,
// running each node's restore step through an out-of-process plugin.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:]))
}
