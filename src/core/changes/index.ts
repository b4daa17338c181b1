/**
 * The changes room: one immutable bundle per change, its production preview, the approval that names
 * it, and the apply that runs exactly it. Production targets live in src/core/targets.
 *
 * Read in this order:
 *  - scope.ts   — what a change touches (diff items and the playbook's tasks); check mode must stay on
 *  - bundle.ts  — the bundle, its canonical JSON and sha256, secret digests, re-deriving what will run
 *  - run.ts     — one ansible-playbook run of the bundle on its target (results, diffs, log)
 *  - store.ts   — rows and the migration (sealed bundles are immutable; an approval is used once)
 *  - service.ts — submit (verify, baseline, preview, seal, ask), the approval guard, apply
 *  - tools.ts   — request_apply: the agent submits and may wait, never decides
 *  - routes.ts  — the contract members
 * The contract is src/shared/contract/changes.ts.
 */
export { ChangeService } from './service.ts';
export { CHANGES_MIGRATION } from './store.ts';
export { registerChangeTools } from './tools.ts';
export { changeRoutes } from './routes.ts';
