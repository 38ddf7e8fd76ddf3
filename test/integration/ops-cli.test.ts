// The ops commands as ops run them, in a child process against real PostgreSQL: incidents
// list/show (tables and JSON), ack, mute and fanout stop, and the argument errors (a bad id, a
// bad --until, a missing --reason, an unknown incident).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { runForewarn } from '../support/cli.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import { createTestDatabase, REDIS_URL, type TestDatabase } from '../support/services.ts';

let db: TestDatabase;
let incidentId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const opened = await recordCauseChange(db.pool, {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel: 'alipay', region: 'CN-GD' },
    subjectKey: 'alipay:CN-GD',
    kind: 'failures',
    at: Date.now() - 60_000,
    evidence: { rate: 0.5, attempts: 100 },
    backupChannels: ['wechat_pay'],
  });
  incidentId = opened.incidentId;
});

afterAll(async () => {
  await db?.drop();
});

const forewarn = (args: string[]) =>
  runForewarn(args, {
    env: {
      LOG_LEVEL: 'silent',
      DATABASE_URL: db.url,
      REDIS_URL,
      FOREWARN_CONFIG: SHIPPED_CONFIG,
      USER: 'tester',
    },
  });

it('lists incidents as a table by default and as JSON', async () => {
  const table = await forewarn(['incidents']);
  expect(table.code).toBe(0);
  const row = table.stdout.split('\n').find((line) => line.startsWith(`${incidentId} `));
  expect(row).toMatch(/payment-health\s+CN-GD \/ alipay\s+failures/);
  const json = await forewarn(['incidents', 'list', '--format', 'json']);
  expect(JSON.parse(json.stdout)).toMatchObject([{ id: incidentId, backupChannels: ['wechat_pay'] }]);
});

it('ack, mute and fanout stop are recorded with who and why, and show in incidents show', async () => {
  expect((await forewarn(['incidents', 'ack', incidentId, '--by', 'dana', '--reason', 'on it'])).code).toBe(
    0,
  );
  const mute = await forewarn([
    'mute',
    'payment-health/alipay:CN-GD',
    '--until',
    '2h',
    '--reason',
    'bank fault',
  ]);
  expect(mute.code).toBe(0);
  expect((await forewarn(['mutes', 'list'])).stdout).toMatch(/payment-health\/alipay:CN-GD .* bank fault/);
  expect((await forewarn(['fanout', 'stop', incidentId, '--reason', 'wrong'])).stdout).toMatch(/0 queued/);
  const show = await forewarn(['incidents', 'show', incidentId]);
  expect(show.code).toBe(0);
  expect(show.stdout).toMatch(/acknowledged, fan-out stopped by ops/);
  expect(show.stdout).toMatch(/backups: wechat_pay/);
  expect(show.stdout).toMatch(/ack by dana: on it/);
  const json = JSON.parse((await forewarn(['incidents', 'show', incidentId, '--format', 'json'])).stdout);
  expect(json.actions.map((a: { action: string; actor: string }) => [a.action, a.actor])).toEqual([
    ['ack', 'dana'],
    ['mute', expect.any(String)],
    ['fanout-stop', expect.any(String)],
  ]);
  expect(json.openEvidence).toEqual({ rate: 0.5, attempts: 100 });
});

it('refuses bad arguments with what was expected', async () => {
  const badId = await forewarn(['incidents', 'show', 'abc']);
  expect(badId.code).toBe(2);
  expect(badId.stderr).toMatch(/expected an incident id \(a whole number/);
  const unknown = await forewarn(['incidents', 'show', '999999']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toMatch(/FW_INCIDENT_NOT_FOUND/);
  const badUntil = await forewarn([
    'mute',
    'payment-health/alipay:CN-GD',
    '--until',
    'tomorrow',
    '--reason',
    'x',
  ]);
  expect(badUntil.code).toBe(2);
  expect(badUntil.stderr).toMatch(
    /expected a time such as 2026-03-02T10:00:00Z .* or a duration such as 30m, 2h or 1d, got "tomorrow"/,
  );
  const past = await forewarn([
    'mute',
    'payment-health/alipay:CN-GD',
    '--until',
    '2020-01-01T00:00:00Z',
    '--reason',
    'x',
  ]);
  expect(past.stderr).toMatch(/expected a time in the future/);
  const noReason = await forewarn(['incidents', 'ack', incidentId]);
  expect(noReason.code).toBe(2);
  expect(noReason.stderr).toMatch(/--reason/);
  const badSubject = await forewarn(['mute', 'alipay:CN-GD', '--until', '2h', '--reason', 'x']);
  expect(badSubject.stderr).toMatch(/expected <detector>\/<subject key>/);
});
