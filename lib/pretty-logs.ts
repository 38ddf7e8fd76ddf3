// Log lines for a person at a terminal (`forewarn demo --logs pretty`): each JSON line that the
// logger has already masked becomes "12:00:05 WARN  component: message key=value ...". The
// masking runs before (lib/logger.ts, on the finished line), so nothing here can unmask anything.
import { Writable } from 'node:stream';

const SKIPPED = new Set(['level', 'time', 'pid', 'msg', 'component']);

/** One JSON log line as a readable line; a line that is not JSON is kept as it is. */
export function prettyLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = String(entry.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const component = entry.component ? `${String(entry.component)}: ` : '';
  const fields = Object.entries(entry)
    .filter(([key]) => !SKIPPED.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${time} ${level} ${component}${String(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}

/** A destination for createLogger that writes prettyLogLine of each line to `out`. */
export function prettyLogStream(out: NodeJS.WritableStream): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line) out.write(prettyLogLine(line));
      done();
    },
  });
}
