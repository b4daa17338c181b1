/**
 * CLI: `fluid run` (an agent session without a window), model providers, and sessions.
 *
 * `fluid run` streams the assistant's text to stdout and its tool calls as lines; approvals are
 * asked on the terminal when stdin is one (decided as door "cli"), otherwise they wait for another
 * door (`fluid approval approve <id>`, the app). Exit 0 when the session is done, 1 otherwise.
 */
import { createInterface } from 'node:readline/promises';
import type {
  AgentEvent,
  AgentMode,
  Provider,
  Session,
  TranscriptMessage,
} from '../shared/contract/agent.ts';
import { FluidError, toErrorPayload } from '../shared/errors.ts';
import type { Command, Ctx } from './command.ts';
import { table, UsageError } from './io.ts';
import { withPresence } from './presence.ts';

/** What `fluid run --resume` says when no new instruction is given. */
export const RESUME_TEXT = 'Continue the task where you left off.';

const TERMINAL: readonly Session['status'][] = ['done', 'stopped', 'failed', 'idle'];

function num(v: unknown, name: string, int = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < 0)
    throw new UsageError(`--${name} expects a ${int ? 'whole ' : ''}number, got "${String(v)}".`);
  return n;
}

function modeOf(v: unknown): AgentMode | undefined {
  if (v === undefined) return undefined;
  if (v !== 'edit' && v !== 'read-only')
    throw new UsageError(`--mode is edit or read-only, not "${String(v)}".`);
  return v;
}

const oneLine = (s: string, max = 160) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** Sandbox names by id, so lines name sandboxes the way people do. */
const sandboxNames = new Map<string, string>();

function describeCall(name: string, raw: Record<string, unknown>): string {
  const sid = typeof raw.sandbox_id === 'string' ? raw.sandbox_id : null;
  const input = sid && sandboxNames.has(sid) ? { ...raw, sandbox_id: sandboxNames.get(sid) } : raw;
  const main = input.command ?? input.path ?? input.source_vm ?? input.sandbox_id ?? input.handle;
  const where = input.sandbox_id && main !== input.sandbox_id ? `${String(input.sandbox_id)}: ` : '';
  return typeof main === 'string'
    ? `${name} ${where}${oneLine(main)}`
    : `${name} ${oneLine(JSON.stringify(input))}`;
}

const usd = (n: number) => `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`;

export function sessionLine(s: Session): string {
  return `${s.status}: ${s.steps} step${s.steps === 1 ? '' : 's'}, ${s.usage.inputTokens + s.usage.outputTokens} tokens, ${usd(s.usage.costUsd)}`;
}

