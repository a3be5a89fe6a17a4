/*
Graph file format, version 1 (FORMAT.md has the same for users; PLAN_JSON.md
the schema of `reprise plan --json`; BENCH.md the speed and memory figures).

A graph file is YAML or JSON with the same schema (docs/ARCHITECTURE.md,
"Life of a run", says where parsing sits).
Outside tools write these files: the field names are a contract.

	version: 1                      # required, the only version
	name: chsf-rebuild              # optional
	plugins:                        # plugins that are not built in (exec, http, manual, noop)
	  pacs-vendor: { path: ./bin/reprise-plugin-pacs, sha256: <64 lowercase hex>, max_parallel: 2 }
	defaults: { timeout: 30m, retries: 2, retry_delay: 30s }
	nodes:                          # a list, at least one node
	  - id: ad                      # required, unique
	    kind: infrastructure        # required: infrastructure | application | interface | data
	    title: Active Directory     # optional
	    plugin: exec                # required: built in, or declared under plugins
	    depends_on: [network]       # optional
	    between: [ris, pacs]        # interfaces only, and required there: two distinct ends
	    criticality: vital          # vital | high | normal (default) | low
	    estimate: 4h                # optional, for plan
	    timeout: 1h                 # optional, > 0; else defaults.timeout, else 30m
	    retries: 1                  # optional, >= 0; else defaults.retries, else 0
	    with: { … }                 # free-form settings for the plugin

An optional field written without a value (YAML `depends_on:`, JSON null)
is absent. Required fields (version, nodes, and each node's id, kind and
plugin) must have one.

Format detection: a file named *.json is JSON, *.yaml or *.yml YAML; any other
name is JSON when its first non-blank byte is '{', YAML otherwise. A UTF-8
byte order mark is skipped.

Ids and plugin names match IDPattern, `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`:
1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or a
digit. They are case-sensitive.

Durations are one or more number+unit pairs, units ms, s, m, h, d (24h) and
w (7d): "45s", "1h30m", "2.5d", "1w2d". Negative durations are refused; a
timeout must be more than zero.

Placeholders in the string values of `with`: ${env:NAME} (plain
configuration), ${secret:NAME} and ${secret:file:PATH} (secrets: never
persisted, redacted) (NAME: letters, digits, _, not starting with a digit)
and ${nodes.ID.outputs.KEY} (KEY:
letters, digits, _, -), where ID must be an ancestor of the node (something it
depends on, directly or not). $${ writes a literal ${. Anything else after
${ is an error.

# Limits

A file may hold at most MaxFileSize bytes (64 MiB; a 150,000-node graph from
graphgen is about 25 MB of JSON). Lists and mappings nest at most MaxDepth
(256) deep. YAML aliases may expand to at most ten times the number of values
written plus AliasBudget (10,000) values: past that the file is refused as an
alias bomb.

# Strictness

Unknown fields, values of the wrong type (a string where a number is wanted
and the reverse: quote ids that YAML would read as numbers), duplicate keys in
any mapping (`with` included), duplicate ids and duplicate entries in
depends_on are errors. YAML merge keys (<<) are allowed; YAML tags other than
the core ones are not. A YAML stream must hold exactly one document.

# Errors

Parse and Load report every problem at once in a *ValidationError, one
*Problem per line, sorted by position, formatted
`FILE:LINE:COL: node "ID": message`. Each Problem unwraps to a sentinel of
errors.go (ErrCycle, ErrUnknownNode …). Positions are 1-based, columns
count characters. Two cases have a weaker position, by necessity:

  - a file over the size limit is refused before it is read: no line and
    column (Line and Col are 0);
  - the YAML library names the line of a syntax error but not the column:
    the column given is that of the line's first non-blank character.

Cycles are reported one line per strongly connected component (Tarjan,
O(V+E)) as one cycle through it, `a -> b -> c -> a` where "a -> b" reads "a
depends on b", naming the component's other members: elementary cycles are
never enumerated (there can be exponentially many).

# Cost

JSON is read by a scanner of our own (positions for every value, duplicate
keys refused, accepting exactly what encoding/json accepts: the fuzz target
checks it); YAML by go.yaml.in/yaml/v3 into its node tree, which we walk. In
both, the entries of the top-level nodes list are decoded one at a time as
they are read. Parsing, validation and Analyze are linear in the size of the file and the
graph (plus sorting ids). The graph library github.com/dominikbraun/graph is
offered as a view of the model (Graph.Model) but none of the hot paths go
through it: its TopologicalSort and PreventCycles are O(V²) in v0.23.0.

# Renditions

Rendition writes a YAML file's value tree (aliases expanded, merge keys
applied, scalars resolved) as an equivalent JSON document, which ParseJSON
reads under the file's name into the same graph but for Source and
positions; ParseRendition also keeps the file's Hash (a cluster
coordinator publishes renditions: agents read JSON several times faster).
A value JSON has no form for (.inf, .nan, a key that is not a string) has
no rendition. The usual one-line flow entries of a large nodes list are
written without the YAML library, byte for byte as its way would write them
(rendition_fast.go).
*/
package graphs
