// What the HTTP role's routes are given: forewarn's database (writes), the platform's (reads, maybe
// another server: never joined with forewarn's tables), the link keys and a clock.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';
import type { EmailSender } from '../channels/email.ts';
import type { Queues } from '../queue/queues.ts';
import type { Pool } from '../db/pool.ts';
import type { LinkKeyring } from '../links.ts';
import type { Logger } from '../logger.ts';

export interface HttpDeps {
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  /** Verifies the tokens of signed links (FOREWARN_LINK_SECRET and FOREWARN_LINK_SECRETS_OLD). */
  linkKeys: LinkKeyring;
  logger: Logger;
  /** The preferences API's bearer token (FOREWARN_API_TOKEN); unset, the API refuses every call. */
  apiToken?: string | undefined;
  /** Ops tools' token (FOREWARN_ADMIN_TOKEN, lib/http/auth.ts adminMatches); unset, they refuse every call. */
  adminToken?: string | undefined;
  /**
   * The live config. The daemon always gives it; a server built without it (tests of other
   * routes) serves no route that needs it (the channel-status API).
   */
  config?: (() => Config) | undefined;
  /**
   * forewarn's BullMQ queues, for the queue dashboard. The daemon always gives them; a server
   * built without them (tests of other routes) has no dashboard.
   */
  queues?: Queues | undefined;
  /**
   * The template studio at /admin/studio: the templates the daemon renders, its email sender and
   * its config (the test-send allow-list). Absent: no studio routes.
   */
  studio?: { templatesDir: string; email: () => EmailSender; config: () => Config } | undefined;
  /** The daemon's Redis connection, for /readyz. Absent: /readyz answers 503 naming it. */
  redis?: Redis | undefined;
  /** Epoch ms; tokens expire by it. */
  now: () => number;
}

/** One concern's routes, and the parts (lib/env.ts PRODUCTION_REQUIREMENTS) they stand for. */
export interface HttpRoutes {
  /** `http:<path>`: what a production requirement names when one of these routes needs it. */
  parts: readonly string[];
  register(server: FastifyInstance, deps: HttpDeps): void;
}