/** A terminal prompt for approvals that can be withdrawn when someone else decides first. */
async function promptApproval(
  ctx: Ctx,
  approvalId: string,
  signal: AbortSignal,
  onInterrupt: () => void,
): Promise<void> {
  const a = await ctx.client.call('approvals.get', { id: approvalId });
  if (a.status !== 'pending') return;
  const subject = JSON.stringify(a.subject, null, 2);
  ctx.io.err(
    [
      '',
      `── approval needed (${a.risk} risk) ──────────────────────────────`,
      `  ${a.title}`,
      `  ${a.detail}`,
      ...subject.split('\n').map((l) => `  ${l}`),
      `  (id ${a.id}; another door may decide it too)`,
    ].join('\n'),
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  rl.on('SIGINT', () => {
    rl.close();
    onInterrupt();
  });
  try {
    const answer = (await rl.question('Approve? [y/N] ', { signal })).trim().toLowerCase();
    const approve = answer === 'y' || answer === 'yes';
    const note = (await rl.question('Note (optional): ', { signal })).trim();
    // Typed on this terminal by the person who started the run: a terminal confirmation.
    await ctx.client.call('approvals.decide', {
      id: approvalId,
      decision: approve ? 'approve' : 'deny',
      ...(note ? { note } : {}),
      presence: { kind: 'terminal' },
    });
    ctx.io.err(approve ? '  approved' : '  denied');
  } catch (err) {
    if (signal.aborted) return;
    const p = toErrorPayload(err);
    if (p.code === 'CONFLICT') ctx.io.err(`  ${p.message}`);
    else if (p.code !== 'CANCELLED') throw err;
  } finally {
    rl.close();
  }
}

interface FollowOptions {
  prompt: boolean;
  /** Messages up to this seq were there before this run: not printed again. */
  afterSeq: number;
}

/** Follow a session to the end of its run, printing as it goes. */
export async function followSession(ctx: Ctx, sessionId: string, opts: FollowOptions): Promise<Session> {
  const { io } = ctx;
  // A closed stdout (`fluid run … | head`) must not kill the session's process mid-run.
  let stdoutGone = false;
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') stdoutGone = true;
    else throw e;
  };
  process.stdout.on('error', onStdoutError);
  const out = (t: string) => {
    if (!stdoutGone) process.stdout.write(t);
  };
  let lineOpen = false;
  let streamed = 0;
  /** Tool calls printed (→), and those followed live (their results come as tool_call events). */
  const announced = new Set<string>();
  const shownCalls = new Set<string>();
  const prompts = new Map<string, AbortController>();
  const approvalChain: { p: Promise<void> } = { p: Promise.resolve() };
  let final: Session | null = null;
  let stopping = false;
  const watcher = new AbortController();

  const newline = () => {
    if (lineOpen) out('\n');
    lineOpen = false;
  };
  const stop = () => {
    if (stopping) {
      io.err('\nLeaving without waiting; the session may still be stopping.');
      process.exit(130);
    }
    stopping = true;
    io.err('\nStopping the session… (Ctrl+C again to leave at once)');
    for (const c of prompts.values()) c.abort();
    void ctx.client.call('agent.stop', { sessionId }).catch(() => {});
  };

  const printMessage = (m: TranscriptMessage) => {
    if (m.role === 'assistant') {
      if (!streamed) {
        const text = m.content
          .filter((b) => b.type === 'text')
          .map((b) => (b as { text: string }).text)
          .join('\n');
        if (text) {
          newline();
          out(`${text}\n`);
        }
      } else newline();
      streamed = 0;
      for (const b of m.content)
        if (b.type === 'tool_use' && !announced.has(b.id)) {
          announced.add(b.id);
          newline();
          out(`→ ${describeCall(b.name, b.input)}\n`);
        }
    } else {
      for (const b of m.content) {
        if (b.type === 'text') {
          newline();
          out(`» ${b.text}\n`);
        } else if (b.type === 'tool_result' && !shownCalls.has(b.toolUseId)) {
          shownCalls.add(b.toolUseId);
          out(`  ${b.isError ? '✗' : '✓'} ${oneLine(b.content, 200)}\n`);
        }
      }
    }
  };

  const onEvent = (ev: AgentEvent) => {
    if (io.json) out(JSON.stringify(ev) + '\n');
    switch (ev.type) {
      case 'snapshot':
        if (!io.json) for (const m of ev.messages) if (m.seq > opts.afterSeq) printMessage(m);
        if (TERMINAL.includes(ev.session.status) && ev.messages.some((m) => m.seq > opts.afterSeq))
          final = ev.session;
        break;
      case 'text_delta':
        if (!io.json) out(ev.text);
        lineOpen = !ev.text.endsWith('\n');
        streamed += ev.text.length;
        break;
      case 'text_reset':
        if (!io.json) {
          newline();
          io.err('(the model is retrying; the partial reply above is void)');
        }
        streamed = 0;
        break;
      case 'retry':
        if (!io.json)
          io.err(
            `(model call failed: ${ev.reason}; retry ${ev.attempt} in ${(ev.delayMs / 1000).toFixed(1)} s)`,
          );
        break;
      case 'message':
        if (!io.json) printMessage(ev.message);
        break;
      case 'tool_call': {
        if (ev.status === 'running') {
          shownCalls.add(ev.id);
          if (!io.json && !announced.has(ev.id)) {
            newline();
            out(`→ ${describeCall(ev.name, ev.input)}\n`);
          }
          announced.add(ev.id);
        } else if (ev.status === 'waiting-approval' && ev.approvalId) {
          const id = ev.approvalId;
          if (opts.prompt && !prompts.has(id)) {
            const c = new AbortController();
            prompts.set(id, c);
            approvalChain.p = approvalChain.p
              .then(() => (c.signal.aborted ? undefined : promptApproval(ctx, id, c.signal, stop)))
              .catch((err: unknown) => io.err(`  could not decide: ${toErrorPayload(err).message}`));
          } else if (!opts.prompt && !io.json) {
            newline();
            io.err(
              `  waiting for a person to decide approval ${id} (in the Fluid app or web UI, or with \`fluid approval list\` on their terminal)`,
            );
          }
        } else {
          if (ev.approvalId) prompts.get(ev.approvalId)?.abort();
          learnName(ev.output);
          if (!io.json) {
            newline();
            const mark = ev.status === 'done' ? '✓ ok' : ev.status === 'denied' ? '✗ denied' : '✗ error';
            const lines = (ev.output ?? '').replace(/\n+$/, '').split('\n');
            const shown = lines.slice(0, 8).map((l) => `    ${l.length > 240 ? l.slice(0, 239) + '…' : l}`);
            const more = lines.length > 8 ? `\n    … (${lines.length - 8} more lines)` : '';
            const full = ev.handle ? ` (full output: fluid session show, handle ${ev.handle})` : '';
            out(`  ${mark}${full}\n${shown.join('\n')}${more}\n`);
          }
        }
        break;
      }
      case 'compaction':
        if (!io.json)
          io.err(`(older turns were summarised to fit the context; through message ${ev.compactedThrough})`);
        break;
      case 'status':
        if (TERMINAL.includes(ev.session.status)) final = ev.session;
        break;
    }
  };

  // The sandboxes known now; those the session creates are learnt from create_sandbox's result.
  const learnName = (output: string | undefined) => {
    try {
      const o = JSON.parse(output ?? '') as { sandbox_id?: unknown; name?: unknown };
      if (typeof o.sandbox_id === 'string' && typeof o.name === 'string')
        sandboxNames.set(o.sandbox_id, o.name);
    } catch {
      /* not a sandbox's description */
    }
  };
  for (const sb of await ctx.client.call('sandboxes.list', { includeDestroyed: true }).catch(() => []))
    sandboxNames.set(sb.id, sb.name);

  process.on('SIGINT', stop);
  try {
    for await (const ev of ctx.client.stream('agent.watch', { sessionId }, { signal: watcher.signal })) {
      onEvent(ev);
      if (final) break;
    }
  } finally {
    process.off('SIGINT', stop);
    process.stdout.off('error', onStdoutError);
    for (const c of prompts.values()) c.abort();
    watcher.abort();
  }
  newline();
  const s = final ?? (await ctx.client.call('agent.sessions.get', { sessionId }));
  return s;
}

