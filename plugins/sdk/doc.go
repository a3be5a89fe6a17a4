// Package sdk is what a vendor plugin imports to serve reprise restore steps.
//
// Implement Plugin (Describe and Restore), optionally Checker, Verifier and
// Validator (and PointLister, with PointStager, for a plugin that lists a
// node's restore points itself: `restore_points: {from: plugin}`), and call
// Serve from main:
//
//	func main() { sdk.Serve(&pacs.Plugin{}) }
//
// A plugin author never imports go-plugin, gRPC or the proto package; see
// examples/vendor-plugin for a complete plugin and its tests, and
// plugins/proto/README.md for the protocol underneath.
//
// The plugin runs as a separate process started by reprise; one process
// serves every node that uses it, with concurrent calls, so implementations
// must be safe for concurrent use. Serve answers the contract's optional
// Session stream too: reprise then sends every call through one stream,
// several calls' frames per message, which costs far less per call than a
// gRPC call each; nothing changes for the implementation.
//
// Request.DryRun asks to change nothing; Request.Drill says the run is a
// drill, an exercise on the real plan: restore into the exercise
// environment, never into production. A Checker that finds a node restored
// returns its Outputs too (what Restore would have set): after a crash, a
// node found restored without an output its dependents use is restored
// again.
//
// What happens on failure:
//   - Restore returns an error: the node's step failed with the error's
//     text; the engine retries it as the graph says. Waiting(…) instead parks
//     the node until an operator approves it.
//   - Restore, Check, Verify or Validate panics: that call fails ("plugin
//     panic: …", stack on stderr); the process and the other calls go on.
//   - The engine gives up on a call (node timeout, operator interrupt): the
//     call's context is cancelled. Stop, end what you started, return.
//   - The process dies (os.Exit, a panic in a goroutine of your own, a
//     signal): every call in flight fails with the exit status and the last
//     lines of stderr, and reprise starts the plugin again for the next call.
//   - reprise itself dies without ending the plugin: within a second every
//     call's context is cancelled, and the process exits once they have
//     returned (at most 10 seconds).
//   - Started by hand, outside reprise, the binary explains that it is a
//     plugin and exits with status 1.
package sdk
