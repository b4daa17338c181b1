/**
 * Human presence in the window. A guarded call (approving a high-risk request, loosening settings,
 * new egress, managing keys) that the backend refuses with `data.presence` is run once more with a
 * proof: the enrolled security key (WebAuthn, a challenge bound to exactly this call) or, while no key
 * is enrolled, an explicit confirmation in a dialog that names what is being confirmed.
 */
import { startAuthentication } from '@simplewebauthn/browser';
import { create } from 'zustand';
import type { GuardedMember, PresenceProof, PresenceRequirement } from '../../../shared/contract/presence.ts';
import { FluidError } from '../../../shared/errors.ts';
import { rpc } from '../stores/connection.ts';

interface Pending {
  what: string;
  resolve: (ok: boolean) => void;
}

/** The confirmation the dialog is showing, if any. */
export const usePresencePrompt = create<{ pending: Pending | null }>(() => ({ pending: null }));

/** Ask the person, in the window, to confirm `what`. */
export function confirmInWindow(what: string): Promise<boolean> {
  return new Promise((resolve) => {
    usePresencePrompt.getState().pending?.resolve(false);
    usePresencePrompt.setState({
      pending: {
        what,
        resolve: (ok) => {
          usePresencePrompt.setState({ pending: null });
          resolve(ok);
        },
      },
    });
  });
}

export function presenceRequirement(err: unknown): PresenceRequirement | null {
  const data = (err as { code?: unknown; data?: { presence?: PresenceRequirement } } | null)?.data;
  if ((err as { code?: unknown } | null)?.code !== 'DENIED' || !data?.presence) return null;
  return Array.isArray(data.presence.methods) ? data.presence : null;
}

/** Browsers refuse WebAuthn on IP addresses and file:// pages. */
export const webAuthnUsable = (): boolean =>
  typeof window.PublicKeyCredential === 'function' &&
  location.protocol.startsWith('http') &&
  !/^[\d.]+$|^\[/.test(location.hostname);

/** Run the ceremony the requirement asks for; null when the person cancelled. */
export async function prove(
  need: PresenceRequirement,
  member: GuardedMember,
  input: Record<string, unknown>,
): Promise<PresenceProof | null> {
  if (need.methods.includes('webauthn')) {
    if (!webAuthnUsable())
      throw new FluidError(
        'UNAVAILABLE',
        `To ${need.what}, your security key is needed, and this page cannot ask for it: open Fluid at http://localhost:${location.port}/.`,
      );
    const { challengeId, options } = await rpc().call('presence.challenge', { member, input });
    try {
      const response = await startAuthentication({ optionsJSON: options as never });
      return { kind: 'webauthn', challengeId, response: response as unknown as Record<string, unknown> };
    } catch (err) {
      if (err instanceof Error && err.name === 'NotAllowedError') return null;
      throw err;
    }
  }
  if (need.methods.includes('confirm'))
    return (await confirmInWindow(need.what)) ? { kind: 'confirm' } : null;
  return null;
}

/**
 * Call a guarded member; when it needs presence, prove it and call again. A cancelled ceremony
 * throws CANCELLED (nothing changed).
 */
export async function withPresence<T>(
  member: GuardedMember,
  input: Record<string, unknown>,
  run: (presence?: PresenceProof) => Promise<T>,
): Promise<T> {
  try {
    return await run(undefined);
  } catch (err) {
    const need = presenceRequirement(err);
    if (!need || !need.methods.length) throw err;
    const proof = await prove(need, member, input);
    if (!proof) throw new FluidError('CANCELLED', 'Not confirmed; nothing changed.');
    return run(proof);
  }
}