function providerRows(ps: Provider[]) {
  return ps.map((p) => ({
    id: p.id,
    def: p.isDefault ? '*' : '',
    kind: p.kind,
    model: p.model,
    url: p.baseUrl ?? '(default)',
    key: p.hasKey,
    ctx: `${Math.round(p.contextTokens / 1000)}k`,
    price:
      p.inputPerMTok === null || p.outputPerMTok === null
        ? 'unknown (set one)'
        : `${p.inputPerMTok}/${p.outputPerMTok}${p.priceSource === 'person' ? ' (set)' : ''}`,
  }));
}

function renderTranscript(messages: TranscriptMessage[]): string {
  const lines: string[] = [];
  for (const m of messages) {
    const tag = `#${m.seq} ${m.role}${m.compacted ? ' (compacted)' : ''}`;
    lines.push(tag);
    for (const b of m.content) {
      if (b.type === 'text') lines.push(...b.text.split('\n').map((l) => `  ${l}`));
      else if (b.type === 'tool_use') lines.push(`  → ${describeCall(b.name, b.input)}  [${b.id}]`);
      else
        lines.push(
          `  ${b.isError ? '✗' : '✓'} [${b.toolUseId}] ${oneLine(b.content, 300)}${b.handle ? `  (full output: ${b.handle})` : ''}`,
        );
    }
  }
  return lines.join('\n');
}

