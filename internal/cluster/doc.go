// Package cluster runs the steps of a reprise run on agents: processes that
// sit inside a zone (beside the hypervisor, the backup vault, the zone's
// machines) and take that zone's steps through etcd. It has two sides.
//
// The coordinator side is Dispatcher, a step.Host: the engine's scheduler
// calls it as it calls the local plugin host, and it routes each call of a
// node whose zone is served by agents to etcd as a work item; the others run
// in the coordinator's own plugin host. The agent side is Agent: it
// registers under a lease, takes the calls offered to it and claims those
// of its zone written unclaimed (at most its slots at a time), runs them
// through its own local plugin host and writes their events and results
// back. Elect is the coordinators' leader election per graph.
//
// Keys, under the state URL's prefix ROOT (see the Keys type):
//
//	ROOT/agents/NAME                    the agent's registration (its lease)
//	ROOT/work/runs/RUN/o/AGENT/ID       an offer batch: calls claimed for AGENT (its lease)
//	ROOT/work/runs/RUN/b/ID             a result batch: AGENT's answers to one offer batch
//	ROOT/work/runs/RUN/x/AGENT/CALL     a call withdrawn from AGENT (its lease)
//	ROOT/work/runs/RUN/n/NODE/item      a call written unclaimed, for any agent of its zone
//	ROOT/work/runs/RUN/n/NODE/claim     the agent that claimed it (its lease)
//	ROOT/work/runs/RUN/n/NODE/ev/…      events streamed while it runs
//	ROOT/work/runs/RUN/n/NODE/result    the result of an unclaimed call, fenced by its claim
//	ROOT/work/runs/RUN/refused/NODE-REV a late result refused (journaled)
//	ROOT/work/graphs/HASH/N             the run's graph (HASH: its source's), in chunks: the
//	                                    source, or its JSON rendition (count key "N json SHA256")
//	ROOT/work/graphs/HASH.plugins       its plugins section and limits, for agents to start
//	                                    their zone's plugins while they parse the graph (not
//	                                    covered by the hash: checked against the parsed graph
//	                                    before a step uses the host, warm.go)
//	ROOT/work/writes/W/N/…              markers of a coordinator's writes: a write sent again after
//	                                    its answer was lost is not applied twice (writer.go)
//	ROOT/leader/GRAPH                   the coordinators' election
//
// Most calls are offered (offer.go): the coordinator claims the calls it
// sends in one transaction for the live agents of their zones with free
// slots, one offer batch per agent, under that agent's lease. The agent
// writes the results of one batch together and deletes the batch with its
// last results. A call no agent can take now is written unclaimed, and the
// first agent of its zone with a free slot claims it with a compare-and-swap
// transaction.
//
// Fencing: an offer batch (or a claim) lives under the agent's lease, so it
// disappears when the agent dies or loses etcd; its create revision is the
// token of its calls. A result is written only if the batch (or claim)
// still exists with that revision (one transaction), so a late result from
// an agent whose calls were taken over can never be applied: it is written
// aside as refused, and the coordinator journals it. A call whose batch (or
// claim) disappears before its result is "left running by lost agent N":
// journaled, and given to another agent with CheckFirst, so that it asks
// Check before restoring again, as resume does.
//
// Versions: an agent's registration, and every item and offer batch a
// coordinator writes, carry ProtocolVersion; neither side takes the
// other's work across versions (protocol.go).
//
// Secrets never travel through etcd: a work item carries the node's request
// without its resolved configuration, and the agent resolves the node's
// `with` from the graph, with its own environment.
package cluster
