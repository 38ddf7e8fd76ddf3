// Email throughput against a local SMTP sink (smtp-server that accepts and discards): nodemailer's
// pooled transport on its own, then the same through forewarn's EmailSender, so the cost of the
// checks, classification and bookkeeping on top shows as the gap between the two figures.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { createEmailSender, messageIdFor } from '../lib/channels/email.ts';
import { createLogger } from '../lib/logger.ts';
import { figure, type BenchResult } from './support.ts';

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
async function startSink(): Promise<Sink> {
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
async function pump(count: number, limit: number, send: (i: number) => Promise<unknown>): Promise<number> {
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

export async function benchEmailSender(count = 5_000): Promise<{ messagesPerSecond: number }> {
  const sink = await startSink();
  const sender = createEmailSender({
    smtpUrl: sink.url,
    outboxDir: 'outbox',
    from: FROM,
    logger: createLogger({ level: 'silent' }),
    pool: { maxConnections: MAX_CONNECTIONS, maxMessages: 100 },
  });
  try {
    const messagesPerSecond = await pump(count, IN_FLIGHT, (i) =>
      sender.send({
        to: `user${i}@example.com`,
        messageId: messageIdFor(`bench:sender:${i}`, 'forewarn.example.com'),
        ...body(i),
      }),
    );
    if (sink.received() !== count) throw new Error(`sink received ${sink.received()} of ${count} messages`);
    return { messagesPerSecond };
  } finally {
    await sender.close();
    await sink.close();
  }
}

/** Both, in the shape bench/run.ts prints: the better of two alternating rounds each. */
export async function benchEmail(count = 5_000): Promise<BenchResult> {
  // A short warm-up, so that neither figure pays for JIT compilation alone.
  await benchRawNodemailer(500);
  await benchEmailSender(500);
  let raw = 0;
  let sender = 0;
  for (let round = 0; round < 2; round++) {
    raw = Math.max(raw, (await benchRawNodemailer(count)).messagesPerSecond);
    sender = Math.max(sender, (await benchEmailSender(count)).messagesPerSecond);
  }
  return {
    name: `email: ${count.toLocaleString('en-US')} small messages to a local SMTP sink`,
    figures: [
      figure('nodemailer pool, raw', Math.round(raw), 'msg/s'),
      figure('EmailSender', Math.round(sender), 'msg/s'),
    ],
    notes: [
      `${MAX_CONNECTIONS} pooled connections, ${IN_FLIGHT} in flight; the sink shares the process, best of 2 rounds`,
    ],
  };
}