/** `provider add` (new or changed) and `provider update` (an existing one only): one save. */
function providerSaveCommand(verb: 'add' | 'update'): Command {
  return {
    summary:
      verb === 'add'
        ? 'Add or change a model provider (the key goes to the secret store).'
        : 'Change a model provider: its model, endpoint, key or prices (what is not given stays).',
    usage:
      verb === 'add'
        ? 'fluid provider add <id> --kind anthropic|openai --model M [--label L] [--base-url URL] [--key KEY | --key-stdin] [--default] [--context-tokens N] [--price-in USD_PER_MTOK --price-out USD_PER_MTOK]'
        : 'fluid provider update <id> [--model M] [--label L] [--base-url URL] [--key KEY | --key-stdin] [--default] [--context-tokens N] [--price-in USD_PER_MTOK --price-out USD_PER_MTOK | --table-price]',
    options: {
      kind: { type: 'string' },
      model: { type: 'string' },
      label: { type: 'string' },
      'base-url': { type: 'string' },
      key: { type: 'string' },
      'key-stdin': { type: 'boolean' },
      default: { type: 'boolean' },
      'context-tokens': { type: 'string' },
      'price-in': { type: 'string' },
      'price-out': { type: 'string' },
      // Earlier spellings of --price-in/--price-out.
      'input-price': { type: 'string' },
      'output-price': { type: 'string' },
      'table-price': { type: 'boolean' },
    },
    run: async (ctx) => {
      const v = ctx.values;
      const id = ctx.args[0];
      if (!id)
        throw new UsageError(
          verb === 'add'
            ? 'Name the provider: fluid provider add anthropic --kind anthropic --model claude-sonnet-4-6 --key-stdin'
            : 'Which provider? fluid provider update <id> --price-in 3 --price-out 15 (see fluid provider list)',
        );
      const existing = (await ctx.client.call('providers.list', {})).find((p) => p.id === id);
      if (verb === 'update' && !existing)
        throw new UsageError(
          `No provider "${id}" to update. Add it with: fluid provider add ${id} --kind … --model …`,
        );
      const kind = (v.kind as string | undefined) ?? existing?.kind;
      if (kind !== 'anthropic' && kind !== 'openai') throw new UsageError('--kind is anthropic or openai.');
      const model = (v.model as string | undefined) ?? existing?.model;
      if (!model) throw new UsageError('--model is required (e.g. claude-sonnet-4-6, gpt-5.5, qwen3).');
      if (v.key !== undefined && v['key-stdin']) throw new UsageError('Use --key or --key-stdin, not both.');
      const priceIn = (v['price-in'] ?? v['input-price']) as string | undefined;
      const priceOut = (v['price-out'] ?? v['output-price']) as string | undefined;
      if (v['table-price'] && (priceIn !== undefined || priceOut !== undefined))
        throw new UsageError('--table-price drops your price; do not give --price-in/--price-out with it.');
      let apiKey = v.key as string | undefined;
      if (v['key-stdin']) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        apiKey = Buffer.concat(chunks).toString('utf8').trim();
        if (!apiKey) throw new UsageError('--key-stdin read no key from stdin.');
      }
      const input = {
        id,
        kind: kind as 'anthropic' | 'openai',
        model,
        label: (v.label as string | undefined) ?? existing?.label ?? id,
        ...(v['base-url'] !== undefined ? { baseUrl: (v['base-url'] as string) || null } : {}),
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(v.default ? { isDefault: true } : {}),
        ...(v['context-tokens'] !== undefined
          ? { contextTokens: num(v['context-tokens'], 'context-tokens') }
          : {}),
        ...(priceIn !== undefined ? { inputPerMTok: num(priceIn, 'price-in', false) } : {}),
        ...(priceOut !== undefined ? { outputPerMTok: num(priceOut, 'price-out', false) } : {}),
        ...(v['table-price'] ? { inputPerMTok: null, outputPerMTok: null } : {}),
      };
      // A lower price is a person's decision: confirmed on the terminal when the core asks.
      const p = await withPresence(ctx, (presence) =>
        ctx.client.call('providers.save', { ...input, presence }),
      );
      const price =
        p.inputPerMTok === null || p.outputPerMTok === null
          ? `no price known for ${p.model}: sessions will not start until you set one (--price-in USD --price-out USD per million tokens; 0 and 0 for a free, self-hosted model)`
          : `$${p.inputPerMTok} in / $${p.outputPerMTok} out per million tokens (${p.priceSource === 'person' ? 'your price' : "Fluid's table"})`;
      ctx.io.result(
        p,
        () =>
          `Provider ${p.id}${p.isDefault ? ' (default)' : ''}: ${p.kind} ${p.model} at ${p.baseUrl ?? 'the default endpoint'}, ${p.hasKey ? 'key stored' : 'no key'}; ${price}. Check it with: fluid provider test ${p.id}`,
      );
    },
  };
}

