import type { ContractDef, EventName, Payload } from '../shared/rpc.ts';
import type { Contract } from '../shared/contract/index.ts';
import type { EventSource } from './rpc/server.ts';

/** In-process pub/sub for contract events. Listeners that throw are isolated from each other. */
export class TypedEventBus<C extends ContractDef> implements EventSource<C> {
  private readonly listeners = new Map<string, Set<(p: unknown) => void>>();

  emit<K extends EventName<C>>(name: K, payload: Payload<C, K>): void {
    for (const l of this.listeners.get(name) ?? []) {
      try {
        l(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  subscribe<K extends EventName<C>>(name: K, listener: (payload: Payload<C, K>) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    const l = listener as (p: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  listenerCount(name: string): number {
    return this.listeners.get(name)?.size ?? 0;
  }
}

export class EventBus extends TypedEventBus<Contract> {}
