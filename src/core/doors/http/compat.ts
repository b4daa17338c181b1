/**
 * The original product's request and response shapes, where its documented calls differ from the
 * contract's: creating a sandbox (`{source_vm_name, cpu, memory_mb, ttl_seconds, auto_start,
 * wait_for_ip}` → 201 `{sandbox, ip_address}`) and running a command (`{command, timeout_sec, env}` →
 * `{command: {...}}`). Both are adapters over the same members (sandboxes.create, tasks.watch,
 * sandboxes.exec), so policy and audit are the contract's.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { SandboxSchema, type Sandbox } from '../../../shared/contract/sandboxes.ts';
import type { Contract } from '../../../shared/contract/index.ts';
import type { Task } from '../../../shared/contract/tasks.ts';
import { FluidError } from '../../../shared/errors.ts';
import type { RpcClient } from '../../../shared/rpc.ts';

export const CompatCreateSandboxSchema = z.object({
  source_vm_name: z.string().min(1).max(256).describe('The source VM to clone'),
  agent_id: z.string().max(256).optional().describe('Accepted for compatibility; the token names the agent'),
  host: z.string().min(1).max(128).optional(),
  cpu: z.number().int().min(1).max(64).optional(),
  memory_mb: z.number().int().min(256).max(262144).optional(),
  ttl_seconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .optional(),
  auto_start: z.boolean().default(true).describe('false: the sandbox is shut down once created'),
  wait_for_ip: z
    .boolean()
    .default(false)
    .describe('Accepted for compatibility: the answer always comes once the sandbox is ready'),
});

export const CompatCreateSandboxResponseSchema = z.object({
  sandbox: SandboxSchema,
  ip_address: z.string().nullable(),
});

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a shell variable name');

export const CompatCommandSchema = z.object({
  command: z
    .string()
    .min(1)
    .max(1024 * 1024),
  timeout_sec: z
    .number()
    .int()
    .min(1)
    .max(24 * 3600)
    .optional(),
  env: z.record(EnvName, z.string().max(64 * 1024)).optional(),
});

export const CompatCommandResponseSchema = z.object({
  command: z.object({
    id: z.string(),
    sandbox_id: z.string(),
    command: z.string(),
    stdout: z.string(),
    stderr: z.string(),
    exit_code: z.number().int().nullable(),
    started_at: z.string(),
    ended_at: z.string(),
    truncated: z.boolean(),
    timed_out: z.boolean(),
  }),
});

/** The original body, recognised by its required field. */
export const isCompatCreate = (body: unknown): boolean =>
  !!body && typeof body === 'object' && 'source_vm_name' in body;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function finish(client: RpcClient<Contract>, task: Task, signal: AbortSignal): Promise<Task> {
  let last = task;
  try {
    for await (const t of client.stream('tasks.watch', { id: task.id }, { signal })) last = t;
  } catch (err) {
    if (signal.aborted) await client.call('tasks.cancel', { id: task.id }).catch(() => {});
    throw err;
  }
  if (signal.aborted) {
    // the caller went away: nobody will use the sandbox, so the creation stops and cleans up
    await client.call('tasks.cancel', { id: task.id }).catch(() => {});
    throw new FluidError('CANCELLED', 'The request was closed before the sandbox was ready.');
  }
  return last;
}

export async function compatCreateSandbox(
  client: RpcClient<Contract>,
  body: unknown,
  signal: AbortSignal,
): Promise<z.output<typeof CompatCreateSandboxResponseSchema>> {
  const parsed = CompatCreateSandboxSchema.safeParse(body);
  if (!parsed.success)
    throw new FluidError(
      'VALIDATION',
      `Invalid input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const i = parsed.data;
  const task = await client.call(
    'sandboxes.create',
    {
      source: i.source_vm_name,
      host: i.host,
      vcpus: i.cpu,
      memoryMiB: i.memory_mb,
      ttlMinutes: i.ttl_seconds === undefined ? undefined : Math.ceil(i.ttl_seconds / 60),
    },
    { signal },
  );
  const done = await finish(client, task, signal);
  if (done.status !== 'succeeded') {
    const e = done.error ?? {
      code: 'INTERNAL' as const,
      message: `The sandbox was not created (${done.status}).`,
    };
    throw new FluidError(e.code, e.message, e.data);
  }
  let sandbox = done.result as Sandbox;
  if (!i.auto_start) sandbox = await client.call('sandboxes.stop', { sandbox: sandbox.id }, { signal });
  return { sandbox, ip_address: sandbox.ip };
}

export async function compatCommand(
  client: RpcClient<Contract>,
  sandbox: string,
  body: unknown,
  signal: AbortSignal,
): Promise<z.output<typeof CompatCommandResponseSchema>> {
  const parsed = CompatCommandSchema.safeParse(body);
  if (!parsed.success)
    throw new FluidError(
      'VALIDATION',
      `Invalid input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const i = parsed.data;
  const env = Object.entries(i.env ?? {})
    .map(([k, v]) => `export ${k}=${quote(v)}\n`)
    .join('');
  const started = new Date();
  const r = await client.call(
    'sandboxes.exec',
    { sandbox, command: env + i.command, timeoutSeconds: i.timeout_sec },
    { signal },
  );
  const sb = await client.call('sandboxes.get', { sandbox });
  return {
    command: {
      id: randomUUID(),
      sandbox_id: sb.id,
      command: i.command,
      stdout: r.stdout,
      stderr: r.stderr,
      exit_code: r.exitCode,
      started_at: started.toISOString(),
      ended_at: new Date(started.getTime() + Math.round(r.durationMs)).toISOString(),
      truncated: r.truncated,
      timed_out: r.timedOut,
    },
  };
}
