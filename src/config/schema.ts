/* eslint-disable no-control-regex -- names must be checked for control characters */
import { z } from 'zod';

/** Per-account operations; each FTP command needs one of them (see ftp/permissions). */
export const PERMISSIONS = ['list', 'read', 'write', 'delete', 'rename', 'mkdir'] as const;
export type Permission = (typeof PERMISSIONS)[number];

const port = z.number().int().min(0).max(65535);

export const accountSchema = z.strictObject({
  username: z.string().min(1).regex(/^[^\s\x00-\x1f\x7f]+$/, 'must not contain spaces or control characters'),
  passwordHash: z
    .string()
    .regex(/^\$(2[aby]\$\d\d\$.{53}|argon2id\$.+)$/, 'must be a bcrypt ($2b$...) or argon2id ($argon2id$...) hash'),
  bucket: z.string().min(3).max(63),
  prefix: z
    .string()
    .default('')
    .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), 'must be "" or end with "/" and not start with "/"')
    .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must not contain control characters'),
  permissions: z.array(z.enum(PERMISSIONS)).default([...PERMISSIONS]),
});
export type AccountConfig = z.infer<typeof accountSchema>;

export const configSchema = z.strictObject({
  ftp: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(2121),
      passive: z
        .strictObject({
          /** Address announced in PASV replies; omitted: the address the client connected to. */
          address: z.string().min(1).optional(),
          portMin: port.default(30000),
          portMax: port.default(30049),
        })
        .prefault({})
        .refine((p) => p.portMin <= p.portMax, 'portMin must be <= portMax'),
      greeting: z.string().default('ftp-s3-bridge ready'),
      /** Every failed login answers after this delay, whatever the reason (unknown user or bad password). */
      loginFailureDelayMs: z.number().int().min(0).max(60_000).default(1000),
      /** RNFR/RNTO of a directory copies every object under it; refused above this count. */
      renameDirectoryMaxObjects: z.number().int().min(1).default(1000),
      dataConnectionTimeoutSeconds: z.number().positive().default(30),
    })
    .prefault({}),
  s3: z
    .strictObject({
      endpoint: z.url().optional(),
      region: z.string().default('us-east-1'),
      forcePathStyle: z.boolean().default(false),
      credentials: z
        .strictObject({
          accessKeyId: z.string().min(1),
          secretAccessKey: z.string().min(1),
          sessionToken: z.string().optional(),
        })
        .optional(),
      partSizeMiB: z.number().int().min(5).max(5120).default(8),
      queueSize: z.number().int().min(1).max(64).default(4),
      maxAttempts: z.number().int().min(1).max(20).default(5),
      /**
       * Checksum behaviour of the AWS SDK. `WHEN_SUPPORTED` (the SDK default) sends CRC32 trailers
       * that many S3-compatible stores reject or store inside the object; `WHEN_REQUIRED` is the safe
       * choice for them. Omitted: WHEN_SUPPORTED for AWS, WHEN_REQUIRED when `endpoint` is set.
       */
      requestChecksumCalculation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
      responseChecksumValidation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
    })
    .prefault({}),
  accounts: z.array(accountSchema).min(1, 'at least one account is required'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      pretty: z.boolean().default(false),
    })
    .prefault({}),
});

export type BridgeConfig = z.infer<typeof configSchema>;
export type BridgeConfigInput = z.input<typeof configSchema>;
