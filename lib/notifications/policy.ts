// The delivery policy: the one step where forewarn decides whether a message may go now, applied
// when a message is recorded (fan-out) and again when its turn comes (the delivery claim), so a
// retry that comes due at night is held like a first attempt. Today it holds messages of a
// category with quiet hours (notifications.quietHours) until the window ends in the recipient's
// own zone; the reason is recorded on the row (held_reason). Held, never dropped.
import type { Config } from '../config/schema.ts';
import type { Category } from '../messages/kind.ts';
import { isTimeZone, quietUntil } from '../policy/quiet-hours.ts';
import type { HoldRule } from './store.ts';

export interface Hold {
  /** When the message may go (epoch ms). */
  until: number;
  reason: string;
}

/**
 * Whether a message of `category` to a recipient in `timeZone` is held at `at`, and until when.
 * A recipient without a valid zone is judged in the config's zone.
 */
export function holdFor(
  config: Pick<Config, 'notifications' | 'timezone'>,
  message: { category: Category; timezone: string | null | undefined },
  at: number,
): Hold | null {
  const window = config.notifications.quietHours[message.category];
  if (!window) return null;
  const zone = message.timezone && isTimeZone(message.timezone) ? message.timezone : config.timezone;
  const until = quietUntil(at, zone, window);
  if (until === null) return null;
  return {
    until,
    reason: `held: ${message.category} quiet hours ${window.from}-${window.to} in ${zone}, until ${new Date(until).toISOString()}`,
  };
}

/** The policy's hold as the delivery claim applies it, under the config in force now. */
export function holdRule(
  config: Pick<Config, 'notifications' | 'timezone'>,
  now: () => number = Date.now,
): HoldRule {
  return {
    categories: Object.keys(config.notifications.quietHours),
    holdFor: (message) => holdFor(config, message, now()),
  };
}
