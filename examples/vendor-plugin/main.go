// Command reprise-plugin-pacs is an example reprise plugin for a vendor
// application: it restores an imaging archive (PACS) from a backup folder,
// checking every study file against a SHA-256 manifest. See README.md for
// the tutorial "write a plugin for your application".
package main

import "github.com/reprise-si/reprise/plugins/sdk"

func main() {
	sdk.Serve(&Plugin{})
}
