/**
 * The playbooks room: an Ansible playbook that reproduces a sandbox's change, kept as immutable
 * revisions, generated from the system diff, proven in five steps before anyone reviews it, and
 * exported as a self-contained folder.
 *
 * Read in this order:
 *  - model.ts     — plays, tasks and handlers on the parsed YAML document (edits keep comments)
 *  - yaml.ts      — YAML as Ansible reads it (1.1) and as Fluid writes it (modes quoted)
 *  - safety.ts    — what Fluid agrees to run on this machine (modules, keywords, a Jinja subset)
 *  - revisions.ts — a revision's bytes and sha256, diagnostics, diffs between revisions
 *  - store.ts     — rows and the migration (revisions are immutable)
 *  - secrets.ts   — secrets become variables; values held in the secret store, never in a revision
 *  - generate.ts  — from the diff's typed items to tasks, merged with tasks already written
 *  - ansible.ts   — running ansible-playbook/ansible-lint here, against a sandbox through its host
 *                   (fluid_json.py: the JSON events callback; ssh_relay.py: the ProxyCommand)
 *  - verify.ts    — the five steps, on a fresh sandbox that is always destroyed
 *  - export.ts    — the folder a person takes away
 *  - service.ts, tools.ts — what the doors and the agent call
 * The contract is src/shared/contract/playbooks.ts.
 */
export { PlaybookService } from './service.ts';
export { PLAYBOOKS_MIGRATION } from './store.ts';
export { registerPlaybookTools } from './tools.ts';
export { detectAnsible, INSTALL_ADVICE, LINT_PROFILE } from './ansible.ts';
