// A Redis of a test's own, as a child process on a free port, that the test may stop and start
// again: the shared Redis on 6379 is never restarted. Nothing is persisted (no RDB, no AOF), so a
// restart comes back empty, as a Redis without persistence does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export class RedisServer {
  readonly port: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts redis-server on a free port and resolves once it accepts connections. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts it again on the same port (after stop()). */
  async restart(): Promise<void> {
    if (this.child) throw new Error(`redis-server on ${this.port} is already running`);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('Ready to accept connections')) resolve();
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(new Error(`redis-server on ${this.port} exited (${code}):\n${output}`)),
      );
    });
  }

  /** Kills it (SIGKILL: connections drop as in a crash) and resolves once the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
