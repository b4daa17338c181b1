/** Hash routing: #/hosts/<id>. Links are plain anchors, so the keyboard and middle-click just work. */
import { useSyncExternalStore } from 'react';

function subscribe(cb: () => void): () => void {
  window.addEventListener('hashchange', cb);
  return () => window.removeEventListener('hashchange', cb);
}

const snapshot = () => location.hash;

export function currentPath(): string {
  return location.hash.replace(/^#\/?/, '').replace(/\/+$/, '');
}

/** The route as path segments: "#/hosts/abc" → ["hosts", "abc"]. */
export function useRoute(): string[] {
  const hash = useSyncExternalStore(subscribe, snapshot);
  const path = hash.replace(/^#\/?/, '').replace(/\/+$/, '');
  if (path.startsWith('token=')) return [];
  return path ? path.split('/').map((s) => decodeURIComponent(s)) : [];
}

export function href(...segments: string[]): string {
  return '#/' + segments.map((s) => encodeURIComponent(s)).join('/');
}

export function navigate(...segments: string[]): void {
  const next = href(...segments);
  if (location.hash !== next) location.hash = next;
}

/** Replace the current entry (no history step), e.g. for the first landing. */
export function redirect(...segments: string[]): void {
  history.replaceState(null, '', location.pathname + location.search + href(...segments));
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}
