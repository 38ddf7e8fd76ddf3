// Errors of long-lived connections (Redis clients and BullMQ's, PostgreSQL pools, the SMTP pool),
// as log lines: one JSON line per connection and error code per interval, with a count of the
// repeats left out, and one line when the server answers again. A restarting Redis makes every
// client fail once or twice a second until it is back; each of those must not be a line, and none
// may reach stderr as anything but JSON (a BullMQ queue without an error listener prints raw
// stack traces, an ioredis client without one prints "Unhandled error event").
import type { Logger } from './logger.ts';

export type Service = 'redis' | 'postgres' | 'smtp';

const SERVICE_NAMES: Record<Service, string> = { redis: 'Redis', postgres: 'PostgreSQL', smtp: 'SMTP' };

/** Repeats of one connection's error code within this long are counted, not logged. */
export const CONNECTION_ERROR_INTERVAL_MS = 30_000;

export interface Connection {
  service: Service;
  /** Which of the process's connections, e.g. "worker:detection". */
  name: string;
  /** host:port (never credentials): one connection answering again says so for all of that server's. */
  server: string;
}

export interface ConnectionErrorLog {
  /** Logs the error, unless one of the same connection and code was logged within the interval. */
  report(connection: Connection, error: unknown): void;
  /**
   * `connection` works again, so its server answers: one line with the errors of that server's
   * connections that were counted and not logged, when an error line was written since the last
   * such line. The interval still holds: a server that keeps flapping is one error line and one of
   * these per connection and code per interval, whatever it does in between.
   */
  restored(connection: Connection): void;
  /** Reports every 'error' event of `emitter`; `restoredOn` is its event for a working connection. */
  watch(emitter: Emitter, connection: Connection, restoredOn?: string): void;
}

export interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface Entry {
  connection: Connection;
  /** When the last line for this connection and code was written. */
  loggedAt: number;
  /** Errors counted and not logged since the last line about them. */
  suppressed: number;
  /** An error line was written since the last "answers again" line. */
  reported: boolean;
}

/** Distinct (connection, code) pairs remembered; errors without a code are keyed by message. */
const MAX_ENTRIES = 500;

export function connectionErrorLog(
  logger: Logger,
  options: { intervalMs?: number; now?: () => number } = {},
): ConnectionErrorLog {
  const intervalMs = options.intervalMs ?? CONNECTION_ERROR_INTERVAL_MS;
  const now = options.now ?? Date.now;
  const log = logger.child({ component: 'connection' });
  const entries = new Map<string, Entry>();
  // BullMQ forwards the errors of a shared ioredis client through every queue that uses it: the
  // same error object arrives several times and is one event.
  const seen = new WeakSet<object>();
  const sameServer = (a: Connection, b: Connection) => a.service === b.service && a.server === b.server;

  const self: ConnectionErrorLog = {
    report(connection, error) {
      if (typeof error === 'object' && error !== null) {
        if (seen.has(error)) return;
        seen.add(error);
      }
      const code = codeOf(error);
      const what = code ?? messageOf(error);
      const key = `${connection.service}\u0000${connection.name}\u0000${what}`;
      const at = now();
      let entry = entries.get(key);
      if (entry && at - entry.loggedAt < intervalMs) {
        entry.suppressed++;
        return;
      }
      const { service, name, server } = connection;
      log.warn(
        { service, connection: name, server, code, suppressed: entry?.suppressed ?? 0, err: error },
        `${SERVICE_NAMES[service]} connection ${name} to ${server}: ${what}; ` +
          `repeats within ${intervalMs / 1000} s are counted, not logged`,
      );
      if (!entry) {
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
        entry = { connection, loggedAt: at, suppressed: 0, reported: true };
        entries.set(key, entry);
      }
      Object.assign(entry, { loggedAt: at, suppressed: 0, reported: true });
    },
    restored(connection) {
      const ofServer = [...entries.values()].filter((entry) => sameServer(entry.connection, connection));
      if (!ofServer.some((entry) => entry.reported)) return;
      const suppressed = ofServer.reduce((sum, entry) => sum + entry.suppressed, 0);
      const names = [
        ...new Set(ofServer.filter((e) => e.reported || e.suppressed > 0).map((e) => e.connection.name)),
      ];
      for (const entry of ofServer) Object.assign(entry, { suppressed: 0, reported: false });
      const { service, name, server } = connection;
      log.info(
        { service, connection: name, server, suppressed, connections: names },
        `${SERVICE_NAMES[service]} at ${server} answers again (${name}); ` +
          `${suppressed} repeated error(s) of its connections were counted, not logged`,
      );
    },
    watch(emitter, connection, restoredOn) {
      emitter.on('error', (error: unknown) => self.report(connection, error));
      if (restoredOn) emitter.on(restoredOn, () => self.restored(connection));
    },
  };
  return self;
}

export interface PoolEmitter extends Emitter {
  on(event: 'connect', listener: (client: Emitter) => void): unknown;
}

/**
 * A pg pool's connection errors. The pool reports those of idle clients, but a checked-out
 * client has no listener of the pool's, and one whose connection dies then (a PostgreSQL
 * restart, pg_terminate_backend) would end the process with an unhandled 'error'. With a
 * listener, its query fails (the job is retried) and the error is one rate-limited line; a new
 * connection says the server is back.
 */
export function watchPool(log: ConnectionErrorLog, pool: PoolEmitter, connection: Connection): void {
  log.watch(pool, connection, 'connect');
  pool.on('connect', (client) => log.watch(client, connection));
}

/** A connection named for its log lines, to the server of `url` (host:port, never credentials). */
export function connectionTo(service: Service, name: string, url: string): Connection {
  let server: string;
  try {
    server = new URL(url).host || '(no host)';
  } catch {
    server = '(unparseable URL)';
  }
  return { service, name, server };
}

function codeOf(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : null;
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // A key, not a report: a long message with a variable tail must not make each error a new key.
  return message.slice(0, 120);
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** A lost or refused connection (socket codes, ioredis' "Connection is closed."), not a failed command. */
export function isConnectionError(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== null && CONNECTION_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return message === 'Connection is closed.' || /\bECONNREFUSED\b/.test(message);
}
