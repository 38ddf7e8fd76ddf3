// The config file: the shipped one validates, every kind of mistake is reported with its dotted
// path, line, expectation and finding, a valid config comes back deeply frozen, and overrides
// layer region < channel < pair. Variants are derived from the shipped file (which others edit),
// so no test depends on its current values or line numbers.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  lookback,
  thresholdsFor,
  type PaymentHealthOverride,
  type PaymentHealthSettings,
} from '../../detectors/payment-health/thresholds.ts';
import { loadConfigFile, parseConfigText } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { registeredDetectors } from '../../lib/detection/registry.ts';
import { ConfigError, ForewarnError, type ConfigProblem } from '../../lib/errors.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const FILE = 'variant.yaml';
/** How config errors name the registered detectors. */
const knownDetectors = registeredDetectors.map((d) => `${d.configKey} (${d.id})`).join(', ');

let shippedText: string;
let tmp: string;

beforeAll(async () => {
  shippedText = await readFile(SHIPPED, 'utf8');
  tmp = await mkdtemp(join(tmpdir(), 'forewarn-config-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** 1-based line of the first line matching `pattern`; fails the test if there is none. */
function lineMatching(text: string, pattern: RegExp): number {
  const index = text.split('\n').findIndex((line) => pattern.test(line));
  if (index < 0) throw new Error(`no line matches ${String(pattern)}`);
  return index + 1;
}

/** Replaces the first line matching `pattern` (a non-comment line) and says which line it was. */
function editLine(
  text: string,
  pattern: RegExp,
  replace: (line: string) => string,
): { text: string; line: number } {
  const lines = text.split('\n');
  const line = lineMatching(text, pattern);
  lines[line - 1] = replace(lines[line - 1]!);
  return { text: lines.join('\n'), line };
}

/** A key's line: `    confirmSeconds: 60` (not a comment that mentions it). */
function keyLine(key: string): RegExp {
  return new RegExp(`^\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`);
}

function setScalar(text: string, key: string, value: string): { text: string; line: number } {
  return editLine(text, keyLine(key), (line) => line.replace(/:.*$/, `: ${value}`));
}

/** The shipped file with structured edits, comments and layout kept. */
function withEdits(edits: Array<[path: string[], value: unknown]>, text = shippedText): string {
  const doc = parseDocument(text);
  for (const [path, value] of edits) {
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, doc.createNode(value));
  }
  return String(doc);
}

function configError(text: string, file = FILE): ConfigError {
  try {
    parseConfigText(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected the config to be refused, but it was accepted');
}

function problemAt(error: ConfigError, dotted: string): ConfigProblem {
  const problem = error.problems.find((p) => p.path.replace(/ \(line \d+\)$/, '') === dotted);
  if (!problem) {
    throw new Error(`no problem reported for ${dotted}; got ${JSON.stringify(error.problems)}`);
  }
  return problem;
}

function lineOfProblem(problem: ConfigProblem): number | undefined {
  const match = / \(line (\d+)\)$/.exec(problem.path) ?? /^line (\d+)$/.exec(problem.path);
  return match ? Number(match[1]) : undefined;
}

/** The message line for a problem, exactly as documented in docs/errors.md. */
function messageLine(file: string, p: ConfigProblem): string {
  return `${file}: ${p.path}: expected ${p.expected}, got ${p.found}`;
}

const PH = 'detectors.paymentHealth';

describe('the shipped config/forewarn.yaml', () => {
  it('is valid', async () => {
    const config = await loadConfigFile(SHIPPED);
    expect(config.detectors.paymentHealth.windows.length).toBeGreaterThan(0);
    expect(typeof config.timezone).toBe('string');
  });

  it('comes back deeply frozen', async () => {
    const config = await loadConfigFile(SHIPPED);
    const ph = config.detectors.paymentHealth;
    for (const value of [
      config,
      config.detectors,
      ph,
      ph.windows,
      ph.windows[0],
      ph.failures,
      ph.slow,
      ph.baseline,
      ph.backup,
      ph.overrides,
      ph.overrides.channels,
      config.workers.detection,
    ]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
    for (const override of Object.values(ph.overrides.channels)) {
      expect(Object.isFrozen(override)).toBe(true);
      for (const group of Object.values(override)) {
        if (group && typeof group === 'object') expect(Object.isFrozen(group)).toBe(true);
      }
    }
    const before = ph.confirmSeconds;
    expect(() => {
      (ph as { confirmSeconds: number }).confirmSeconds = before + 1;
    }).toThrow(TypeError);
    expect(() => {
      (ph.windows as Array<{ seconds: number; minAttempts: number }>).push({ seconds: 5, minAttempts: 1 });
    }).toThrow(TypeError);
    expect(ph.confirmSeconds).toBe(before);
  });

  it('fills in defaults for omitted override groups', () => {
    const text = withEdits([[['detectors', 'paymentHealth', 'overrides'], undefined]]);
    const config = parseConfigText(text, FILE);
    expect(config.detectors.paymentHealth.overrides).toEqual({ channels: {}, regions: {}, pairs: {} });
  });
});

describe('config mistakes', () => {
  it('a negative integer names the path, line, lower bound and the value', () => {
    const { text, line } = setScalar(shippedText, 'confirmSeconds', '-3');
    const error = configError(text);
    expect(error.code).toBe('FW_CONFIG_INVALID');
    expect(error.file).toBe(FILE);
    expect(error.problems).toHaveLength(1);
    const p = problemAt(error, `${PH}.confirmSeconds`);
    expect(lineOfProblem(p)).toBe(line);
    expect(p.expected).toBe('a value >= 0');
    expect(p.found).toBe('-3');
    expect(error.message).toBe(`${FILE}: ${PH}.confirmSeconds (line ${line}): expected a value >= 0, got -3`);
  });

  it('a negative integer inside a nested group names the nested path', () => {
    const doc = parseDocument(shippedText);
    doc.setIn(['detectors', 'paymentHealth', 'failures', 'minCount'], -1);
    const text = String(doc);
    const failuresLine = lineMatching(text, keyLine('failures'));
    const minCountLine =
      failuresLine +
      text
        .split('\n')
        .slice(failuresLine)
        .findIndex((l) => keyLine('minCount').test(l)) +
      1;
    const p = problemAt(configError(text), `${PH}.failures.minCount`);
    expect(lineOfProblem(p)).toBe(minCountLine);
    expect(p.expected).toMatch(/> 0|>= 1/);
    expect(p.found).toBe('-1');
  });

  it('a value of the wrong type says which type was expected and shows the value', () => {
    const { text, line } = setScalar(shippedText, 'confidence', 'high');
    const p = problemAt(configError(text), `${PH}.confidence`);
    expect(lineOfProblem(p)).toBe(line);
    expect(p.expected).toBe('a number');
    expect(p.found).toBe('"high"');
  });

  it('a misspelt key is reported as unknown, on its own line, beside the missing one', () => {
    const { text, line } = editLine(shippedText, keyLine('resolveSeconds'), (l) =>
      l.replace('resolveSeconds:', 'resolveSecond:'),
    );
    const error = configError(text);
    const unknown = problemAt(error, `${PH}.resolveSecond`);
    expect(lineOfProblem(unknown)).toBe(line);
    expect(unknown.expected).toContain('no such key');
    expect(unknown.found).toBe('unknown key "resolveSecond"');
    const missing = problemAt(error, `${PH}.resolveSeconds`);
    expect(missing.found).toContain('missing');
  });

  it('a missing key names the key and points into the mapping that lacks it', () => {
    const lines = shippedText.split('\n');
    const removed = lineMatching(shippedText, keyLine('recentMinAttempts'));
    const text = lines.filter((_, i) => i !== removed - 1).join('\n');
    const p = problemAt(configError(text), `${PH}.recentMinAttempts`);
    expect(p.expected).toBe('a number');
    expect(p.found).toBe('nothing (the key is missing)');
    const line = lineOfProblem(p);
    expect(line).toBeDefined();
    // Somewhere between `paymentHealth:` and its first key, i.e. the mapping that lacks the key.
    const parentLine = lineMatching(text, keyLine('paymentHealth'));
    const firstKeyLine = lineMatching(text, keyLine('enabled'));
    expect(line).toBeGreaterThanOrEqual(parentLine);
    expect(line).toBeLessThanOrEqual(firstKeyLine);
  });

  it('an invalid cron schedule says what a cron expression looks like', () => {
    const { text, line } = setScalar(shippedText, 'schedule', '"every 15 seconds"');
    const p = problemAt(configError(text), `${PH}.schedule`);
    expect(lineOfProblem(p)).toBe(line);
    expect(p.expected).toContain('cron expression');
    expect(p.found).toBe('"every 15 seconds"');
  });

  it('an invalid time zone says an IANA zone was expected', () => {
    const { text, line } = setScalar(shippedText, 'timezone', 'Mars/Olympus_Mons');
    const p = problemAt(configError(text), 'timezone');
    expect(lineOfProblem(p)).toBe(line);
    expect(p.expected).toContain('IANA time zone');
    expect(p.found).toBe('"Mars/Olympus_Mons"');
  });

  it('unsorted windows are refused with the sorting rule', () => {
    const doc = parseDocument(shippedText);
    const windows = doc.toJS().detectors.paymentHealth.windows as Array<{ seconds: number }>;
    expect(windows.length).toBeGreaterThan(0);
    const unsorted = [...windows, { seconds: windows[0]!.seconds, minAttempts: 5 }];
    const text = withEdits([[['detectors', 'paymentHealth', 'windows'], unsorted]]);
    const p = problemAt(configError(text), `${PH}.windows`);
    expect(p.expected).toContain('sorted');
    expect(p.found).toContain(`"seconds":${windows[0]!.seconds}`);
    // The sequence starts on the `windows:` line (flow) or the next one (block).
    const windowsLine = lineMatching(text, keyLine('windows'));
    expect([windowsLine, windowsLine + 1]).toContain(lineOfProblem(p));
  });

  it('inactivity steps out of order, a maximum under the last step, bad quiet hours and a security link built from data are refused', () => {
    const error = configError(
      withEdits([
        [
          ['detectors', 'inactivity', 'stepDays'],
          [3, 30, 30],
        ],
        [['detectors', 'inactivity', 'maxIdleDays'], 30],
        [['notifications', 'quietHours', 'security'], { from: '22:00', to: '24:00' }],
        [['notifications', 'quietHours', 'promotional'], { from: '08:00', to: '08:00' }],
        [['notifications', 'links', 'securityUrl'], 'https://www.example.com/security?user={userId}'],
      ]),
    );
    expect(problemAt(error, 'detectors.inactivity.stepDays.2')).toMatchObject({
      expected: 'steps in ascending order, each greater than the one before (30)',
      found: '30',
    });
    expect(problemAt(error, 'detectors.inactivity.maxIdleDays').expected).toBe(
      'more days than the last step (30)',
    );
    expect(problemAt(error, 'notifications.quietHours.security.to').expected).toBe(
      'a local time "HH:MM" from 00:00 to 23:59',
    );
    expect(problemAt(error, 'notifications.quietHours.promotional').expected).toContain(
      'from and to to differ',
    );
    expect(problemAt(error, 'notifications.links.securityUrl').expected).toContain(
      'no placeholders, query string',
    );
  });

  it('a baseline cap and margins under which a pair could never alert are refused, per override', () => {
    const text = withEdits([
      [['detectors', 'paymentHealth', 'overrides', 'channels', 'bank_card', 'baseline'], { maxRate: 0.5 }],
    ]);
    const p = problemAt(configError(text), `${PH}.overrides.channels.bank_card.failures`);
    expect(p.expected).toContain('below 0.95');
    expect(p.expected).toContain('overrides.channels.bank_card');
    expect(p.found).toBe('"0.5 + 0.5 = 1"');
    // It points at bank_card's own `failures` key.
    const line = lineOfProblem(p)!;
    expect(line).toBeGreaterThan(lineMatching(text, /^\s*bank_card:/));
    expect(text.split('\n')[line - 1]).toMatch(/^\s*failures:/);
  });

  it('a settle horizon shorter than the slow threshold is refused', () => {
    const p = problemAt(
      configError(setScalar(shippedText, 'settleSeconds', '10').text),
      `${PH}.settleSeconds`,
    );
    expect(p.expected).toContain('slow.slowAfterMs');
    expect(p.found).toBe('"10 s"');
  });

  it('a window that is not a multiple of 5 seconds says so', () => {
    const doc = parseDocument(shippedText);
    const windows = doc.toJS().detectors.paymentHealth.windows as Array<{ seconds: number }>;
    const last = windows.at(-1)!;
    const text = withEdits([
      [
        ['detectors', 'paymentHealth', 'windows'],
        [...windows, { seconds: last.seconds + 7, minAttempts: 5 }],
      ],
    ]);
    const p = problemAt(configError(text), `${PH}.windows.${windows.length}.seconds`);
    expect(p.expected).toContain('multiple of 5');
    expect(p.expected).not.toMatch(/invalid/i);
    expect(p.found).toBe(String(last.seconds + 7));
  });

  it('a pair override key that is not "channel:region" says what form was expected', () => {
    const doc = parseDocument(shippedText);
    const pairs = doc.createNode({ 'alipay-CN-GD': { confirmSeconds: 5 } }, { flow: true });
    doc.setIn(['detectors', 'paymentHealth', 'overrides', 'pairs'], pairs);
    const text = String(doc);
    const line = lineMatching(text, /alipay-CN-GD/);
    const p = problemAt(configError(text), `${PH}.overrides.pairs.alipay-CN-GD`);
    expect(lineOfProblem(p)).toBe(line);
    expect(p.found).toBe('"alipay-CN-GD"');
    expect(p.expected).toContain('"channel:region"');
  });

  it('a misspelt key whose value is a block mapping is reported on the key’s line', () => {
    const { text, line } = editLine(shippedText, keyLine('baseline'), (l) =>
      l.replace('baseline:', 'baselines:'),
    );
    // The value must be a block mapping (starting on the next line) for this case.
    expect(shippedText.split('\n')[line - 1]).toMatch(/baseline:\s*(#.*)?$/);
    const p = problemAt(configError(text), `${PH}.baselines`);
    expect(p.found).toBe('unknown key "baselines"');
    expect(lineOfProblem(p)).toBe(line);
  });

  it('a key of an earlier release says what replaced it', () => {
    const text = withEdits([
      [['workers', 'notifications'], { concurrency: 4 }],
      [['workers', 'fanout'], undefined],
    ]);
    const error = configError(text);
    const retired = problemAt(error, 'workers.notifications');
    expect(retired.found).toBe('unknown key "notifications"');
    expect(retired.expected).toBe(
      'no such key: its queue was split, set workers.fanout, workers.delivery and workers.opsAlerts instead',
    );
    expect(problemAt(error, 'workers.fanout').found).toBe('nothing (the key is missing)');
  });

  it('a detector no registered detector has is refused, listing the registered ones', () => {
    const text = withEdits([[['detectors', 'lowStock'], { enabled: true }]]);
    const p = problemAt(configError(text), 'detectors.lowStock');
    expect(p.found).toBe('unknown detector "lowStock"');
    expect(p.expected).toBe(`one of the registered detectors: ${knownDetectors}`);
    expect(knownDetectors).toContain('paymentHealth (payment-health)');
  });

  it("a detector's settings under its id rather than its config key say which key to use", () => {
    const doc = parseDocument(shippedText);
    const settings = doc.getIn(['detectors', 'paymentHealth']);
    doc.deleteIn(['detectors', 'paymentHealth']);
    doc.setIn(['detectors', 'payment-health'], settings);
    const error = configError(String(doc));
    const p = problemAt(error, 'detectors.payment-health');
    expect(p.found).toBe('unknown detector "payment-health"');
    expect(p.expected).toBe(
      `detectors.paymentHealth: a detector's settings go under its id in camel case (known detectors: ${knownDetectors})`,
    );
    expect(problemAt(error, PH).found).toBe('nothing (the key is missing)');
  });

  it('enabled and schedule may not be overridden', () => {
    const text = withEdits([
      [['detectors', 'paymentHealth', 'overrides', 'regions'], { 'CN-GD': { schedule: '* * * * * *' } }],
    ]);
    const p = problemAt(configError(text), `${PH}.overrides.regions.CN-GD.schedule`);
    expect(p.found).toBe('unknown key "schedule"');
  });

  it('invalid YAML syntax is a ConfigError naming the offending line', () => {
    const { text, line } = editLine(shippedText, keyLine('graceSeconds'), (l) => l.replace(/^\s+/, '\t'));
    const error = configError(text);
    expect(error.code).toBe('FW_CONFIG_INVALID');
    expect(error.problems).toHaveLength(1);
    const p = error.problems[0]!;
    expect(p.path).toBe(`line ${line}`);
    expect(p.expected).toBe('valid YAML');
    expect(p.found).toMatch(/tab/i);
    expect(error.message).toBe(messageLine(FILE, p));
  });

  it('a duplicate key is a YAML error on the repeated key', () => {
    const at = lineMatching(shippedText, keyLine('resolveSeconds'));
    const lines = shippedText.split('\n');
    const indent = /^\s*/.exec(lines[at - 1]!)![0];
    lines.splice(at, 0, `${indent}confirmSeconds: 5`);
    const error = configError(lines.join('\n'));
    expect(error.problems.map((p) => p.path)).toContain(`line ${at + 1}`);
    expect(error.problems[0]!.found).toMatch(/unique/i);
  });

  it('a document that is not a mapping is refused at the top level', () => {
    const p = configError('- just\n- a list\n').problems[0]!;
    expect(p.path).toMatch(/^\(top level\)/);
    expect(p.expected).toBe('a mapping');
  });

  it('reports several mistakes at once, one message line each', () => {
    let text = shippedText;
    const tz = setScalar(text, 'timezone', 'Nowhere/Land');
    text = tz.text;
    const confirm = setScalar(text, 'confirmSeconds', '-1');
    text = confirm.text;
    const confidence = setScalar(text, 'confidence', 'yes please');
    text = confidence.text;
    const grace = setScalar(text, 'graceSeconds', '0');
    text = grace.text;
    const error = configError(text);
    expect(error.problems).toHaveLength(4);
    const expectedLines = new Map([
      ['timezone', tz.line],
      [`${PH}.confirmSeconds`, confirm.line],
      [`${PH}.confidence`, confidence.line],
      ['shutdown.graceSeconds', grace.line],
    ]);
    for (const [path, line] of expectedLines) {
      expect(lineOfProblem(problemAt(error, path))).toBe(line);
    }
    expect(error.message.split('\n')).toEqual(error.problems.map((p) => messageLine(FILE, p)));
  });
});

describe('loadConfigFile', () => {
  it('names the file in every problem line', async () => {
    const file = join(tmp, 'bad.yaml');
    await writeFile(file, setScalar(shippedText, 'concurrency', '-2').text);
    const error = await loadConfigFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).file).toBe(file);
    expect((error as ConfigError).message.startsWith(`${file}: workers.detection.concurrency (line `)).toBe(
      true,
    );
  });

  it('a missing file is FW_CONFIG_UNREADABLE naming the file', async () => {
    const file = join(tmp, 'does-not-exist.yaml');
    const error = await loadConfigFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ForewarnError);
    expect(error).not.toBeInstanceOf(ConfigError);
    expect((error as ForewarnError).code).toBe('FW_CONFIG_UNREADABLE');
    expect((error as ForewarnError).message).toContain(file);
  });
});

describe('thresholdsFor', () => {
  let base: Config['detectors']['paymentHealth'];

  beforeAll(() => {
    base = parseConfigText(shippedText, FILE).detectors.paymentHealth;
  });

  function settings(overrides: {
    regions?: Record<string, PaymentHealthOverride>;
    channels?: Record<string, PaymentHealthOverride>;
    pairs?: Record<string, PaymentHealthOverride>;
  }): PaymentHealthSettings {
    return { ...base, overrides: { regions: {}, channels: {}, pairs: {}, ...overrides } };
  }

  it('without overrides returns the defaults', () => {
    const t = thresholdsFor(settings({}), 'alipay', 'CN-GD');
    const { enabled: _e, schedule: _s, maxClockSkewSeconds: _m, overrides: _o, ...defaults } = base;
    expect(t).toEqual(defaults);
    expect(t).not.toHaveProperty('overrides');
    expect(t).not.toHaveProperty('schedule');
  });

  it('layers region < channel < pair', () => {
    const c = base.confirmSeconds;
    const s = settings({
      regions: { 'CN-GD': { confirmSeconds: c + 1 }, 'CN-ZJ': { confirmSeconds: c + 2 } },
      channels: { alipay: { confirmSeconds: c + 10 } },
      pairs: { 'alipay:CN-GD': { confirmSeconds: c + 100 } },
    });
    expect(thresholdsFor(s, 'wechat', 'CN-BJ').confirmSeconds).toBe(c);
    expect(thresholdsFor(s, 'wechat', 'CN-GD').confirmSeconds).toBe(c + 1);
    expect(thresholdsFor(s, 'wechat', 'CN-ZJ').confirmSeconds).toBe(c + 2);
    expect(thresholdsFor(s, 'alipay', 'CN-BJ').confirmSeconds).toBe(c + 10);
    // Channel beats region.
    expect(thresholdsFor(s, 'alipay', 'CN-ZJ').confirmSeconds).toBe(c + 10);
    // Pair beats both.
    expect(thresholdsFor(s, 'alipay', 'CN-GD').confirmSeconds).toBe(c + 100);
    // A pair override for alipay:CN-GD does not leak to wechat:CN-GD.
    expect(thresholdsFor(s, 'wechat', 'CN-GD').confirmSeconds).toBe(c + 1);
  });

  it('a partial nested override keeps the group’s other keys, and layers merge per key', () => {
    const s = settings({
      regions: { 'CN-GD': { failures: { minCount: base.failures.minCount + 4 } } },
      channels: { bank_card: { failures: { expectedRate: base.failures.expectedRate / 2 } } },
      pairs: { 'bank_card:CN-GD': { slow: { slowAfterMs: base.slow.slowAfterMs * 2 } } },
    });
    const t = thresholdsFor(s, 'bank_card', 'CN-GD');
    expect(t.failures).toEqual({
      ...base.failures,
      minCount: base.failures.minCount + 4,
      expectedRate: base.failures.expectedRate / 2,
    });
    expect(t.slow).toEqual({ ...base.slow, slowAfterMs: base.slow.slowAfterMs * 2 });
    expect(t.baseline).toEqual(base.baseline);
    expect(t.confirmSeconds).toBe(base.confirmSeconds);
    // The defaults themselves are untouched.
    expect(thresholdsFor(s, 'alipay', 'CN-BJ').failures).toEqual(base.failures);
  });

  it('an override parsed from YAML layers the same way', () => {
    const text = withEdits([
      [
        ['detectors', 'paymentHealth', 'overrides'],
        {
          channels: { alipay: { failures: { minCount: 7 } } },
          pairs: { 'alipay:CN-SH': { failures: { minCount: 9 }, backup: { maxListed: 1 } } },
        },
      ],
    ]);
    const ph = parseConfigText(text, FILE).detectors.paymentHealth;
    expect(thresholdsFor(ph, 'alipay', 'CN-GD').failures).toEqual({ ...ph.failures, minCount: 7 });
    const pair = thresholdsFor(ph, 'alipay', 'CN-SH');
    expect(pair.failures).toEqual({ ...ph.failures, minCount: 9 });
    expect(pair.backup).toEqual({ ...ph.backup, maxListed: 1 });
  });

  it('a windows override replaces the whole list', () => {
    const windows = [{ seconds: 600, minAttempts: 3 }];
    const s = settings({ channels: { usdt: { windows } } });
    expect(thresholdsFor(s, 'usdt', 'CN-GD').windows).toEqual(windows);
    expect(thresholdsFor(s, 'alipay', 'CN-GD').windows).toEqual(base.windows);
  });
});

describe('lookback', () => {
  let base: Config['detectors']['paymentHealth'];

  beforeAll(() => {
    base = parseConfigText(shippedText, FILE).detectors.paymentHealth;
  });

  const longestDefault = () => Math.max(base.recentSeconds, ...base.windows.map((w) => w.seconds));

  it('without overrides covers the longest window and the slow threshold', () => {
    const s: PaymentHealthSettings = { ...base, overrides: { regions: {}, channels: {}, pairs: {} } };
    expect(lookback(s)).toMatchObject({
      windowMs: longestDefault() * 1000,
      slowAfterMs: base.slow.slowAfterMs,
    });
  });

  it('grows with any override’s longer window, recentSeconds or slowAfterMs', () => {
    const longer = longestDefault() + 300;
    const s: PaymentHealthSettings = {
      ...base,
      overrides: {
        regions: { 'CN-GD': { recentSeconds: longer + 600 } },
        channels: { unionpay: { slow: { slowAfterMs: base.slow.slowAfterMs + 5_000 } } },
        pairs: { 'alipay:CN-GD': { windows: [{ seconds: longer, minAttempts: 5 }] } },
      },
    };
    expect(lookback(s)).toMatchObject({
      windowMs: (longer + 600) * 1000,
      slowAfterMs: base.slow.slowAfterMs + 5_000,
    });
    const onlyWindow: PaymentHealthSettings = {
      ...base,
      overrides: {
        regions: {},
        channels: {},
        pairs: { 'a:b': { windows: [{ seconds: longer, minAttempts: 1 }] } },
      },
    };
    expect(lookback(onlyWindow).windowMs).toBe(longer * 1000);
  });

  it('shorter overrides never shrink it', () => {
    const s: PaymentHealthSettings = {
      ...base,
      overrides: {
        regions: {},
        channels: { alipay: { windows: [{ seconds: 5, minAttempts: 1 }], slow: { slowAfterMs: 1 } } },
        pairs: {},
      },
    };
    expect(lookback(s)).toMatchObject({
      windowMs: longestDefault() * 1000,
      slowAfterMs: base.slow.slowAfterMs,
    });
  });
});

describe('notifications.email.dkim', () => {
  const DKIM = ['notifications', 'email', 'dkim'];

  it('is absent in the shipped file: mail is not signed unless asked for', () => {
    expect(parseConfigText(shippedText, FILE).notifications.email.dkim).toBeUndefined();
  });

  it('takes the signing domain and selector', () => {
    const text = withEdits([[DKIM, { domainName: 'notify.example.com', keySelector: 'fw2026' }]]);
    expect(parseConfigText(text, FILE).notifications.email.dkim).toEqual({
      domainName: 'notify.example.com',
      keySelector: 'fw2026',
    });
  });

  it('refuses a domain that is no host name, a selector with a dot at the edge, and a missing half', () => {
    const badDomain = configError(withEdits([[DKIM, { domainName: 'not a domain', keySelector: 'fw' }]]));
    expect(problemAt(badDomain, 'notifications.email.dkim.domainName').expected).toMatch(
      /the domain signed for/,
    );
    const badSelector = configError(withEdits([[DKIM, { domainName: 'example.com', keySelector: '.fw' }]]));
    expect(problemAt(badSelector, 'notifications.email.dkim.keySelector').expected).toMatch(
      /a DKIM selector/,
    );
    const half = configError(withEdits([[DKIM, { domainName: 'example.com' }]]));
    expect(problemAt(half, 'notifications.email.dkim.keySelector')).toBeDefined();
    const extra = configError(
      withEdits([[DKIM, { domainName: 'example.com', keySelector: 'fw', privateKey: 'x' }]]),
    );
    expect(extra.problems.length).toBeGreaterThan(0);
  });
});
