package main

import (
	"fmt"

	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// authorizeDirect decides whether an operator's command that no
// coordinator took (approve, certify, mark, retry: sendThroughCluster
// returned sent false) may be written to the state by this process, and
// returns the name it is journaled with. It makes the decision a
// coordinator makes (authorizeCommand), against the same operators:
//
//   - on an etcd state, every command is a remote action: once the state
//     has operators, it needs the token (REPRISE_TOKEN, REPRISE_TOKEN_FILE)
//     of one whose role allows it, and is journaled with that operator's
//     name (a --by naming someone else is refused); without operators,
//     cmd.By is journaled, as before;
//   - a state file is this machine's (0600, one writer, its control socket
//     0600 too): whoever may open it acts, and fileBy (the --by, or its
//     default) is journaled.
//
// A refusal exits 1 and says why, as a coordinator's does; a token file
// that cannot be read is a usage error (exit 2).
func authorizeDirect(statePath string, cmd cluster.Command, fileBy string) (string, error) {
	if !etcdconn.IsURL(statePath) {
		return fileBy, nil
	}
	token, err := operatorToken()
	if err != nil {
		return "", withCode(exitUsage, err)
	}
	st, err := openEtcd(statePath, true)
	if err != nil {
		return "", err
	}
	defer st.Close()
	by, err := authorizeCommand(st.Operators, &auth.Checker{Operators: st.Operators}, cmd, token)
	if err != nil {
		return "", fmt.Errorf("%s (no coordinator leads the run: written to etcd here): refused: %w", commandTarget(cmd), err)
	}
	if by == "" {
		return "", fmt.Errorf("%s: refused: it says nobody: the journal needs who asks (--by)", commandTarget(cmd))
	}
	return by, nil
}

// commandTarget names what cmd acts on, for messages: `approve node
// "gate" of run R`.
func commandTarget(cmd cluster.Command) string {
	if cmd.Zone != "" {
		return fmt.Sprintf("%s zone %q of run %s", cmd.Op, cmd.Zone, cmd.Run)
	}
	return fmt.Sprintf("%s node %q of run %s", cmd.Op, cmd.Node, cmd.Run)
}
