import { z } from 'zod';
import { call } from '../rpc.ts';
import { ActorSchema } from './common.ts';
import { CheckStatus } from './hosts.ts';

export const DoctorCheckSchema = z.object({
  id: z.string(),
  title: z.string(),
  status: CheckStatus,
  detail: z.string(),
  advice: z.string().nullable(),
});

export const systemContract = {
  'system.info': call(
    z.object({}),
    z.object({
      version: z.string(),
      dataDir: z.string(),
      dbPath: z.string(),
      platform: z.string(),
      node: z.string(),
      pid: z.number().int(),
      actor: ActorSchema,
      schemaVersion: z.number().int(),
      /** The backend's clock: windows measure durations against it, never their own. */
      now: z.string().optional(),
    }),
    'Where this backend keeps its state, and who it thinks you are.',
  ),
  'system.doctor': call(
    z.object({}),
    z.object({ ok: z.boolean(), checks: z.array(DoctorCheckSchema) }),
    'Check the installation: runtime, data dir permissions, database, audit chain, secrets, local libvirt.',
  ),
};
