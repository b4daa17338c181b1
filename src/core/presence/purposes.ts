/**
 * The purpose of each guarded call, computed the same way when a WebAuthn challenge is made
 * (`presence.challenge`) and when the call arrives with its proof: a proof binds exactly one call.
 */
import type { GuardedMember } from '../../shared/contract/presence.ts';
import { SettingsPatchSchema } from '../../shared/contract/settings.ts';
import { FluidError } from '../../shared/errors.ts';
import { validationError } from '../../shared/rpc.ts';
import type { Core } from '../createCore.ts';
import { settingsPurpose } from '../store/settings.ts';
import { purposeOf } from './service.ts';
import { tokenPurpose } from '../tokens/service.ts';
import { providerPurpose } from '../agent/providers-store.ts';
import { agentContract } from '../../shared/contract/agent.ts';

const text = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v) throw new FluidError('VALIDATION', `${what} is missing.`);
  return v;
};

export function purposeFor(core: Core, member: GuardedMember, input: Record<string, unknown>): string {
  switch (member) {
    case 'approvals.decide': {
      const decision = input.decision;
      if (decision !== 'approve' && decision !== 'deny')
        throw new FluidError('VALIDATION', 'decision must be approve or deny.');
      return core.approvals.purpose(text(input.id, 'The approval id'), decision);
    }
    case 'settings.update': {
      const { presence: _presence, ...patch } = input;
      const parsed = SettingsPatchSchema.safeParse(patch);
      if (!parsed.success) throw validationError(parsed.error);
      return settingsPurpose(parsed.data);
    }
    case 'sandboxes.egressAllow':
      return egressPurpose(
        core.sandboxes.get(text(input.sandbox, 'The sandbox')).id,
        text(input.destination, 'The destination'),
      );
    case 'presence.registerBegin':
      return purposeOf('presence.registerBegin', { name: text(input.name, 'The key name').trim() });
    case 'presence.remove':
      return purposeOf('presence.remove', { id: text(input.id, 'The key id') });
    case 'tokens.create': {
      const scope = input.scope;
      if (scope !== 'agent' && scope !== 'operator')
        throw new FluidError('VALIDATION', 'scope must be agent or operator.');
      return tokenPurpose(text(input.name, 'The token name').trim(), scope);
    }
    case 'providers.save': {
      const parsed = agentContract['providers.save'].input.safeParse(input);
      if (!parsed.success) throw validationError(parsed.error);
      const { presence: _presence, ...rest } = parsed.data;
      return providerPurpose(rest);
    }
  }
}

export const egressPurpose = (sandboxId: string, destination: string): string =>
  purposeOf('sandboxes.egressAllow', { sandbox: sandboxId, destination });
