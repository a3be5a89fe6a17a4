// Command hospital-sim is the simulated hospital behind the reprise example
// graph (examples/hospital/graph.yaml): every exec step of the graph calls
// one of its subcommands, which restores or checks something real under the
// work folder and exits non-zero when it is wrong. Run it from
// examples/hospital (reprise's exec plugin does). See README.md there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/reprise-si/reprise/examples/hospital/internal/sim"
)

const usage = `usage: hospital-sim COMMAND [ARGS]

steps (each appends "NODE ATTEMPT" to work/ledger when run by reprise):
  restore NAME                        restore NAME's archive, verify its manifest, check it
  start APP                           start APP's service on 127.0.0.1 (detached), wait until healthy
  hl7 --type T --from A --to B        send an HL7 v2 test message A -> EAI -> B over MLLP, check ACK and B's API
  hprim --from A --to B               HPRIM results file A -> B, every result checked
  worklist --from A --to B            DICOM worklist A -> B, studies matched
  transfer --from A --to B            batch flow A -> B (or hr -> ad reconciliation), counts checked
  reentry NAME                        type paper records back in, counts checked
  reconnect                           open the firewall to the partners, last
checks (change nothing):
  verify NAME | probe APP | reconnect --check
other:
  serve APP | stop | ports

environment: HOSPITAL_WORK (work), HOSPITAL_BACKUPS (backups), HOSPITAL_SEED (seed),
HOSPITAL_PORT_BASE (17100: HTTP on base+1..19, MLLP on base+51..69, 127.0.0.1 only)
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hospital-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	env, err := sim.EnvFromOS()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	typ := fs.String("type", "", "HL7 message type, e.g. ADT^A01")
	from := fs.String("from", "", "sending application")
	to := fs.String("to", "", "receiving application")
	check := fs.Bool("check", false, "check only, change nothing")
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	arg := func() (string, error) {
		if fs.NArg() != 1 {
			return "", fmt.Errorf("%s: want exactly one name, got %q", cmd, fs.Args())
		}
		return fs.Arg(0), nil
	}
	action := map[string]bool{"restore": true, "start": true, "hl7": true, "hprim": true, "worklist": true, "transfer": true, "reentry": true, "reconnect": !*check}
	if action[cmd] {
		if err := ledger(env); err != nil {
			return err
		}
	}
	w := os.Stdout
	var out sim.Outputs
	switch cmd {
	case "restore", "verify":
		name, err := arg()
		if err != nil {
			return err
		}
		if cmd == "verify" {
			return sim.Verify(w, env, name)
		}
		out, err = sim.Restore(w, env, name)
		if err != nil {
			return err
		}
	case "start", "probe", "serve":
		name, err := arg()
		if err != nil {
			return err
		}
		app, err := sim.FindApp(name)
		if err != nil {
			return err
		}
		switch cmd {
		case "serve":
			return sim.Run(ctx, env, name)
		case "probe":
			h, err := sim.ProbeCurrent(ctx, env, app)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s: healthy (pid %d), %d files verified\n", app.ID, h.Pid, h.Files)
			out = sim.Outputs{"url": env.URL(app), "mllp": env.MLLPAddr(app), "pid": fmt.Sprint(h.Pid)}
		default:
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if out, err = sim.Start(ctx, w, env, self, app); err != nil {
				return err
			}
		}
	case "hl7", "hprim", "worklist", "transfer":
		if *from == "" || *to == "" || (cmd == "hl7" && *typ == "") {
			return fmt.Errorf("%s: --from and --to are required (and --type for hl7)", cmd)
		}
		switch cmd {
		case "hl7":
			out, err = sim.HL7Check(ctx, w, env, *typ, *from, *to)
		case "hprim":
			out, err = sim.HPRIMCheck(ctx, w, env, *from, *to)
		case "worklist":
			out, err = sim.WorklistCheck(ctx, w, env, *from, *to)
		default:
			out, err = sim.Transfer(ctx, w, env, *from, *to)
		}
		if err != nil {
			return err
		}
	case "reentry":
		name, err := arg()
		if err != nil {
			return err
		}
		if out, err = sim.Reentry(ctx, w, env, name); err != nil {
			return err
		}
	case "reconnect":
		if out, err = sim.Reconnect(ctx, w, env, *check); err != nil {
			return err
		}
	case "stop":
		return sim.StopAll(w, env)
	case "ports":
		for _, a := range sim.Apps {
			fmt.Fprintf(w, "%-15s http://%s  mllp://%s  %s\n", a.ID, env.HTTPAddr(a), env.MLLPAddr(a), a.Title)
		}
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	return sim.WriteOutputs(out)
}

// ledger appends "NODE ATTEMPT" to work/ledger when run as a reprise step,
// so that demo-resume.sh can prove no completed step ran twice.
func ledger(env sim.Env) error {
	node := os.Getenv("REPRISE_NODE")
	if node == "" {
		return nil
	}
	if err := os.MkdirAll(env.Work, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(env.Ledger(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	attempt := strings.TrimSpace(os.Getenv("REPRISE_ATTEMPT"))
	if attempt == "" {
		attempt = "?"
	}
	if _, err := fmt.Fprintf(f, "%s %s\n", node, attempt); err != nil {
		f.Close()
		return fmt.Errorf("ledger: %w", err)
	}
	return f.Close()
}
