package scan

import "errors"

// ErrMissingCommand is returned by Compile when a scanner's command (yara,
// clamscan) is not installed.
var ErrMissingCommand = errors.New("scanner command not found")

// ErrBadSpec is returned by Compile for a scanner declaration that cannot be
// used (unknown type, missing rules, bad hash list, out-of-range threshold).
var ErrBadSpec = errors.New("bad scanner")
