// `forewarn demo --logs pretty`: a JSON log line, already masked by the logger, as one readable line.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { prettyLogLine, prettyLogStream } from '../../lib/pretty-logs.ts';

describe('prettyLogLine', () => {
  it('shows time, level, component and message, then the other fields', () => {
    const line = JSON.stringify({
      level: 'warn',
      time: '2026-12-07T12:00:05.123Z',
      pid: 7,
      component: 'delivery',
      code: 'FW_DELIVERY_RETRYABLE',
      attempt: 2,
      msg: 'send failed',
    });
    expect(prettyLogLine(line)).toBe(
      '12:00:05 WARN  delivery: send failed code=FW_DELIVERY_RETRYABLE attempt=2\n',
    );
  });

  it('keeps a line that is not JSON as it is', () => {
    expect(prettyLogLine('not json')).toBe('not json\n');
  });

  it('prints what the logger masked, masked', async () => {
    const out: string[] = [];
    const logger = createLogger({
      destination: prettyLogStream({ write: (s: string) => out.push(s) } as never),
    });
    logger.info({ component: 'demo', email: 'li.wei@example.com' }, 'told li.wei@example.com');
    await new Promise<void>((done) => logger.flush(() => done()));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d INFO  demo: told /);
    expect(out[0]).not.toContain('li.wei@example.com');
  });
});
