package control

// SetWantUID makes c expect a server running as uid (tests only).
func SetWantUID(c *Client, uid int) { c.wantUID = uid }
