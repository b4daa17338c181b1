/**
 * The targets room: production machines Fluid applies approved changes to.
 *
 * Read in this order:
 *  - store.ts          — rows, the migration, and the per-target apply lock (reclaimed from dead owners)
 *  - service.ts        — register (fingerprint confirmed, then pinned), check, re-pin, remove; connect
 *                        through a jump host with the key held in the secret store
 *  - state.ts          — the target's state over a scope (target_state.py, read-only), drift, matching
 *  - ansible.ts        — aiming Ansible at a target (inventory slice, pinned key, relay)
 *                        (fluid_preview.py: the per-task --diff callback)
 */
export { TargetService } from './service.ts';
export { TARGETS_MIGRATION } from './store.ts';
