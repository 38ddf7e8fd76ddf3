// Quiet hours in the recipient's own zone, on fixed instants: Intl gives each zone's rules.
import { describe, expect, it } from 'vitest';
import { atWallClock, isTimeZone, quietUntil, wallClock } from '../../lib/policy/quiet-hours.ts';

const night = { from: '22:00', to: '08:00' };
const day = { from: '09:00', to: '17:00' };

describe('quietUntil', () => {
  it('03:00 in Los Angeles (11:00 UTC in winter) is held until 08:00 there', () => {
    const at = Date.parse('2026-12-04T11:00:00Z');
    expect(wallClock(at, 'America/Los_Angeles')).toMatchObject({ hour: 3, minute: 0 });
    expect(new Date(quietUntil(at, 'America/Los_Angeles', night)!).toISOString()).toBe(
      '2026-12-04T16:00:00.000Z',
    );
  });

  it('the same instant is 19:00 in Shanghai: not held', () => {
    expect(quietUntil(Date.parse('2026-12-04T11:00:00Z'), 'Asia/Shanghai', night)).toBeNull();
  });

  it('before midnight the window ends the next local morning', () => {
    // 23:30 in Shanghai on 4 December.
    const at = Date.parse('2026-12-04T15:30:00Z');
    expect(new Date(quietUntil(at, 'Asia/Shanghai', night)!).toISOString()).toBe('2026-12-05T00:00:00.000Z');
  });

  it('edges: the window starts at from and ends at to', () => {
    expect(quietUntil(Date.parse('2026-12-04T13:59:00Z'), 'Asia/Shanghai', night)).toBeNull(); // 21:59
    expect(quietUntil(Date.parse('2026-12-04T14:00:00Z'), 'Asia/Shanghai', night)).not.toBeNull(); // 22:00
    expect(quietUntil(Date.parse('2026-12-05T00:00:00Z'), 'Asia/Shanghai', night)).toBeNull(); // 08:00
  });

  it('a window that does not span midnight', () => {
    const at = Date.parse('2026-12-04T10:00:00Z'); // 10:00 in London
    expect(new Date(quietUntil(at, 'Europe/London', day)!).toISOString()).toBe('2026-12-04T17:00:00.000Z');
    expect(quietUntil(Date.parse('2026-12-04T18:00:00Z'), 'Europe/London', day)).toBeNull();
  });

  it('follows daylight saving time: 08:00 in New York is 12:00 UTC in summer, 13:00 in winter', () => {
    const summer = Date.parse('2026-07-01T07:00:00Z'); // 03:00 EDT
    const winter = Date.parse('2026-01-15T08:00:00Z'); // 03:00 EST
    expect(new Date(quietUntil(summer, 'America/New_York', night)!).toISOString()).toBe(
      '2026-07-01T12:00:00.000Z',
    );
    expect(new Date(quietUntil(winter, 'America/New_York', night)!).toISOString()).toBe(
      '2026-01-15T13:00:00.000Z',
    );
  });

  it('a night across the spring-forward change ends at 08:00 of the new offset', () => {
    // 8 March 2026: New York skips 02:00-03:00. 01:30 EST is 06:30 UTC; 08:00 EDT is 12:00 UTC.
    const at = Date.parse('2026-03-08T06:30:00Z');
    expect(new Date(quietUntil(at, 'America/New_York', night)!).toISOString()).toBe(
      '2026-03-08T12:00:00.000Z',
    );
  });

  it('a local time skipped by spring-forward is read as clocks show it after the change', () => {
    const t = atWallClock({ year: 2026, month: 3, day: 8, hour: 2, minute: 30 }, 'America/New_York');
    expect(new Date(t).toISOString()).toBe('2026-03-08T07:30:00.000Z'); // 03:30 EDT
  });

  it('an existing local time comes back exact, in both offsets of a fall-back day', () => {
    const zone = 'America/New_York';
    for (const hour of [0, 1, 3, 8, 23]) {
      const t = atWallClock({ year: 2026, month: 11, day: 1, hour, minute: 15 }, zone);
      expect(wallClock(t, zone)).toEqual({ year: 2026, month: 11, day: 1, hour, minute: 15 });
    }
  });

  it('zones with half-hour offsets (India, +05:30)', () => {
    const at = Date.parse('2026-12-04T20:00:00Z'); // 01:30 in Kolkata
    expect(new Date(quietUntil(at, 'Asia/Kolkata', night)!).toISOString()).toBe('2026-12-05T02:30:00.000Z');
  });

  it('from equal to to is no window at all', () => {
    expect(quietUntil(Date.parse('2026-12-04T11:00:00Z'), 'UTC', { from: '08:00', to: '08:00' })).toBeNull();
  });
});

describe('isTimeZone', () => {
  it('knows IANA names and refuses others', () => {
    expect(isTimeZone('America/Los_Angeles')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });
});
