/**
 * Commands, terminals and the serial console of a sandbox as server-side objects: they belong to the
 * backend, not to the page or socket that started them, so a reload or a dropped connection loses
 * nothing. Each keeps its newest output (bounded) and is re-attached from an offset; what no longer
 * fits is counted and shown as dropped. Durations come from the backend's clock.
 */
import { z } from 'zod';
import { call, event, stream } from '../rpc.ts';
import { ActorSchema, ErrorPayloadSchema, ExecLimits, Id, IsoDate } from './common.ts';

const SandboxRef = z.string().min(1).max(128).describe('A sandbox id or name');
/** A byte position in an output stream: attach from the `offset` of the last chunk you have. */
const Offset = z.number().int().min(0).default(0);

export const RunStatus = z.enum(['running', 'exited', 'failed', 'cancelled', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatus>;

export const RunSchema = z.object({
  id: Id,
  sandboxId: Id,
  sandboxName: z.string(),
  command: z.string(),
  /**
   * `run`: started with sandboxes.runStart, it belongs to the backend and outlives the page that
   * started it; `exec`: a caller waits for it (sandboxes.exec / execStream, the agent's run_command)
   * and it ends with that caller.
   */
  origin: z.enum(['run', 'exec']),
  startedBy: ActorSchema,
  status: RunStatus,
  startedAt: IsoDate,
  endedAt: IsoDate.nullable(),
  /** Measured by the backend: so far while it runs, the whole run once it ended. Never negative. */
  durationMs: z.number().int().min(0),
  timeoutSeconds: z.number().int(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  /** The command's output went over its limit (the result kept the first part). */
  truncated: z.boolean(),
  stdoutBytes: z.number().int().min(0),
  stderrBytes: z.number().int().min(0),
  /** Output that no longer fits the kept window (the newest part is kept). */
  droppedBytes: z.number().int().min(0),
  error: ErrorPayloadSchema.nullable(),
  /** This backend holds it live; false: it runs in (or ended with) another Fluid process. */
  live: z.boolean(),
  /** The owning process, while it runs. */
  ownerPid: z.number().int().nullable(),
});
export type Run = z.infer<typeof RunSchema>;

export const RunItemSchema = z.discriminatedUnion('kind', [
  /** First: the run as it is now. */
  z.object({ kind: z.literal('run'), run: RunSchema }),
  /** Output before the kept window (or before the offset asked for) that is gone: how many bytes. */
  z.object({ kind: z.literal('dropped'), bytes: z.number().int().min(0) }),
  /** A chunk of output; `offset` is the position after it (attach from there to continue). */
  z.object({ kind: z.literal('stdout'), data: z.string(), offset: z.number().int() }),
  z.object({ kind: z.literal('stderr'), data: z.string(), offset: z.number().int() }),
  /** Last: how it ended. */
  z.object({ kind: z.literal('exit'), run: RunSchema }),
]);
export type RunItem = z.infer<typeof RunItemSchema>;

export const TerminalSchema = z.object({
  id: Id,
  sandboxId: Id,
  sandboxName: z.string(),
  openedBy: ActorSchema,
  status: z.enum(['open', 'exited']),
  openedAt: IsoDate,
  endedAt: IsoDate.nullable(),
  /** Why it ended: the shell exited, a person closed it, nobody attached for too long, the sandbox stopped. */
  endReason: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  cols: z.number().int(),
  rows: z.number().int(),
  /** Pages attached right now. */
  attached: z.number().int().min(0),
  /** While nobody is attached: when it closes by itself (the idle setting). */
  idleClosesAt: IsoDate.nullable(),
  outputBytes: z.number().int().min(0),
  droppedBytes: z.number().int().min(0),
});
export type Terminal = z.infer<typeof TerminalSchema>;

export const TerminalItemSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('terminal'), terminal: TerminalSchema }),
  z.object({ kind: z.literal('dropped'), bytes: z.number().int().min(0) }),
  z.object({ kind: z.literal('data'), data: z.string(), offset: z.number().int() }),
  z.object({ kind: z.literal('exit'), terminal: TerminalSchema }),
]);
export type TerminalItem = z.infer<typeof TerminalItemSchema>;

