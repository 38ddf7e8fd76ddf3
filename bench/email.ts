// Pieces of the email benchmarks: a local SMTP sink (smtp-server that accepts and discards), a
// pump that keeps a fixed number of sends in flight, and nodemailer's pooled transport sending a
// small fixed message (context for how much a real message's size and encoding cost).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { messageIdFor } from '../lib/channels/email.ts';

/** Messages in flight at once, as a worker with that much concurrency would keep. */
const IN_FLIGHT = 50;
const MAX_CONNECTIONS = 5;
const FROM = 'Forewarn <noreply@forewarn.example.com>';

interface Sink {
  url: string;
  received(): number;
  close(): Promise<void>;
}

/** Accepts every message and drops its bytes unread: the client is what is measured. */
export async function startSink(): Promise<Sink> {
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        received += 1;
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `send(i)` for i in 0..count-1 with at most `limit` running; returns messages per second. */
export async function pump(
  count: number,
  limit: number,
  send: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return count / ((performance.now() - started) / 1000);
}

const body = (i: number) => ({
  subject: `Your order ${i} is delayed`,
  text: `Hello,\nyour order ${i} is delayed. We are on it.`,
  html: `<p>Hello,</p><p>your order <b>${i}</b> is delayed. We are on it.</p>`,
});

export async function benchRawNodemailer(count = 5_000): Promise<{ messagesPerSecond: number }> {
  const sink = await startSink();
  const transport = nodemailer.createTransport({
    pool: true,
    url: sink.url,
    maxConnections: MAX_CONNECTIONS,
    maxMessages: 100,
  });
  try {
    const messagesPerSecond = await pump(count, IN_FLIGHT, (i) =>
      transport.sendMail({
        from: FROM,
        to: `user${i}@example.com`,
        messageId: messageIdFor(`bench:raw:${i}`, 'forewarn.example.com'),
        ...body(i),
      }),
    );
    if (sink.received() !== count) throw new Error(`sink received ${sink.received()} of ${count} messages`);
    return { messagesPerSecond };
  } finally {
    transport.close();
    await sink.close();
  }
}
