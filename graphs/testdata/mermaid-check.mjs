// Parses Mermaid files with the real mermaid package, for
// TestMermaidAcceptedByMermaid. MERMAID_NODE_MODULES names a node_modules
// folder holding mermaid@11 and jsdom (npm install mermaid@11 jsdom).
// Usage: node mermaid-check.mjs FILE…  (exit 1 when one does not parse)
import { createRequire } from 'module';
import { pathToFileURL } from 'url';
import fs from 'fs';

const require = createRequire(process.env.MERMAID_NODE_MODULES.replace(/\/?$/, '/'));
const { JSDOM } = await import(pathToFileURL(require.resolve('jsdom')).href);
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false });
let bad = 0;
for (const f of process.argv.slice(2)) {
  try {
    const r = await mermaid.parse(fs.readFileSync(f, 'utf8'));
    console.log('ok', f, r && r.diagramType);
  } catch (e) {
    bad++;
    console.log('FAIL', f, String((e && e.message) || e));
  }
}
process.exit(bad ? 1 : 0);