/**
 * A session ended and left sandboxes: on a terminal the person keeps or destroys them (a failed or
 * stopped session's go by default, a finished one's stay); otherwise the way to do either is printed.
 */
async function offerToDestroy(
  ctx: Ctx,
  end: Session,
  left: Array<{ id: string; name: string; state: string; expiresAt: string | null }>,
  prompt: boolean,
): Promise<void> {
  const list = left
    .map(
      (s) => `${s.name} (${s.state}${s.expiresAt ? `, expires ${s.expiresAt.replace(/\.\d+Z$/, 'Z')}` : ''})`,
    )
    .join(', ');
  ctx.io.err(`  sandboxes of this session: ${list}`);
  const dflt = end.status !== 'done';
  if (!prompt) {
    ctx.io.err(
      `  keep them to look at the changes (fluid diff <sandbox>), or destroy them: fluid session destroy-sandboxes ${end.id}`,
    );
    return;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  let yes = dflt;
  try {
    const a = (
      await rl.question(`  Destroy ${left.length === 1 ? 'it' : 'them'} now? [${dflt ? 'Y/n' : 'y/N'}] `)
    )
      .trim()
      .toLowerCase();
    yes = a ? a.startsWith('y') : dflt;
  } catch {
    /* no answer: the default */
  } finally {
    rl.close();
  }
  if (!yes) {
    ctx.io.err(`  kept; destroy them later with: fluid session destroy-sandboxes ${end.id}`);
    return;
  }
  const r = await ctx.client.call('agent.sessions.destroySandboxes', { sessionId: end.id });
  for (const d of r.destroyed) ctx.io.err(`  destroyed ${d.name}`);
  for (const f of r.failed) ctx.io.err(`  could not destroy ${f.name}: ${f.error}`);
}

export const agentCommands: Record<string, Command> = {
  run: {
    summary: 'Run an agent session headless: stream its work, answer approvals here, exit when it ends.',
    usage:
      'fluid run "<task>" [--source VM] [--host H] [--mode edit|read-only] [--provider ID] [--model M] [--max-steps N] [--max-cost USD] [--title T] [--no-prompt] [--json]\n       fluid run --resume SESSION_ID ["<message>"] [--mode edit|read-only] [--no-prompt] [--json]',
    options: {
      source: { type: 'string' },
      host: { type: 'string' },
      mode: { type: 'string' },
      provider: { type: 'string' },
      model: { type: 'string' },
      'max-steps': { type: 'string' },
      'max-cost': { type: 'string' },
      title: { type: 'string' },
      resume: { type: 'string' },
      'no-prompt': { type: 'boolean' },
    },
    run: async (ctx) => {
      const v = ctx.values;
      const text = ctx.args.join(' ').trim();
      const resume = v.resume as string | undefined;
      const mode = modeOf(v.mode);
      const prompt = !v['no-prompt'] && !!process.stdin.isTTY && !ctx.io.json;
      let session: Session;
      let afterSeq: number;
      if (resume) {
        for (const k of ['source', 'host', 'provider', 'model', 'max-steps', 'max-cost', 'title'])
          if (v[k] !== undefined) throw new UsageError(`--${k} applies to new sessions, not to --resume.`);
        const before = await ctx.client.call('agent.transcript', { sessionId: resume });
        afterSeq = before.messages.at(-1)?.seq ?? 0;
        if (mode) await ctx.client.call('agent.setMode', { sessionId: resume, mode });
        session = await ctx.client.call('agent.send', { sessionId: resume, text: text || RESUME_TEXT });
      } else {
        if (!text)
          throw new UsageError(
            'What should the agent do? fluid run "upgrade nginx on web-01" --source web-01',
          );
        session = await ctx.client.call('agent.sessions.create', {
          task: text,
          mode: mode ?? 'edit',
          ...(v.title ? { title: v.title as string } : {}),
          ...(v.provider ? { providerId: v.provider as string } : {}),
          ...(v.model ? { model: v.model as string } : {}),
          ...(v.host ? { host: v.host as string } : {}),
          ...(v.source ? { source: v.source as string } : {}),
          ...(v['max-steps'] !== undefined ? { maxSteps: num(v['max-steps'], 'max-steps') } : {}),
          ...(v['max-cost'] !== undefined ? { maxCostUsd: num(v['max-cost'], 'max-cost', false) } : {}),
        });
        afterSeq = 1; // the task itself
      }
      if (!ctx.io.json)
        ctx.io.err(
          `Session ${session.id} (${session.mode}, ${session.model})${resume ? ' resumed' : ''}: ${session.title}`,
        );
      const end = await followSession(ctx, session.id, { prompt, afterSeq });
      const left = await ctx.client
        .call('agent.sessions.links', { sessionId: end.id, auditLimit: 1 })
        .then((l) => l.sandboxes.filter((s) => s.live))
        .catch(() => []);
      if (ctx.io.json)
        process.stdout.write(
          JSON.stringify({
            type: 'end',
            session: end,
            sandboxes: left.map((s) => ({ id: s.id, name: s.name, state: s.state, expiresAt: s.expiresAt })),
          }) + '\n',
        );
      else {
        ctx.io.err(`Session ${end.id} ${sessionLine(end)}`);
        if (end.lastError) ctx.io.err(`  ${end.lastError.message}`);
        if (end.status !== 'done') ctx.io.err(`  continue with: fluid run --resume ${end.id} ["<message>"]`);
        if (left.length) await offerToDestroy(ctx, end, left, prompt);
      }
      return end.status === 'done' ? 0 : 1;
    },
  },

  'provider add': providerSaveCommand('add'),
  'provider update': providerSaveCommand('update'),

  'provider list': {
    summary: 'Configured model providers (keys are never shown).',
    usage: 'fluid provider list [--json]',
    run: async (ctx) => {
      const ps = await ctx.client.call('providers.list', {});
      ctx.io.result(ps, () =>
        ps.length
          ? table(providerRows(ps), [
              ['def', 'default'],
              ['id', 'id'],
              ['kind', 'kind'],
              ['model', 'model'],
              ['url', 'base url'],
              ['key', 'key'],
              ['ctx', 'context'],
              ['price', 'usd/mtok in/out'],
            ])
          : 'No providers. Add one: fluid provider add anthropic --kind anthropic --model claude-sonnet-4-6 --key-stdin',
      );
    },
  },

  'provider remove': {
    summary: 'Remove a provider and its stored key.',
    usage: 'fluid provider remove <id>',
    run: async (ctx) => {
      if (!ctx.args[0]) throw new UsageError('fluid provider remove <id>');
      const r = await ctx.client.call('providers.delete', { id: ctx.args[0] });
      ctx.io.result(r, () => `Removed provider ${ctx.args[0]}.`);
    },
  },

  'provider test': {
    summary: "Check a provider's endpoint and key by listing its models.",
    usage: 'fluid provider test <id> [--json]',
    run: async (ctx) => {
      if (!ctx.args[0]) throw new UsageError('fluid provider test <id>');
      const r = await ctx.client.call('providers.test', { id: ctx.args[0] });
      ctx.io.result(r, () => `${r.ok ? 'ok  ' : 'FAIL'}  ${r.message}`);
      return r.ok ? 0 : 1;
    },
  },

  'session list': {
    summary: 'Agent sessions, newest first.',
    usage: 'fluid session list [--limit N] [--json]',
    options: { limit: { type: 'string' } },
    run: async (ctx) => {
      const ss = await ctx.client.call('agent.sessions.list', {
        limit: num(ctx.values.limit, 'limit') ?? 50,
      });
      ctx.io.result(ss, () =>
        ss.length
          ? table(
              ss.map((s) => ({
                id: s.id,
                status: s.status,
                mode: s.mode,
                steps: `${s.steps}/${s.maxSteps}`,
                cost: usd(s.usage.costUsd),
                title: oneLine(s.title, 60),
                created: s.createdAt.replace(/\.\d+Z$/, 'Z'),
              })),
              [
                ['id', 'id'],
                ['status', 'status'],
                ['mode', 'mode'],
                ['steps', 'steps'],
                ['cost', 'cost'],
                ['title', 'title'],
                ['created', 'created'],
              ],
            )
          : 'No agent sessions yet. Start one: fluid run "<task>" --source VM',
      );
    },
  },

  'session show': {
    summary: 'One session and its transcript.',
    usage: 'fluid session show <id> [--json]',
    run: async (ctx) => {
      const id = ctx.args[0];
      if (!id) throw new UsageError('fluid session show <id>');
      const s = await ctx.client.call('agent.sessions.get', { sessionId: id });
      const t = await ctx.client.call('agent.transcript', { sessionId: id });
      ctx.io.result({ session: s, messages: t.messages }, () =>
        [
          `${s.title}  (${s.id})`,
          `  status:   ${s.status}${s.lastError ? ` — ${s.lastError.code}: ${s.lastError.message}` : ''}`,
          `  mode:     ${s.mode}   provider: ${s.providerId}   model: ${s.model}`,
          `  about:    ${s.source ?? '-'} on ${s.host ?? '-'}`,
          `  usage:    ${s.steps}/${s.maxSteps} steps, ${s.usage.inputTokens} in / ${s.usage.outputTokens} out tokens, ${usd(s.usage.costUsd)} of ${usd(s.maxCostUsd)}`,
          `  created:  ${s.createdAt} by ${s.createdBy.door}:${s.createdBy.id}`,
          '',
          renderTranscript(t.messages),
        ].join('\n'),
      );
    },
  },

  'session sandboxes': {
    summary: 'What a session made: its sandboxes, snapshots, approvals and audit rows.',
    usage: 'fluid session sandboxes <id> [--json]',
    run: async (ctx) => {
      const id = ctx.args[0];
      if (!id) throw new UsageError('fluid session sandboxes <id>');
      const l = await ctx.client.call('agent.sessions.links', { sessionId: id, auditLimit: 20 });
      ctx.io.result(l, () =>
        [
          l.sandboxes.length
            ? table(
                l.sandboxes.map((s) => ({
                  name: s.name,
                  state: s.state,
                  host: s.hostName,
                  source: s.sourceName,
                  id: s.id,
                })),
                [
                  ['name', 'name'],
                  ['state', 'state'],
                  ['host', 'host'],
                  ['source', 'source'],
                  ['id', 'id'],
                ],
              )
            : 'No sandboxes.',
          ...l.snapshots.map((s) => `snapshot ${s.name} of ${s.sandboxName}`),
          ...l.approvals.map(
            (a) => `approval ${a.status}: ${a.title}${a.sandboxName ? ` (${a.sandboxName})` : ''}`,
          ),
          `${l.auditTotal} audit rows (fluid audit list)`,
        ].join('\n'),
      );
    },
  },

  'session destroy-sandboxes': {
    summary: 'Destroy the sandboxes a session made (--keep NAME keeps one).',
    usage: 'fluid session destroy-sandboxes <id> [--keep NAME]... [--json]',
    options: { keep: { type: 'string', multiple: true } },
    run: async (ctx) => {
      const id = ctx.args[0];
      if (!id) throw new UsageError('fluid session destroy-sandboxes <id>');
      const r = await ctx.client.call('agent.sessions.destroySandboxes', {
        sessionId: id,
        keep: (ctx.values.keep as string[] | undefined) ?? [],
      });
      ctx.io.result(r, () =>
        [
          ...r.destroyed.map((d) => `destroyed ${d.name}`),
          ...r.kept.map((d) => `kept ${d.name}`),
          ...r.failed.map((f) => `could not destroy ${f.name}: ${f.error}`),
          r.destroyed.length + r.kept.length + r.failed.length ? '' : 'The session has no live sandboxes.',
        ]
          .filter(Boolean)
          .join('\n'),
      );
      return r.failed.length ? 1 : 0;
    },
  },

  'session stop': {
    summary: 'Stop a running session (also one run by another Fluid process).',
    usage: 'fluid session stop <id>',
    run: async (ctx) => {
      const id = ctx.args[0];
      if (!id) throw new UsageError('fluid session stop <id>');
      const s = await ctx.client.call('agent.stop', { sessionId: id });
      ctx.io.result(s, () => `Session ${s.id}: ${s.status}.`);
      if (s.status === 'running' || s.status === 'waiting-approval')
        throw new FluidError('TIMEOUT', 'The session did not stop in time; its process may be busy.');
    },
  },
};
