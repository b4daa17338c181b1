/**
 * Human presence on the CLI: a confirmation typed on an interactive terminal. A process without a
 * terminal (a script, an agent's shell) cannot give one; `--yes` works without a terminal only while a
 * person has allowed unattended decisions (approvals.allowUnattendedCli).
 */
import { createInterface } from 'node:readline/promises';
import type { PresenceProof, PresenceRequirement } from '../shared/contract/presence.ts';
import { FluidError } from '../shared/errors.ts';
import type { Ctx } from './command.ts';

/** The CLI runs on a terminal a person can type into (stdin and stderr are TTYs). */
export const isInteractive = (): boolean => !!process.stdin.isTTY && !!process.stderr.isTTY;

/** The presence requirement a guarded call answered with, if that is why it failed. */
export function presenceRequirement(err: unknown): PresenceRequirement | null {
  if (!(err instanceof FluidError) || err.code !== 'DENIED') return null;
  const p = (err.data as { presence?: PresenceRequirement } | undefined)?.presence;
  return p && Array.isArray(p.methods) ? p : null;
}

/**
 * Ask the person at the terminal to type a word. Resolves true only for exactly that word; anything
 * else (or end of input) is a no. Never called without a terminal.
 */
export async function confirmOnTerminal(question: string, word: string): Promise<boolean> {
  if (!isInteractive()) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await rl.question(`${question}\nType "${word}" to confirm (anything else cancels): `);
    return answer.trim() === word;
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

/**
 * Run a guarded call; when it asks for presence, confirm on the terminal (or use --yes where a person
 * allowed unattended decisions) and run it once more with the proof.
 */
export async function withPresence<T>(
  ctx: Ctx,
  run: (presence?: PresenceProof) => Promise<T>,
  opts: { yes?: boolean } = {},
): Promise<T> {
  try {
    return await run(undefined);
  } catch (err) {
    const need = presenceRequirement(err);
    if (!need) throw err;
    if (opts.yes && need.methods.includes('unattended')) return run({ kind: 'unattended' });
    if (!need.methods.includes('terminal')) throw err;
    if (!(await confirmOnTerminal(`You are about to ${need.what}.`, 'yes')))
      throw new FluidError('DENIED', 'Not confirmed; nothing changed.');
    ctx.io.err('  confirmed');
    return run({ kind: 'terminal' });
  }
}
