/** The contract members of the targets and changes rooms, served by the router. */
import type { Contract } from '../../shared/contract/index.ts';
import { FluidError } from '../../shared/errors.ts';
import type { Router } from '../rpc/server.ts';
import type { TargetService } from '../targets/service.ts';
import type { ChangeService } from './service.ts';

export type ChangeRouteName =
  | 'targets.list'
  | 'targets.get'
  | 'targets.probe'
  | 'targets.add'
  | 'targets.trust'
  | 'targets.check'
  | 'targets.remove'
  | 'changes.submit'
  | 'changes.get'
  | 'changes.list'
  | 'changes.bundle'
  | 'changes.apply'
  | 'changes.applies'
  | 'changes.applyGet'
  | 'changes.watchApply';

export function changeRoutes(core: {
  targets: TargetService;
  changes: ChangeService;
}): Pick<Router<Contract>, ChangeRouteName> {
  const { targets, changes } = core;
  return {
    'targets.list': () => targets.list(),
    'targets.get': (i) => targets.get(i.target),
    'targets.probe': (i) => targets.probe(i.address, i.port, i.jump),
    'targets.add': (i, ctx) => targets.add(i, ctx.actor),
    'targets.trust': (i, ctx) => targets.trust(i.target, i.acceptFingerprint, ctx.actor),
    'targets.check': (i, ctx) => targets.check(i.target, ctx.actor),
    'targets.remove': (i, ctx) =>
      targets.remove(i.target, ctx.actor, (targetId) => {
        const open = changes.store.openOnTarget(targetId);
        if (open.length)
          throw new FluidError(
            'CONFLICT',
            `${open.length} change${open.length === 1 ? ' is' : 's are'} being submitted to this target; wait for ${open.length === 1 ? 'it' : 'them'} first.`,
          );
      }),
    'changes.submit': (i, ctx) => changes.submit(i, ctx.actor),
    'changes.get': (i) => changes.get(i.change),
    'changes.list': (i) => changes.list(i),
    'changes.bundle': (i) => changes.bundle(i.change),
    'changes.apply': (i, ctx) => changes.apply(i.change, ctx.actor),
    'changes.applies': (i) => changes.applies(i),
    'changes.applyGet': (i) => changes.applyGet(i.apply),
    'changes.watchApply': (i, ctx) => changes.watchApply(i.apply, ctx.signal),
  };
}
