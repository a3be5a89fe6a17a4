package host

import "context"

// UsesSession reports whether plugin name's running process is called
// through a Session stream (false: one RPC per call). It starts the plugin.
func UsesSession(ctx context.Context, h *Host, name string) (bool, error) {
	p, err := h.get(ctx, name)
	if err != nil {
		return false, err
	}
	return p.sess != nil, nil
}
