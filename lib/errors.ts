// The project's error classes. Each carries a stable code, listed in docs/errors.md (a test
// checks that every code here is documented there), and says what was wrong, where, and what
// was expected.

export const errorCodes = {
  FW_CONFIG_INVALID: 'The config file is not valid YAML or does not match the schema.',
  FW_CONFIG_UNREADABLE: 'The config file cannot be read.',
  FW_ENV_INVALID: 'An environment variable holds a value of the wrong form.',
  FW_ENV_MISSING: 'NODE_ENV is production and a setting that a part of the daemon needs is not set.',
  FW_USAGE: 'A command-line argument is unknown or malformed.',
  FW_BUILD_MISSING:
    'The compiled build (dist/) is missing, and NODE_ENV=production or FOREWARN_CODE=dist runs the compiled code.',
  FW_MIGRATION_FAILED: 'A schema migration failed; the transaction was rolled back.',
  FW_SERVICE_UNREACHABLE: 'PostgreSQL or Redis could not be reached.',
  FW_SCHEMA_OUTDATED: "forewarn's own schema is missing or older than this version; run `forewarn migrate`.",
  FW_PLATFORM_ROW_INVALID: 'A platform row breaks the contract and was skipped.',
  FW_TEMPLATE_INVALID: 'A message template or the templates directory is broken (syntax, variables, files).',
  FW_TEMPLATE_RENDER:
    'A message could not be rendered: its data does not match the kind, or the template failed.',
  FW_DELIVERY_RETRYABLE:
    'An email could not be delivered this time; the same message may go through on a later attempt.',
  FW_DELIVERY_PERMANENT:
    'An email was refused for good; sending the same message again would fail the same way.',
  FW_EMAIL_CONFIG_INVALID:
    'The email channel was set up with a malformed SMTP URL, sender address or outbox directory, or half a DKIM setup.',
  FW_CLOCK_SKEW:
    "A detector tick lies ahead of the platform database's clock by more than the configured skew and was refused.",
  FW_FEED_SILENT: 'Most payment pairs went silent at once: the platform data feed looks stalled.',
  FW_WATCHDOG_TRIPPED:
    "The watchdog found a detector's ticks stopped, or the platform's payment data lagging beyond its bound; ops are alerted.",
  FW_WATCHDOG_CHECK_FAILED:
    'A watchdog check could not read a database; it is logged and the next check runs as usual.',
  FW_WATCHDOG_UNEVEN_SCHEDULE:
    "A detector's schedule pauses for longer than the watchdog's bound taken from its next gap: it would alert at every pause.",
  FW_DELIVERY_CLAIM_LOST:
    'A delivery job found that its claim on a notification had run out and been taken over by another worker; it left the notification to that worker.',
  FW_JOB_FOREIGN:
    'A worker took a job queued by another deployment (another database) and left it in the queue for its owner.',
  FW_BACKTEST_STATE_UNREADABLE:
    "forewarn backtest could not read the live daemon's stored detector state; its baselines come from a warm-up instead.",
  FW_HTTP_LISTEN:
    'The HTTP role could not listen on FOREWARN_HTTP_HOST:FOREWARN_HTTP_PORT (the port is taken, the address is not this host, or binding it needs privileges).',
  FW_LINK_INVALID:
    'The HTTP role refused a signed link: its token is missing, malformed, forged or altered, for another action, or expired. Nothing was changed.',
  FW_API_UNAUTHORIZED:
    'A platform API call (preferences, channel status) came without the bearer token FOREWARN_API_TOKEN, or with another one.',
  FW_ADMIN_UNAUTHORIZED:
    'An ops tool on the HTTP role (queue dashboard, template studio) was asked for without FOREWARN_ADMIN_TOKEN, or with another token.',
  FW_API_INVALID:
    'A platform API call named a malformed user id or region, or carried a body of the wrong form.',
  FW_ADMIN_READ_ONLY:
    'The queue dashboard refused an action (retry, clean, pause, add...): it is read-only (http.adminQueues.readOnly).',
  FW_LINK_SUBJECT_UNKNOWN:
    'The HTTP role refused a signed link whose product the platform does not have. Nothing was changed.',
  FW_STUDIO_REFUSED:
    'The template studio refused a request: a test send to an address not on the allow-list, a save of a template with problems, an unknown template, or sample data that is not JSON.',
  FW_INCIDENT_NOT_FOUND: 'An ops command named an incident (cause) id that forewarn has not recorded.',
  FW_OPS_ACTION_REFUSED:
    'An ops command cannot be applied: the incident is already resolved, its detector cannot be resolved by hand, or the fan-out was stopped before.',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class ForewarnError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ForewarnError';
    this.code = code;
  }
}

/** One problem found in a config file: where, what was expected, what was found. */
export interface ConfigProblem {
  path: string;
  expected: string;
  found: string;
}

export class ConfigError extends ForewarnError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(
      'FW_CONFIG_INVALID',
      problems.map((p) => `${file}: ${p.path}: expected ${p.expected}, got ${p.found}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

export class UsageError extends ForewarnError {
  constructor(message: string) {
    super('FW_USAGE', message);
    this.name = 'UsageError';
  }
}
