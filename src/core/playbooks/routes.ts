/** The contract members of the playbooks room, served by the router from PlaybookService. */
import type { Contract } from '../../shared/contract/index.ts';
import type { Router } from '../rpc/server.ts';
import type { PlaybookService } from './service.ts';

export type PlaybookRouteName =
  | 'playbooks.list'
  | 'playbooks.get'
  | 'playbooks.create'
  | 'playbooks.save'
  | 'playbooks.validate'
  | 'playbooks.revisions'
  | 'playbooks.revisionDiff'
  | 'playbooks.file'
  | 'playbooks.generate'
  | 'playbooks.verify'
  | 'playbooks.verification'
  | 'playbooks.verifications'
  | 'playbooks.export';

export function playbookRoutes(core: {
  playbooks: PlaybookService;
}): Pick<Router<Contract>, PlaybookRouteName> {
  const p = core.playbooks;
  return {
    'playbooks.list': (i) => p.list(i.sandbox),
    'playbooks.get': (i) => p.get(i.playbook, i.revision),
    'playbooks.create': (i, ctx) => p.create(i, ctx.actor),
    'playbooks.save': (i, ctx) => p.save(i.playbook, i.yaml, i.baseRevision, i.message, ctx.actor),
    'playbooks.validate': (i) => p.validate(i.yaml),
    'playbooks.revisions': (i) => p.revisions(i.playbook),
    'playbooks.revisionDiff': (i) => p.revisionDiff(i.playbook, i.from, i.to),
    'playbooks.file': (i) => p.file(i.playbook, i.revision, i.path),
    'playbooks.generate': (i, ctx) => p.generate(i, ctx.actor),
    'playbooks.verify': (i, ctx) => p.verify(i.playbook, i.revision, ctx.actor),
    'playbooks.verification': (i) => p.verification(i.playbook, i.id),
    'playbooks.verifications': (i) => p.verifications(i.playbook),
    'playbooks.export': (i, ctx) => p.export(i.playbook, i.revision, i.vaultPassword, ctx.actor),
  };
}
