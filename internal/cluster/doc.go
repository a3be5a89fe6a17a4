// Package cluster runs the steps of a reprise run on agents: processes that
// sit inside a zone (beside the hypervisor, the backup vault, the zone's
// machines) and take that zone's steps through etcd. It has two sides.
//
// The coordinator side is Dispatcher, a step.Host: the engine's scheduler
// calls it as it calls the local plugin host, and it routes each call of a
// node whose zone is served by agents to etcd as a work item; the others run
// in the coordinator's own plugin host. The agent side is Agent: it
// registers under a lease, claims the work items of its zone with a
// compare-and-swap transaction (at most its slots at a time), runs them
// through its own local plugin host and writes their events and results
// back. Elect is the coordinators' leader election per graph.
//
// Keys, under the state URL's prefix ROOT (see the Keys type):
//
//	ROOT/agents/NAME                    the agent's registration (its lease)
//	ROOT/work/runs/RUN/n/NODE/item      a call waiting for or run by an agent
//	ROOT/work/runs/RUN/n/NODE/claim     the agent that claimed it (its lease)
//	ROOT/work/runs/RUN/n/NODE/ev/…      events streamed while it runs
//	ROOT/work/runs/RUN/n/NODE/result    the call's result, fenced by the claim
//	ROOT/work/runs/RUN/refused/NODE-REV a late result refused (journaled)
//	ROOT/work/graphs/HASH/N             the run's graph, in chunks
//	ROOT/leader/GRAPH                   the coordinators' election
//
// Fencing: a claim is created with the agent's lease, so it disappears when
// the agent dies or loses etcd; its create revision is the claim's token. A
// result is written only if the claim still exists with that revision (one
// transaction), so a late result from an agent whose claim was taken over
// can never be applied: it is written aside as refused, and the coordinator
// journals it. A call whose claim disappears before its result is "left
// running by lost agent N": journaled, and put back with CheckFirst, so that
// the next agent asks Check before restoring again, as resume does.
//
// Secrets never travel through etcd: a work item carries the node's request
// without its resolved configuration, and the agent resolves the node's
// `with` from the graph, with its own environment.
package cluster
