/**
 * The system diff room: what an agent really changed on a sandbox, read from its disk on the host.
 *
 * Read in this order:
 *  - baseline.ts  — the frozen layer each sandbox gets at creation, and the layering rules around it
 *  - service.ts   — DiffService: baseline phase, diff tasks, include/exclude choices
 *  - host.ts      — sending collect.py to the host and validating its answer
 *  - collect.py   — the host program: export + mount views, fast path (allocation map → inode
 *                   tables → inodes) or full walk, collectors, noise rules, content diffs
 *  - noise-rules.json — the noise filter as data
 *  - model.ts     — ids, order, counts and hash of the contract's Diff
 *  - store.ts     — rows (baselines, diffs, exclusions) and the migration
 *  - render.ts, tool.ts, preflight.ts — text output, the diff_sandbox agent tool, the host check
 * The contract (shapes, ordering, compareDiffs) is src/shared/contract/diff.ts.
 */
export { DiffService, diffPaths, summary } from './service.ts';
export { DIFF_MIGRATION } from './store.ts';
export { registerDiffTool } from './tool.ts';
export { renderDiff } from './render.ts';
export { takeBaseline, workLayer } from './baseline.ts';
export { COLLECT_SOURCE_URL, collectScript, runCollect } from './host.ts';
