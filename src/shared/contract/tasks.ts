import { z } from 'zod';
import { call, event, stream } from '../rpc.ts';
import { ErrorPayloadSchema, Id, IsoDate } from './common.ts';

export const TaskStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export const TERMINAL_TASK_STATUSES = ['succeeded', 'failed', 'cancelled', 'interrupted'] as const;

export const TaskSchema = z.object({
  id: Id,
  kind: z.string(),
  title: z.string(),
  target: z.string().nullable(),
  status: TaskStatus,
  /** 0..1, or null when the amount of work is unknown. */
  progress: z.number().min(0).max(1).nullable(),
  message: z.string(),
  cancellable: z.boolean(),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  finishedAt: IsoDate.nullable(),
  result: z.unknown().nullable(),
  error: ErrorPayloadSchema.nullable(),
});
export type Task = z.infer<typeof TaskSchema>;

export const tasksContract = {
  'tasks.list': call(
    z.object({
      status: TaskStatus.optional(),
      kind: z.string().optional(),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    z.array(TaskSchema),
    'Recent tasks, newest first.',
  ),
  'tasks.get': call(z.object({ id: Id }), TaskSchema, 'One task with its persisted outcome.'),
  'tasks.cancel': call(z.object({ id: Id }), TaskSchema, 'Ask a running task to stop.'),
  'tasks.watch': stream(
    z.object({ id: Id }),
    TaskSchema,
    'The task now, then every change until it finishes.',
  ),
  'tasks.changed': event(TaskSchema, 'A task was created, progressed or finished.'),
};
