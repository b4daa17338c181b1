/**
 * Lazy entry points to Monaco (its own chunks, fetched the first time an editor opens): the core, and
 * the syntax highlighting of the file types the Files tab shows.
 */
import type * as CoreModule from './monaco.ts';
import type * as LanguagesModule from './languages.ts';

let core: Promise<typeof CoreModule> | null = null;
let languages: Promise<typeof LanguagesModule> | null = null;

export const loadMonaco = (): Promise<typeof CoreModule> => (core ??= import('./monaco.ts'));

/** The core plus Monarch grammars (no workers) for common configuration and script files. */
export const loadFileLanguages = (): Promise<typeof CoreModule & typeof LanguagesModule> =>
  Promise.all([loadMonaco(), (languages ??= import('./languages.ts'))]).then(([c, l]) => ({ ...c, ...l }));
