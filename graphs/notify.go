package graphs

import (
	"fmt"
	"net/url"
	"strings"
)

// NotifyEvent names what a notification target wants to hear about.
type NotifyEvent string

// The events a `notify` target may ask for.
const (
	NotifyGateWaiting    NotifyEvent = "gate-waiting"     // a manual gate waits for approval
	NotifyNodeFailed     NotifyEvent = "node-failed"      // a node failed (after its retries)
	NotifyDeadlineAtRisk NotifyEvent = "deadline-at-risk" // a node's projected end passes its RTO
	NotifyDeadlineLate   NotifyEvent = "deadline-late"    // a node's RTO passed and it is not done
	NotifyRunFinished    NotifyEvent = "run-finished"     // the run ended: succeeded, failed or parked on gates
	NotifyRunInterrupted NotifyEvent = "run-interrupted"  // the run was stopped (signal) and may be resumed
	NotifyZoneCertified  NotifyEvent = "zone-certified"   // a trust zone was certified clean: the next one may start
)

// NotifyEvents lists every NotifyEvent.
var NotifyEvents = []NotifyEvent{NotifyGateWaiting, NotifyNodeFailed, NotifyDeadlineAtRisk, NotifyDeadlineLate,
	NotifyRunFinished, NotifyRunInterrupted, NotifyZoneCertified}

// Notify is one notification target of a graph (`notify:`): a webhook
// (a JSON POST, signed with HMAC-SHA256 when it has a secret) or a command
// (an SMS or radio gateway's CLI, given the JSON on stdin).
type Notify struct {
	Name    string   // shown in the journal ("" : webhook N / command N)
	Webhook string   // http or https URL
	Command []string // argv
	// Secret is the HMAC key as written: a `${secret:NAME}`,
	// `${secret:file:PATH}` or `${env:NAME}` placeholder resolved at each
	// delivery, never stored.
	Secret string
	Events []NotifyEvent
	Pos    Position
}

// Wants reports whether the target asked for ev.
func (n *Notify) Wants(ev NotifyEvent) bool {
	for _, e := range n.Events {
		if e == ev {
			return true
		}
	}
	return false
}

// Label names the target in messages: its name, else "webhook N" or
// "command N" (1-based, in file order).
func (n *Notify) Label(i int) string {
	if n.Name != "" {
		return n.Name
	}
	if n.Webhook != "" {
		return fmt.Sprintf("webhook %d", i+1)
	}
	return fmt.Sprintf("command %d", i+1)
}

var notifyFields = []string{"name", "webhook", "command", "secret", "events"}

// decodeNotify reads the `notify` list.
func (d *decoder) decodeNotify(v *value) {
	if v.kind != vSeq {
		d.typeErr(v, "", "notify", "a list of notification targets ({webhook or command, events})")
		return
	}
	for i := range v.items {
		item := &v.items[i]
		where := fmt.Sprintf("notify[%d]", i)
		n := Notify{Pos: item.pos}
		hasEvents, hasWebhook, hasCommand := false, false, false
		d.fields(item, "", where, notifyFields, func(key string, fv *value) {
			f := where + "." + key
			switch key {
			case "name":
				n.Name, _ = d.str(fv, "", f)
			case "webhook":
				hasWebhook = true
				s, ok := d.str(fv, "", f)
				if !ok {
					return
				}
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					d.add(fv.pos, "", f, s, ErrBadValue, "%s: bad URL %s (want http:// or https://HOST/…)", f, quoteShort(s))
					return
				}
				n.Webhook = s
			case "command":
				hasCommand = true
				if fv.kind != vSeq || len(fv.items) == 0 {
					d.typeErr(fv, "", f, "a non-empty list of strings (the program and its arguments)")
					return
				}
				for j := range fv.items {
					if s, ok := d.str(&fv.items[j], "", fmt.Sprintf("%s[%d]", f, j)); ok {
						n.Command = append(n.Command, s)
					}
				}
			case "secret":
				s, ok := d.str(fv, "", f)
				if !ok {
					return
				}
				if !strings.HasPrefix(s, "${secret:") && !strings.HasPrefix(s, "${env:") || !strings.HasSuffix(s, "}") {
					d.add(fv.pos, "", f, "[redacted]", ErrBadValue, "%s: want a ${secret:NAME}, ${secret:file:PATH} or ${env:NAME} placeholder, never the key itself", f)
					return
				}
				n.Secret = s
			case "events":
				hasEvents = true
				if fv.kind != vSeq || len(fv.items) == 0 {
					d.typeErr(fv, "", f, "a non-empty list of events")
					return
				}
				for j := range fv.items {
					s, ok := d.str(&fv.items[j], "", f)
					if !ok {
						continue
					}
					if !validNotifyEvent(s) {
						d.add(fv.items[j].pos, "", f, s, ErrBadValue, "%s: unknown event %s (want %s)", f, quoteShort(s), joinNotifyEvents())
						continue
					}
					n.Events = append(n.Events, NotifyEvent(s))
				}
			}
		})
		if item.kind != vMap {
			continue
		}
		if hasWebhook == hasCommand {
			d.add(item.pos, "", where, "", ErrSchema, "%s: want exactly one of webhook or command", where)
		}
		if !hasEvents {
			d.add(item.pos, "", where+".events", "", ErrSchema, "%s: missing events (want some of %s)", where, joinNotifyEvents())
		}
		d.g.Notify = append(d.g.Notify, n)
	}
}

func validNotifyEvent(s string) bool {
	for _, e := range NotifyEvents {
		if string(e) == s {
			return true
		}
	}
	return false
}

func joinNotifyEvents() string {
	s := make([]string, len(NotifyEvents))
	for i, e := range NotifyEvents {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}
