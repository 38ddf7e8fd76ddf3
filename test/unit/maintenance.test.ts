// Maintenance windows on a fixed clock: matching subjects, windows that span midnight (the
// occurrence belongs to the day it started) and a daylight-saving change inside a window.
import { expect, it } from 'vitest';
import { maintenanceAt, subjectMatches, type MaintenanceWindow } from '../../lib/ops/maintenance.ts';

const nightly: MaintenanceWindow = {
  name: 'unionpay-nightly',
  detector: 'payment-health',
  subjects: ['unionpay:*'],
  days: ['mon'],
  from: '23:30',
  to: '00:30',
  timezone: 'Asia/Shanghai',
};
const pair = { detector: 'payment-health', subjectKey: 'unionpay:CN-GD' };

it('matches subject patterns with * only', () => {
  expect(subjectMatches('unionpay:*', 'unionpay:CN-GD')).toBe(true);
  expect(subjectMatches('unionpay:*', 'alipay:CN-GD')).toBe(false);
  expect(subjectMatches('*:CN-GD', 'alipay:CN-GD')).toBe(true);
  expect(subjectMatches('a.b', 'axb')).toBe(false);
});

it('a window across midnight belongs to the day it starts on', () => {
  // Monday 2026-12-07 23:45 in Shanghai is 15:45Z.
  const monday = maintenanceAt([nightly], pair, Date.parse('2026-12-07T15:45:00Z'));
  expect(monday).toEqual({
    window: nightly,
    start: Date.parse('2026-12-07T15:30:00Z'),
    end: Date.parse('2026-12-07T16:30:00Z'),
  });
  // Tuesday 00:15 local: still Monday's occurrence.
  expect(maintenanceAt([nightly], pair, Date.parse('2026-12-07T16:15:00Z'))?.start).toBe(
    Date.parse('2026-12-07T15:30:00Z'),
  );
  // Its end is outside; Tuesday 23:45 local is not a day of the window; another subject never.
  expect(maintenanceAt([nightly], pair, Date.parse('2026-12-07T16:30:00Z'))).toBeNull();
  expect(maintenanceAt([nightly], pair, Date.parse('2026-12-08T15:45:00Z'))).toBeNull();
  expect(
    maintenanceAt([nightly], { ...pair, subjectKey: 'alipay:CN-GD' }, Date.parse('2026-12-07T15:45:00Z')),
  ).toBeNull();
  expect(
    maintenanceAt([nightly], { ...pair, detector: 'error-spikes' }, Date.parse('2026-12-07T15:45:00Z')),
  ).toBeNull();
});

it('keeps its local times across a daylight-saving change', () => {
  // 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT. 01:00-04:00 local is two real hours.
  const window: MaintenanceWindow = {
    ...nightly,
    days: ['sun'],
    from: '01:00',
    to: '04:00',
    timezone: 'America/New_York',
  };
  const during = maintenanceAt([window], pair, Date.parse('2026-03-08T07:30:00Z'));
  expect(during?.start).toBe(Date.parse('2026-03-08T06:00:00Z'));
  expect(during?.end).toBe(Date.parse('2026-03-08T08:00:00Z'));
  expect(maintenanceAt([window], pair, Date.parse('2026-03-08T08:00:00Z'))).toBeNull();
  // A week earlier, before the change, the same window is three real hours.
  expect(maintenanceAt([window], pair, Date.parse('2026-03-01T08:30:00Z'))?.end).toBe(
    Date.parse('2026-03-01T09:00:00Z'),
  );
});
