/**
 * Imported first by main.tsx, before any contract schema is built: zod compiles fast-path parsers with
 * `new Function`, which the page's CSP (script-src 'self', no 'unsafe-eval') forbids; even its probe is
 * reported as a violation. Jitless mode validates the same, without eval.
 */
import { config } from 'zod';

config({ jitless: true });
