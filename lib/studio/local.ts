// `forewarn templates studio`: the studio as a server of its own on a checkout, with save. It
// binds to 127.0.0.1 unless told otherwise and asks for no token: whoever can reach it can edit
// the checkout's files, as they could with an editor.
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { EmailSender } from '../channels/email.ts';
import { ForewarnError } from '../errors.ts';
import { addSecurityHeaders } from '../http/security.ts';
import type { Logger } from '../logger.ts';
import { registerStudio } from './routes.ts';

export interface LocalStudioOptions {
  dir: string;
  host: string;
  port: number;
  logger: Logger;
  /** Read per test send, so a test can change them. */
  testSend: () => { allow: readonly string[]; sender: EmailSender; messageIdDomain: string };
}

export interface RunningStudio {
  /** e.g. http://127.0.0.1:8788 */
  address: string;
  close(): Promise<void>;
}

export async function startLocalStudio(options: LocalStudioOptions): Promise<RunningStudio> {
  const server = Fastify({
    loggerInstance: options.logger.child({ component: 'studio' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  });
  addSecurityHeaders(server);
  registerStudio(server, { base: '', dir: options.dir, readOnly: false, testSend: options.testSend });
  let address: string;
  try {
    address = await server.listen({ host: options.host, port: options.port });
  } catch (error) {
    await server.close().catch(() => undefined);
    throw new ForewarnError(
      'FW_HTTP_LISTEN',
      `the template studio cannot listen on ${options.host}:${options.port} (--host, --port): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { address, close: () => server.close() };
}