export const ConsoleItemSchema = z.discriminatedUnion('kind', [
  /** First: where the log is and whether keys can be sent (the domain runs). */
  z.object({
    kind: z.literal('console'),
    logPath: z.string(),
    logBytes: z.number().int().min(0),
    running: z.boolean(),
  }),
  z.object({ kind: z.literal('dropped'), bytes: z.number().int().min(0) }),
  z.object({ kind: z.literal('data'), data: z.string(), offset: z.number().int() }),
]);
export type ConsoleItem = z.infer<typeof ConsoleItemSchema>;

const Command = z
  .string()
  .min(1)
  .max(1024 * 1024);
const Cols = z.number().int().min(10).max(1000);
const Rows = z.number().int().min(5).max(500);

export const runsContract = {
  'sandboxes.runStart': call(
    z.object({
      sandbox: SandboxRef,
      command: Command,
      ...ExecLimits,
    }),
    RunSchema,
    'Start a command as root in the sandbox, owned by the backend: it goes on when the page reloads or the connection drops. Follow it with sandboxes.runAttach.',
  ),
  'sandboxes.runAttach': stream(
    z.object({ run: Id, offset: Offset }),
    RunItemSchema,
    "A run's output from an offset (0: everything still kept; earlier output shows as dropped), then live until it ends.",
  ),
  'sandboxes.runs': call(
    z.object({
      sandbox: SandboxRef.optional(),
      limit: z.number().int().min(1).max(500).default(50),
    }),
    z.array(RunSchema),
    'Commands run in a sandbox (or in all), from any door, newest first.',
  ),
  'sandboxes.runCancel': call(z.object({ run: Id }), RunSchema, 'Kill a running command.'),
  'sandboxes.runChanged': event(
    z.object({ runId: Id, sandboxId: Id, status: RunStatus }),
    'A command started or ended in a sandbox (from any door).',
  ),

  'sandboxes.terminalOpen': call(
    z.object({ sandbox: SandboxRef, cols: Cols.default(120), rows: Rows.default(32) }),
    TerminalSchema,
    'Open a shell (PTY) in the sandbox that belongs to the backend, like a tmux session: it survives the page; attach with sandboxes.terminalAttach, end it with sandboxes.terminalClose. Unattached, it closes after the sandboxes.terminalIdleMinutes setting. A person only.',
  ),
  'sandboxes.terminalAttach': stream(
    z.object({ terminal: Id, offset: Offset }),
    TerminalItemSchema,
    "A terminal's output from an offset (its scrollback first), then live; the terminal stays open when you stop watching.",
  ),
  'sandboxes.terminalInput': call(
    z.object({
      terminal: Id,
      data: z
        .string()
        .max(1024 * 1024)
        .optional(),
      cols: Cols.optional(),
      rows: Rows.optional(),
    }),
    z.object({ ok: z.literal(true) }),
    'Keys for a terminal, and/or its new size.',
  ),
  'sandboxes.terminalClose': call(
    z.object({ terminal: Id }),
    TerminalSchema,
    'End a terminal (its shell exits).',
  ),
  'sandboxes.terminals': call(
    z.object({ sandbox: SandboxRef.optional(), includeEnded: z.boolean().default(false) }),
    z.array(TerminalSchema),
    "This backend's terminals (of a sandbox, or all), newest first.",
  ),

  'sandboxes.console': stream(
    z.object({ sandbox: SandboxRef, offset: Offset }),
    ConsoleItemSchema,
    "The sandbox's serial console: its log from an offset, then live. For when SSH inside the guest is broken. A person only.",
  ),
  'sandboxes.consoleInput': call(
    z.object({
      sandbox: SandboxRef,
      data: z
        .string()
        .min(1)
        .max(64 * 1024),
    }),
    z.object({ ok: z.literal(true) }),
    "Type into the sandbox's serial console (virsh console through the host). A person only.",
  ),
};
