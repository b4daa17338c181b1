/**
 * `fluid token create|list|revoke`: API tokens for the HTTP door. A person creates and revokes them
 * (on a terminal; a process without one is refused); an operator token is a grant and is confirmed
 * on the terminal (or with a security key in the app). The secret is printed once.
 */
import type { ApiToken } from '../shared/contract/tokens.ts';
import type { Command } from './command.ts';
import { table, UsageError } from './io.ts';
import { withPresence } from './presence.ts';

const rows = (tokens: ApiToken[]) =>
  tokens.map((t) => ({
    name: t.name,
    scope: t.scope,
    prefix: `${t.prefix}…`,
    created: `${t.createdAt.slice(0, 16).replace('T', ' ')} by ${t.createdBy.door}:${t.createdBy.id}`,
    used: t.lastUsedAt ? t.lastUsedAt.slice(0, 16).replace('T', ' ') : 'never',
    state: t.revokedAt ? `revoked ${t.revokedAt.slice(0, 10)}` : 'live',
  }));

export const tokenCommands: Record<string, Command> = {
  'token create': {
    summary:
      'Create an API token for the HTTP API (shown once). --scope agent asks only; operator may decide.',
    usage: 'fluid token create --scope agent|operator --name NAME [--json]',
    options: { scope: { type: 'string' }, name: { type: 'string' } },
    run: async (ctx) => {
      const scope = ctx.values.scope;
      const name = ctx.values.name;
      if (scope !== 'agent' && scope !== 'operator')
        throw new UsageError(
          'Choose --scope agent (asks, never decides) or --scope operator (your automation).',
        );
      if (typeof name !== 'string' || !name) throw new UsageError('Name the token: --name ci-agent');
      const out = await withPresence(ctx, (presence) =>
        ctx.client.call('tokens.create', { name, scope, presence }),
      );
      ctx.io.result(out, () =>
        [
          `Created the ${scope} token "${name}". Its secret is shown this once (Fluid keeps only its sha256):`,
          '',
          `  ${out.secret}`,
          '',
          'Use it as "Authorization: Bearer <token>", e.g. with the Python SDK: Fluid(url, token).',
          scope === 'operator'
            ? 'It decides approvals only while unattended decisions are allowed (Settings → Security).'
            : 'It can use sandboxes, diffs, playbooks and changes and ask for approvals; it never decides.',
        ].join('\n'),
      );
    },
  },
  'token list': {
    summary: 'List API tokens (never their secrets).',
    usage: 'fluid token list [--all] [--json]',
    options: { all: { type: 'boolean' } },
    run: async (ctx) => {
      const tokens = await ctx.client.call('tokens.list', { includeRevoked: !!ctx.values.all });
      ctx.io.result(tokens, (t: ApiToken[]) =>
        t.length
          ? table(rows(t), [
              ['name', 'name'],
              ['scope', 'scope'],
              ['prefix', 'starts with'],
              ['created', 'created'],
              ['used', 'last used'],
              ['state', 'state'],
            ])
          : 'No API tokens. Create one: fluid token create --scope agent --name NAME',
      );
    },
  },
  'token revoke': {
    summary: 'Revoke an API token now (its requests get 401 from then on).',
    usage: 'fluid token revoke <name> [--json]',
    run: async (ctx) => {
      const name = ctx.args[0];
      if (!name) throw new UsageError('Which token? fluid token revoke <name>');
      const t = await ctx.client.call('tokens.revoke', { name });
      ctx.io.result(t, () => `Revoked the ${t.scope} token "${t.name}".`);
    },
  },
};
