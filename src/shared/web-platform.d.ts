/**
 * The few web-platform globals the contract layer uses. They exist in browsers, Electron and Node;
 * declared here because src/shared is type-checked without DOM or Node typings.
 */
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
declare function queueMicrotask(callback: () => void): void;
declare function structuredClone<T>(value: T): T;
